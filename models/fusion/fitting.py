"""Fitting the fusion ranker's ``\\theta`` on a log, and publishing it as a model version.

L2-regularised logistic regression (Newton/IRLS, numpy) on logged positions: for each
user, the window before an event, label 1 for the item of the event and 0 for every
other candidate (users whose item is no candidate are skipped: they say nothing about
the order).

``streamrec train`` fits the weights for each version it writes (`fit_for`: the events it
holds out, each user's last, are the fitting positions); ``streamrec refit`` (`refit`)
fits them for the newest version without retraining and publishes them as a new version
sharing its transformer, which running workers hot-reload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamrec.models.fusion.ranker import Fusion, sources_around
from streamrec.models.fusion.weights import WEIGHTS_FILE, FusionWeights
from streamrec.models.holdout import BATCH, feed, holdout_contexts, leave_one_out, user_sequences
from streamrec.types import Event, Item, UserContext

if TYPE_CHECKING:
    from streamrec.models.transformer import TransformerRecommender

# L2 penalty of the logistic regression on standardised features; Newton steps to fit.
L2 = 1.0
NEWTON_STEPS = 30


class NothingToFit(ValueError):
    """No fitting position has its next item among the candidates (e.g. too short a log)."""


def logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = NEWTON_STEPS) -> np.ndarray:
    """``argmin_theta  sum_n log(1 + e^{-(2 y_n - 1) theta.x_n}) + l2/2 |theta|^2`` by Newton's method.

    >>> x = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 3.0]]); y = np.array([0, 0, 1, 1.0])
    >>> theta = logistic_regression(x, y, l2=0.1)
    >>> bool(theta[1] > 0), (x @ theta > 0).tolist()
    (True, [False, False, True, True])
    """
    theta = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ theta)))
        grad = x.T @ (p - y) + l2 * theta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta


def fit(model: Fusion, contexts: Sequence[UserContext], targets: Sequence[str], l2: float = L2) -> FusionWeights:
    """Fit `FusionWeights` for ``model``'s sources on next-item positions (see module doc)."""
    rows, labels = [], []
    for start in range(0, len(contexts), BATCH):
        chunk = contexts[start : start + BATCH]
        for (candidates, x), target in zip(model.features(chunk), targets[start : start + BATCH], strict=True):
            if target in candidates:
                rows.append(x)
                labels.append(np.array([item == target for item in candidates], dtype=np.float64))
    if not rows:
        raise NothingToFit("no position has its next item among the candidates: nothing to fit")
    x, y = np.concatenate(rows), np.concatenate(labels)
    std = x.std(axis=0)
    mean, scale = np.where(std > 0, x.mean(axis=0), 0.0), np.where(std > 0, std, 1.0)
    coef = logistic_regression((x - mean) / scale, y, l2)
    meta: dict[str, Any] = {"fitted": True, "positions": len(contexts), "with_target": len(rows), "rows": len(y)}
    meta |= {"l2": l2, "fetch": model.fetch}
    return FusionWeights(tuple(model.sources), mean, scale, coef, meta)


def fit_on_log(model: Fusion, events: Sequence[Event], items: Sequence[Item]) -> FusionWeights:
    """Feed each user's events but the last, then fit on the last ones (the positions
    ``streamrec train`` holds out, so the transformer did not train on them); users with
    fewer than three events are left out."""
    train, valid, test = leave_one_out(user_sequences(events))
    feed(model, {u: [*train[u], valid[u]] for u in test}, items)
    return fit(model, *holdout_contexts(train, valid, test))


def fit_for(
    transformer: TransformerRecommender,
    events: Sequence[Event],
    items: Sequence[Item],
    event_weights: Mapping[str, float] | None = None,
) -> FusionWeights:
    """`fit_on_log` for a fusion of fresh sources around ``transformer``."""
    return fit_on_log(Fusion(sources_around(transformer, event_weights), event_weights=event_weights), events, items)


def refit(
    model_dir: str | Path,
    events: Sequence[Event],
    items: Sequence[Item],
    event_weights: Mapping[str, float] | None = None,
) -> Path:
    """Fit the weights for the newest version under ``model_dir`` on a log and publish them
    as a new version with the same transformer (hard-linked); returns its folder.

    Raises FileNotFoundError without a version, `NothingToFit` when the log is too short."""
    from streamrec.models.artifact import load_latest, publish
    from streamrec.models.transformer import TransformerRecommender  # torch: only when fitting

    artifact = load_latest(model_dir)
    if artifact is None:
        raise FileNotFoundError(f"no model version under {model_dir}: run `streamrec train` first")
    weights = fit_for(TransformerRecommender(artifact), events, items, event_weights)
    return publish(model_dir, artifact, {WEIGHTS_FILE: weights.dumps()})
