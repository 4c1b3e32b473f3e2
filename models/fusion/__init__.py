"""Fusion ranker: candidates from several live sources, ranked by a logistic regression.

**Candidates.** Each source ``s`` (transformer retrieval, time-decayed co-occurrence,
content similarity, trending; all updated through ``learn``/``update_items``) proposes
its top ``F`` items; the candidates of a user are the union ``C_u``.

**Features** of a candidate ``i`` for user ``u`` are the outer product ``x = u \\otimes b``
of a user part and a candidate part (so user traits such as history length can change
how much each source is trusted, which a linear model over ``b`` alone could not):
per source its scaled score and log rank, the item's popularity and age; the user's
history length and click/purchase shares (`features`).

**Ranking** is by the logit ``z(i) = \\theta \\cdot (x(i) - \\mu) / \\sigma`` (`ranker`), with a
trending-then-newest fallback for users without history. ``\\theta`` is fitted offline by
L2-regularised logistic regression on logged positions (`fitting`) and lives in the
model version's ``fusion.json`` (`weights`; CombSUM without one). Every item is explained
(`explanations`).

One module per concept:

- `streamrec.models.fusion.ranker`: `Fusion`, its sources and fallback chain;
- `streamrec.models.fusion.features`: candidates and ``x``;
- `streamrec.models.fusion.weights`: `FusionWeights`, the versioned file;
- `streamrec.models.fusion.fitting`: `fit`, `fit_on_log`, `fit_for`, `refit`;
- `streamrec.models.fusion.explanations`: why each item.

``streamrec train`` fits the weights for each version it writes; ``streamrec refit``
fits them again for the newest version (on a newer log) and publishes a new version.

>>> from streamrec.models.trending import Trending
>>> Fusion({"trending": Trending()}).weights.meta
{'fitted': False}
"""

from streamrec.models.fusion.fitting import NothingToFit, fit, fit_for, fit_on_log, refit
from streamrec.models.fusion.ranker import SOURCES, Fusion, default_sources, sources_around
from streamrec.models.fusion.weights import WEIGHTS_FILE, FusionWeights, feature_names

__all__ = [
    "SOURCES",
    "WEIGHTS_FILE",
    "Fusion",
    "FusionWeights",
    "NothingToFit",
    "default_sources",
    "feature_names",
    "fit",
    "fit_for",
    "fit_on_log",
    "refit",
    "sources_around",
]
