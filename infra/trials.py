"""The trainer's side of champion/challenger: outcomes from the lists in, decisions out.

`Trials` follows the ``recommendations`` topic (from the beginning: lists of other
experiments are ignored by name), hands each list's outcome to a
`streamrec.models.challenger.Referee`, and every `CHECK_EVERY_S` lets it decide on the
running trial, which promotes or retires the challenger (docs/experiments.md,
"Champion/challenger"). The trainer runs no round while a trial is running.
"""

from __future__ import annotations

import logging
import queue

from streamrec.models.challenger import WAIT, Referee
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record, TopicReader
from streamrec.streams.contracts import InvalidEvent, parse_recommendation

log = logging.getLogger(__name__)

# A decision costs a bootstrap of both arms (seconds for thousands of users on a loaded
# 2-core machine): at most this often, which is well under how fast a trial's sample grows.
CHECK_EVERY_S = 10.0


class Trials:
    """The running trial's referee, fed from the lists (the reader thread only queues)."""

    def __init__(self, settings: Settings, check_every_s: float = CHECK_EVERY_S) -> None:
        self.referee = Referee(settings.model_dir, settings.recommender)
        self.check_every_s = check_every_s
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._next_check = 0.0
        self.reader = TopicReader(
            settings.bootstrap_servers, settings.topic_recommendations, self.on_records, name="trainer-trials"
        )

    def start(self) -> Trials:
        self.reader.start()
        return self

    def stop(self) -> None:
        self.reader.stop()

    def on_records(self, records: list[Record]) -> None:
        for record in records:
            self._queue.put(record.value)

    @property
    def running(self) -> bool:
        """Whether a trial runs (re-reads the trial file)."""
        return self.referee.refresh() is not None

    def drain(self) -> None:
        """Hand the queued lists' outcomes to the referee (after re-reading the trial file)."""
        self.referee.refresh()
        while True:
            try:
                value = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                message = parse_recommendation(value)
            except InvalidEvent:
                continue
            if message.experiment is not None and message.arm is not None and message.outcome is not None:
                outcome = message.outcome
                self.referee.add(message.experiment, message.arm, message.user_id, outcome.seen, outcome.items)

    def tick(self, now: float, catalog_size: int) -> bool:
        """`drain` and, when a check is due, decide; True if a trial ended."""
        self.drain()
        if now < self._next_check:
            return False
        self._next_check = now + self.check_every_s
        decision = self.referee.check(catalog_size)
        if decision is not None and decision["action"] == WAIT:
            log.info("challenger %s: wait (%s)", decision["trial"]["challenger"], decision["reason"])
        return decision is not None and decision["action"] != WAIT
