"""A foreign command-line client (not our Python code) drives the pipeline: it produces
events and consumes the lists the worker publishes for them.

The client is npm's ``kafka-console`` (a pure-JavaScript Kafka client, @platformatic/kafka);
.ci/run installs it pinned (docs/operations.md, "Clients", has the versions that work).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid

import orjson
import pytest

from streamrec.infra.stack import Stack
from streamrec.streams.replay import produce_items
from streamrec.types import Item
from tests.conftest import LONGEST_WAIT_S, wait_for

pytestmark = pytest.mark.integration

CLIENT = "kafka-console"
ITEMS = [Item(f"fc{i}", f"Foreign film {i}", category="Drama") for i in range(10)]


@pytest.fixture(scope="module")
def client() -> str:
    path = shutil.which(CLIENT)
    if path is None:
        pytest.skip(f"{CLIENT} is not installed (npm install -g kafka-console@3.1.55; .ci/run does)")
    return path


def test_foreign_cli_produces_events_and_consumes_a_list(client: str, stack: Stack) -> None:
    settings = stack.settings
    produce_items(ITEMS, settings)
    user = f"foreign-{uuid.uuid4().hex[:6]}"
    lines = [
        json.dumps({"key": user, "value": {"user_id": user, "item_id": item.item_id, "event_type": "click"}})
        for item in ITEMS[:3]
    ]
    produced = subprocess.run(
        [client, "-b", settings.bootstrap_servers, "produce", settings.topic_events],
        input="\n".join(lines) + "\n",
        text=True,
        capture_output=True,
        timeout=LONGEST_WAIT_S,
    )
    assert produced.returncode == 0, produced.stderr

    consumer = subprocess.Popen(
        [client, "-b", settings.bootstrap_servers, "consume", settings.topic_recommendations, "-d", "raw", "-f", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lists: list[dict] = []

    def read() -> None:
        assert consumer.stdout is not None
        for line in consumer.stdout:
            record = json.loads(line)
            if record["key"] == user:
                lists.append(orjson.loads(record["value"]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: bool(lists), LONGEST_WAIT_S), consumer.stderr
    finally:
        consumer.terminate()
        consumer.wait(timeout=10)
    assert lists[-1]["user_id"] == user
    assert lists[-1]["items"], lists[-1]
