"""`up` and `demo` end with status 0 on SIGTERM wherever the signal lands (infra.stack.stopping_on_signals)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from streamrec.infra.stack import stopping_on_signals

# Longer than any signal delivery: a test that reaches its end was not interrupted.
SLEEP_S = 10.0


def test_a_signal_ends_the_block_quietly_and_calls_on_stop() -> None:
    stops: list[str] = []
    with stopping_on_signals(lambda: stops.append("stopped")):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(SLEEP_S)  # the handler raises before this returns
    assert stops == ["stopped"]


def test_a_signal_that_cut_a_c_call_short_is_still_a_stop() -> None:
    """CPython reports a KeyboardInterrupt raised inside some C calls as a SystemError
    caused by it (seen in `streamrec demo` under SIGTERM): that is a stop too."""
    stops: list[str] = []
    with stopping_on_signals(lambda: stops.append("stopped")):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(SLEEP_S)
        except KeyboardInterrupt as interrupt:
            raise SystemError("<class 'X'> returned a result with an exception set") from interrupt
    assert stops == ["stopped"]


def test_errors_that_are_not_a_received_signal_go_through() -> None:
    with pytest.raises(SystemError), stopping_on_signals():
        raise SystemError("a real one")
    with pytest.raises(KeyboardInterrupt), stopping_on_signals():
        raise KeyboardInterrupt  # not from a signal this block received
