"""Shared fixtures: settings isolated per test run, and a real local stack."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamrec.infra.broker import free_port
from streamrec.settings import Settings
from streamrec.infra.stack import Stack


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
