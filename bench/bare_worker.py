"""The framework alone: a Faust agent on ``events`` that writes one table entry per event.

Same app factory (`streamrec.streams.worker.create_app`: fetch wait, session, RocksDB
store), same topics and ``take_events(batch_max, batch_window_s)`` as the real worker,
and nothing else: no decoding, no model, no output topic. Each write goes to the
table's changelog topic (`CHANGELOG`), where bench/bench_pipeline.py reads it as the
bare "list": key = user_id, value = how many events (JSON) of that user were written, so
freshness and throughput are matched exactly as for a real worker's lists.

    STREAMREC_BROKER=kafka://127.0.0.1:9092 python bench/bare_worker.py
"""

from __future__ import annotations

import time
from collections import Counter

import faust

from streamrec.settings import Settings
from streamrec.streams.faust_compat import set_current_event
from streamrec.streams.workdir import ready_marker
from streamrec.streams.worker import APP_ID, STORE_OPTIONS, create_app

NAME = "bare"
TABLE = "bare"
CHANGELOG = f"{APP_ID}-{TABLE}-changelog"


def build(settings: Settings) -> faust.App:
    app = create_app(settings, NAME)
    events = app.topic(settings.topic_events, key_serializer="raw", value_serializer="raw")
    # JSON keys and values and the store's memory bounds, as the worker's.
    table = app.Table(TABLE, partitions=settings.partitions, options=dict(STORE_OPTIONS))
    written: Counter[str] = Counter()  # per-user count, kept aside so the table is only written

    @app.agent(events)
    async def bare(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_max, settings.batch_window_s):  # type: ignore[attr-defined]
            for event in batch:
                set_current_event(event)  # the write's partition, as in the worker
                user_id = event.key.decode()
                written[user_id] += 1
                table[user_id] = written[user_id]

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def mark_ready(sender: faust.App, **_: object) -> None:
        ready_marker(settings.data_dir, NAME).write_text(str(time.time()))

    return app


def main() -> None:
    settings = Settings.load()
    ready_marker(settings.data_dir, NAME).parent.mkdir(parents=True, exist_ok=True)
    faust.Worker(build(settings), loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
