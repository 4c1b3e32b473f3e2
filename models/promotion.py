"""The guarded promotion rule: a candidate replaces the live model only if not worse beyond noise.

Both models are scored by `models.online_eval.simulate` on the same **held-out events**:
the newest events of the history, which the candidate did not train on (nor did the
live model, trained earlier). Per user ``u`` with held-out events, ``d_u`` is the
candidate's mean NDCG@10 minus the live model's; the users are resampled with
replacement ``B`` times (paired: a user's two scores stay together) to get the
percentile interval of the mean difference (`models.intervals.paired_interval`),

.. math:: \\bar d = \\frac{1}{|U|} \\sum_u d_u, \\qquad
          [\\,\\ell, h\\,] = \\text{percentiles } (\\alpha/2,\\; 1 - \\alpha/2)
          \\text{ of } \\bar d^{*(1..B)}

**Rule**: promote iff ``h >= -m \\cdot L`` (``L`` the live model's mean NDCG@10, ``m`` =
`MARGIN`): refused only when the whole 95% interval lies below a tolerance of 5% of
the live score, i.e. the candidate is worse beyond the noise. The interval covers the
sampling noise of users; the margin covers what it cannot, the run-to-run noise of
training itself (two nearly equal models give a narrow interval around a tiny
difference). Ties go to the candidate, since it has seen newer events and the live
model can only age. With fewer than `MIN_USERS` held-out users there is no evidence
either way and the live model is kept.

**Rollback** (`rollback`) undoes a promotion: the current version's folder is renamed
``.retired-<version>``; `models.versions.latest_version` skips hidden folders, so the
previous version is current again and workers hot-reload it. Nothing is deleted.

>>> live = {"a": 0.5, "b": 0.2, "c": 0.4, "d": 0.1}
>>> judge({u: v + 0.01 for u, v in live.items()}, live, min_users=3).promote
True
>>> v = judge({u: 0.0 for u in live}, live, min_users=3)
>>> v.promote, v.reason
(False, 'worse: NDCG@10 -0.3000 [-0.4500, -0.1500] (95% CI, 4 users)')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamrec.models import intervals
from streamrec.models.intervals import CONFIDENCE
from streamrec.models.versions import latest_version

# Below this many held-out users a per-user interval says little: keep the live model.
MIN_USERS = 20
# Relative tolerance of the rule: a candidate up to 5% below the live NDCG@10 is "not
# worse beyond noise" (the per-user interval leaves out training's run-to-run noise).
MARGIN = 0.05
# Prefix of a rolled-back version's folder: hidden, so no reader takes it for a version.
RETIRED = ".retired-"


@dataclass(frozen=True)
class Verdict:
    """The gate's decision with its evidence (NDCG@10 means over the paired users)."""

    promote: bool
    reason: str
    users: int
    candidate: float = float("nan")
    live: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")

    @property
    def delta(self) -> float:
        return self.candidate - self.live


def paired_interval(candidate: Mapping[str, float], live: Mapping[str, float]) -> tuple[float, float, int]:
    """Percentile bootstrap interval of the mean per-user difference, over users both score.

    >>> paired_interval({"a": 1.0, "b": 1.0}, {"a": 0.0, "b": 0.0})
    (1.0, 1.0, 2)
    """
    users = sorted(candidate.keys() & live.keys())
    if not users:
        return float("nan"), float("nan"), 0
    found = intervals.paired_interval(np.array([candidate[u] for u in users]), np.array([live[u] for u in users]))
    return found.low, found.high, found.users


def judge(candidate: Mapping[str, float], live: Mapping[str, float], min_users: int = MIN_USERS) -> Verdict:
    """Apply the rule to per-user NDCG@10 (`models.online_eval.per_user_ndcg`) of both models."""
    low, high, n = paired_interval(candidate, live)
    users = sorted(candidate.keys() & live.keys())
    means = (
        (float(np.mean([candidate[u] for u in users])), float(np.mean([live[u] for u in users])))
        if users
        else (float("nan"), float("nan"))
    )
    evidence = f"NDCG@10 {means[0] - means[1]:+.4f} [{low:+.4f}, {high:+.4f}] ({CONFIDENCE:.0%} CI, {n} users)"
    if n < min_users:
        return Verdict(False, f"too few held-out users ({n} < {min_users}): live model kept", n, *means, low, high)
    if high < -MARGIN * means[1]:
        return Verdict(False, f"worse: {evidence}", n, *means, low, high)
    return Verdict(True, f"not worse: {evidence}", n, *means, low, high)


def rollback(model_dir: str | Path) -> tuple[str, str | None]:
    """Retire the current version; returns it and the version now current (None: none left).

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for v in ("v1", "v2"):
    ...     (root / v).mkdir(); _ = (root / v / "manifest.json").write_text("{}")
    >>> rollback(root), sorted(p.name for p in root.iterdir())
    (('v2', 'v1'), ['.retired-v2', 'v1'])
    """
    current = latest_version(model_dir)
    if current is None:
        raise FileNotFoundError(f"no model version under {model_dir} to roll back")
    os.rename(Path(model_dir) / current, Path(model_dir) / f"{RETIRED}{current}")
    return current, latest_version(model_dir)
