"""The replay tools lose nothing silently: an undelivered record is an error with a count."""

from __future__ import annotations

import socket

import pytest

from streamrec.settings import Settings
from streamrec.streams.replay import Sender, UndeliveredError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sender_raises_with_the_count_when_the_broker_never_acknowledges() -> None:
    settings = Settings(broker=f"kafka://127.0.0.1:{_closed_port()}")
    expected = r"^3 of 3 records were not delivered: .*timed out"
    with pytest.raises(UndeliveredError, match=expected), Sender(settings, **{"message.timeout.ms": 300}) as out:
        for n in range(3):
            out.send("events", f"u{n}", b"{}")


def test_an_error_inside_the_block_is_not_masked_by_the_delivery_check() -> None:
    settings = Settings(broker=f"kafka://127.0.0.1:{_closed_port()}")
    with pytest.raises(KeyError), Sender(settings, **{"message.timeout.ms": 300}) as out:
        out.send("events", "u", b"{}")
        raise KeyError("the caller's own error")
