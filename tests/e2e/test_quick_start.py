"""The README's quick start, run literally: every curl it shows answers 200.

The commands come from the README's code block marked ``quick-start`` (so README and test
cannot drift), run from the repository root against a fresh data dir. Two things differ
from a user's terminal, both through the environment, never by editing a command:
``STREAMREC_DATA_DIR`` (a fresh one) and ``STREAMREC_HTTP_PORT`` (a free port, so the test
does not collide with another stack; the curls' ``localhost:8000`` is pointed at it).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from functools import partial
from pathlib import Path

import pytest

from streamrec.infra.broker import free_port
from streamrec.infra.commands.pipeline import DEMO_TRAIN_S
from streamrec.infra.stack import STOP_TIMEOUT_S, WORKER_READY_TIMEOUT_S
from tests.conftest import LONGEST_WAIT_S, wait_for

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- quick-start:"
DOCUMENTED_PORT = "localhost:8000"
# Training on first start (its budget, plus loading and fitting the fusion), the stack's start,
# the 5,000-event replay at 500 ev/s, the curls, and the stop.
BUDGET_S = 2 * DEMO_TRAIN_S + WORKER_READY_TIMEOUT_S + 4 * LONGEST_WAIT_S + 3 * STOP_TIMEOUT_S


def quick_start_commands() -> list[str]:
    """The lines of the README's code block that follows the quick-start marker."""
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index(MARKER) :]
    block = re.search(r"```sh\n(.*?)```", after, re.S)
    assert block is not None, "no ```sh block after the quick-start marker"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_quick_start_sequence_is_as_parsed() -> None:
    commands = quick_start_commands()
    assert commands[0] == "make up"
    assert any(c.startswith("curl ") for c in commands)


@pytest.mark.e2e
@pytest.mark.timeout(BUDGET_S)
def test_readme_quick_start_ends_in_answers(tmp_path: Path) -> None:
    start, *rest = quick_start_commands()
    port = free_port()
    env = {**os.environ, "STREAMREC_DATA_DIR": str(tmp_path / "data"), "STREAMREC_HTTP_PORT": str(port)}
    log_path = tmp_path / "up.log"
    with log_path.open("w") as log:
        # Its own process group, signalled as a terminal's Ctrl-C would be.
        up = subprocess.Popen(
            shlex.split(start), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        ready = wait_for(lambda: "health: " in log_path.read_text() or up.poll() is not None, BUDGET_S / 2, 1.0)
        assert ready and up.poll() is None, log_path.read_text()[-3000:]
        for command in rest:
            if command.startswith("curl "):
                command = command.replace(DOCUMENTED_PORT, f"127.0.0.1:{port}")
                # The worker publishes within moments of the replay; a list may lag it briefly.
                answered = wait_for(partial(_answers, command, env), LONGEST_WAIT_S, 1.0)
                assert answered, f"{command}: {_run(command, env).stderr}"
            else:
                done = _run(command, env)
                assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(timeout=3 * STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    assert not (tmp_path / "data" / "broker.url").exists()


def _answers(command: str, env: dict[str, str]) -> bool:
    return _run(command, env).returncode == 0


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shlex.split(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=LONGEST_WAIT_S * 2
    )
