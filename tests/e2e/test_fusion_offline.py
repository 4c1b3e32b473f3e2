"""Fusion of the streaming sources on ml-100k (no transformer: no training needed), leave-one-out.

The full curve with the transformer is `bench/fusion_curve.py` (docs/fusion.md).
"""

from __future__ import annotations

from collections import Counter

import pytest

from streamrec.models.content import Content
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.evaluation import score
from streamrec.models.fusion import Fusion, fit
from streamrec.models.holdout import feed, holdout_contexts, leave_one_out, user_sequences, validation_contexts
from streamrec.models.metrics import head_items
from streamrec.models.rerank import TailRerank
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.trending import Trending
from streamrec.streams.sources import movielens_events, movielens_items

pytestmark = pytest.mark.e2e
# Encoding the catalog's text, feeding ml-100k to three sources, fitting and scoring:
# measured 75 s on a busy 2-core machine; the budget leaves room for a busier one.
OFFLINE_FUSION_S = 600.0


@pytest.mark.timeout(OFFLINE_FUSION_S)
def test_fitted_fusion_beats_its_sources_and_the_knob_buys_coverage(tmp_path) -> None:
    events, items = movielens_events(), movielens_items()
    train, valid, test = leave_one_out(user_sequences(events))
    catalog = [item.item_id for item in items]
    head = head_items(Counter(e.item_id for evs in train.values() for e in evs))
    contexts, targets = holdout_contexts(train, valid, test)
    vectors = TextEncoder(cache_dir=tmp_path).encode_items(items)
    sources = {"cooccurrence": CoOccurrence(), "content": Content(vectors=(catalog, vectors)), "trending": Trending()}
    fusion = Fusion(sources)
    feed(fusion, train, items)
    fit_contexts, fit_targets = validation_contexts(train, valid)
    fusion.weights = fit(fusion, fit_contexts, fit_targets)

    fused = score(fusion, contexts, targets, catalog, head)
    for source in sources.values():
        assert fused["ndcg@10"] > score(source, contexts, targets, catalog, head)["ndcg@10"]
    tail = score(TailRerank(fusion, 0.75), contexts, targets, catalog, head)  # a knob from the curve
    assert tail["coverage@10"] > 1.5 * fused["coverage@10"] and tail["tail_share@10"] > fused["tail_share@10"]
    assert tail["ndcg@10"] > 0.9 * fused["ndcg@10"]
