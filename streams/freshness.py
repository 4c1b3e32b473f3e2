"""Freshness: event -> recommendation latency, from an event's production to the
publication of the first list that includes it (both on the clock `streams.lists` names).

A list for user ``u`` carries ``user_events`` = how many events of ``u`` its state had
applied, so the ``n``-th event produced for ``u`` is included in the first list with
``user_events >= n`` (events of one user coalesced in a micro-batch share one list).

>>> f = Freshness()
>>> f.sent("u", 1.0); f.sent("u", 1.5); f.published(Published("u", (), 2, 2.0))
>>> sorted(f.latencies_s), f.outstanding
([0.5, 1.0], 0)
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque

import numpy as np

from streamrec.models.prequential import Published


class Freshness:
    """Matches produced events to the lists that include them."""

    def __init__(self) -> None:
        self._produced: Counter[str] = Counter()
        self._pending: defaultdict[str, deque[tuple[int, float]]] = defaultdict(deque)
        self.latencies_s: list[float] = []

    def sent(self, user_id: str, at: float) -> None:
        self._produced[user_id] += 1
        self._pending[user_id].append((self._produced[user_id], at))

    def published(self, listed: Published) -> None:
        pending = self._pending.get(listed.user_id)
        while pending and pending[0][0] <= listed.user_events:
            self.latencies_s.append(listed.published_at - pending.popleft()[1])

    @property
    def outstanding(self) -> int:
        """Events produced but not yet in any published list."""
        return sum(len(p) for p in self._pending.values())

    def percentiles_ms(self, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
        if not self.latencies_s:
            return {f"p{q:g}": float("nan") for q in qs}
        values = np.percentile(np.asarray(self.latencies_s) * 1000.0, qs)
        return {f"p{q:g}": float(v) for q, v in zip(qs, values, strict=True)}
