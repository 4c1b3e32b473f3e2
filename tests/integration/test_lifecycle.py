"""`streamrec up` and `streamrec demo` stop everything it started on SIGTERM and SIGINT: no child or grandchild
outlives it (re-parented to PID 1), and no ``broker.url`` is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streamrec.infra.broker import free_port
from streamrec.infra.stack import STOP_TIMEOUT_S, WORKER_READY_TIMEOUT_S
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

# Each command and the line it prints once the broker, the worker and the server are ready
# (the demo replays slowly, so that it is still running when signalled).
COMMANDS = {
    "up": (["up"], "health: "),
    "demo": (["demo", "--rate", "50"], "stack up: "),
}


def proc_stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, process group, state) of a live process, None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rpartition(")")[2].split()  # after "pid (comm)": state ppid pgrp ...
    return (int(fields[1]), int(fields[2]), fields[0]) if fields[0] != "Z" else None


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid -> its process group."""
    found: dict[int, int] = {}
    frontier = {root}
    while frontier:
        children = {pid: stat for pid in all_pids() if (stat := proc_stat(pid)) and stat[0] in frontier}
        frontier = set(children) - set(found)
        found.update({pid: stat[1] for pid, stat in children.items()})
    return found


def alive_in(pids: set[int], groups: set[int]) -> list[int]:
    """Processes still alive among ``pids`` or in one of ``groups``."""
    return [pid for pid in all_pids() if (stat := proc_stat(pid)) and (pid in pids or stat[1] in groups)]


@pytest.mark.parametrize(("command", "sig"), [("up", signal.SIGTERM), ("up", signal.SIGINT), ("demo", signal.SIGTERM)])
def test_stops_every_child_on_signal(tmp_path: Path, command: str, sig: signal.Signals) -> None:
    args, ready_line = COMMANDS[command]
    data = tmp_path / "data"
    env = {
        **os.environ,
        "STREAMREC_DATA_DIR": str(data),
        "STREAMREC_HTTP_PORT": str(free_port()),
        "STREAMREC_RECOMMENDER": "popularity",  # needs no model: nothing to train first
    }
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "streamrec", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    groups: set[int] = set()
    try:
        ready = wait_for(
            lambda: ready_line in Path(log.name).read_text() or up.poll() is not None, WORKER_READY_TIMEOUT_S
        )
        assert ready and up.poll() is None, Path(log.name).read_text()
        children = descendants(up.pid)
        groups |= set(children.values()) - {up.pid}
        assert len(children) >= 3, children  # broker, worker, server
        assert (data / "broker.url").exists()

        up.send_signal(sig)
        assert up.wait(timeout=3 * STOP_TIMEOUT_S) == 0, Path(log.name).read_text()
        # Re-parented orphans would still be alive now that `up` itself has exited.
        assert wait_for(lambda: not alive_in(set(children), groups), 5.0), alive_in(set(children), groups)
        assert not (data / "broker.url").exists()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        for pid in alive_in(set(), groups):
            os.kill(pid, signal.SIGKILL)
        log.close()
