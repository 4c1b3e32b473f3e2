"""Shared fixtures (settings isolated per test run, a real local stack) and per-test timeouts.

Timeouts (pytest-timeout, fixture set-up included) come from the work's own budgets:
an e2e test names its budget with ``@pytest.mark.timeout(...)`` (required, checked at
collection); unit and integration tests get their kind's budget below.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamrec.infra.broker import READY_TIMEOUT_S, free_port
from streamrec.infra.stack import SERVER_READY_TIMEOUT_S, STOP_TIMEOUT_S, WORKER_READY_TIMEOUT_S, Stack
from streamrec.settings import Settings

# A unit test touches no network and trains at most a toy model for a few seconds; on a
# busy 2-core machine that is still well under this: it only catches a hang.
UNIT_BUDGET_S = 180.0
# The longest single condition an integration test waits for (`wait_for` calls use <= 90 s).
LONGEST_WAIT_S = 90.0
# Starting and stopping one stack, each step at its own ready/stop timeout.
STACK_LIFETIME_S = READY_TIMEOUT_S + WORKER_READY_TIMEOUT_S + SERVER_READY_TIMEOUT_S + STOP_TIMEOUT_S
# An integration test starts at most two stacks (a restart) and waits on a few conditions.
INTEGRATION_BUDGET_S = 2 * STACK_LIFETIME_S + 4 * LONGEST_WAIT_S


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give unit and integration tests their kind's timeout; e2e tests must name their own."""
    unnamed = []
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        if item.get_closest_marker("e2e") is not None:
            unnamed.append(item.nodeid)
        kind_budget = INTEGRATION_BUDGET_S if item.get_closest_marker("integration") else UNIT_BUDGET_S
        item.add_marker(pytest.mark.timeout(kind_budget))
    if unnamed:
        raise pytest.UsageError(f"e2e tests need @pytest.mark.timeout(<their budget>): {unnamed}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Defaults, isolated from the environment and from other tests' data."""
    return Settings.load(env={}, overrides={"data_dir": str(tmp_path / "data"), "http_port": free_port()})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Embedded broker + one worker + HTTP server, shared by a module's tests."""
    data = tmp_path_factory.mktemp("stack")
    settings = Settings.load(env={}, overrides={"data_dir": str(data), "http_port": free_port()})
    with Stack(settings, serve=True) as running:
        yield running


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0, every_s: float = 0.1) -> bool:
    """Poll ``condition`` until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return condition()
