"""Run the whole stack locally: embedded broker, topics, workers and the HTTP server.

Each worker, the server and the trainer are child processes started through the ``streamrec``
command with the stack's settings in their environment, exactly as an operator would
run them, so tests, the demo and backtests exercise the real deployment path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType

import click
import httpx

from streamrec.infra.broker import EmbeddedBroker, create_topics, free_port, listening, stop_group, wipe_state
from streamrec.settings import EMBEDDED, Settings
from streamrec.streams.topics import topic_partitions
from streamrec.streams.workdir import ready_marker

WORKER_READY_TIMEOUT_S = 90.0
SERVER_READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def broker_file(settings: Settings) -> Path:
    """Where a running local stack leaves its broker's address for other commands."""
    return Path(settings.data_dir) / "broker.url"


def running_broker(settings: Settings) -> str | None:
    """The broker to use: the configured one, else the running local stack's, else None.

    A broker that does not accept a connection at once is a one-line error, not a client
    retrying "Connection refused" for minutes: most often ``broker.url`` outlived its stack.
    """
    if settings.broker != EMBEDDED:
        _require_reachable(settings.broker, "STREAMREC_BROKER")
        return settings.broker
    path = broker_file(settings)
    if not path.exists():
        return None
    url = path.read_text().strip()
    _require_reachable(url, f"{path}, left by a `streamrec up` that is no longer running? delete it or run `make up`")
    return url


def _require_reachable(url: str, origin: str) -> None:
    """Raise a one-line error unless one of the url's ``host:port`` bootstrap servers listens."""
    servers = [server.rpartition(":") for server in url.removeprefix("kafka://").split(",")]
    if not any(port.isdigit() and listening(host, int(port)) for host, _, port in servers):
        raise StackError(f"no broker answers at {url} (from {origin})")


class StackError(click.ClickException):
    """Something the user can fix (a busy port, a dead broker): printed as one line, exit code 1."""


def require_free_port(host: str, port: int) -> None:
    """A one-line error if something already listens on host:port."""
    with socket.socket() as s:
        if s.connect_ex((host, port)) == 0:
            raise StackError(f"{host}:{port} is already in use (another streamrec serve?); set STREAMREC_HTTP_PORT")


@contextlib.contextmanager
def stopping_on_signals(on_stop: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Turn SIGTERM (and SIGINT, SIGHUP) into KeyboardInterrupt once, so a ``with Stack``
    inside stops every child; a second signal during that shutdown is ignored rather than
    cutting it short. The interrupt ends here: ``on_stop`` is called and the block exits
    normally (exit status 0), also when the signal cut a C call short and Python reported
    it as a SystemError caused by the KeyboardInterrupt.

    Only the main thread may install handlers; the previous ones come back on exit.
    """
    received: list[int] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if not received:
            received.append(signum)
            raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except (KeyboardInterrupt, SystemError) as exc:
        cause = exc if isinstance(exc, KeyboardInterrupt) else exc.__cause__ or exc.__context__
        if not (received and isinstance(cause, KeyboardInterrupt)):
            raise
        on_stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Stack:
    """Context manager for a running streamrec deployment on this machine.

    >>> with Stack(Settings.load()) as stack:  # doctest: +SKIP
    ...     stack.settings.broker
    'kafka://127.0.0.1:40123'
    """

    def __init__(self, settings: Settings, workers: int = 1, serve: bool = False, trainer: bool = False) -> None:
        self.settings = settings
        self.n_workers = workers
        self.serve = serve
        self.trainer = trainer
        self.broker: EmbeddedBroker | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log_dir = Path(settings.data_dir) / "logs"
        # Worker name -> its metrics port, kept across restarts of that worker.
        self.metrics_ports: dict[str, int] = {}

    def start(self) -> Stack:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Stack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.serve:
            require_free_port(self.settings.http_host, self.settings.http_port)
        if self.settings.broker == EMBEDDED:
            self.broker = EmbeddedBroker(log_path=self.log_dir / "broker.log").start()
            # The in-memory broker starts empty: state from an earlier run would disagree.
            wipe_state(self.settings.data_dir)
            self.settings = self.settings.with_(broker=self.broker.url, recovery_check=0)
            broker_file(self.settings).write_text(self.broker.url)
        create_topics(self.settings.bootstrap_servers, topic_partitions(self.settings))
        for i in range(self.n_workers):
            self.start_worker(f"worker-{i}")
        if self.serve:
            self.start_server()
        if self.trainer:  # the continual trainer (`streamrec trainer run`): writes versions workers reload
            self._spawn("trainer", ["trainer", "run"])
        self.wait_workers_ready()
        return self

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    @property
    def metrics_urls(self) -> dict[str, str]:
        """Worker name -> its Prometheus endpoint."""
        return {
            name: f"http://{self.settings.metrics_host}:{port}/metrics" for name, port in self.metrics_ports.items()
        }

    def urls(self) -> list[str]:
        """What this stack serves, one ``what: where`` line each (`streamrec up` prints them)."""
        lines = [f"kafka bootstrap: {self.settings.bootstrap_servers}"]
        if self.serve:
            lines += [
                f"http api: {self.http_url}/v1",
                f"dashboard: {self.http_url}/dashboard",
                f"server metrics: {self.http_url}/metrics",
                f"health: {self.http_url}/healthz",
            ]
        return lines + [f"{name} metrics: {url}" for name, url in self.metrics_urls.items()]

    def start_worker(self, name: str) -> None:
        ready_marker(self.settings.data_dir, name).unlink(missing_ok=True)
        self._spawn(name, ["worker", "--name", name], {"metrics_port": self._metrics_port(name)})

    def _metrics_port(self, name: str) -> int:
        """A free port per worker, kept across its restarts (0 if metrics are off).

        Not metrics_port + i: several stacks start at once on one machine (tests), and a
        worker takes seconds to bind, so a port seen free may be another stack's by then.
        """
        if not self.settings.metrics_port:
            return 0
        if name not in self.metrics_ports:
            self.metrics_ports[name] = free_port()
        return self.metrics_ports[name]

    def start_server(self) -> None:
        urls = self.settings.worker_metrics_urls or ",".join(self.metrics_urls.values())
        self._spawn("server", ["serve"], {"worker_metrics_urls": urls})
        deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive("server")
            try:
                if httpx.get(f"{self.http_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"HTTP server not ready after {SERVER_READY_TIMEOUT_S:.0f} s")

    def wait_workers_ready(self, names: list[str] | None = None) -> None:
        names = names or [n for n in self.processes if n.startswith("worker")]
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        for name in names:
            while not ready_marker(self.settings.data_dir, name).exists():
                self._check_alive(name)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {WORKER_READY_TIMEOUT_S:.0f} s; see {self.log_dir}")
                time.sleep(0.1)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one process abruptly (crash tests) or politely (SIGTERM)."""
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=STOP_TIMEOUT_S)

    def signal_broker(self, sig: int) -> None:
        """Signal the embedded broker: SIGSTOP/SIGCONT freeze and thaw it (fault tests)."""
        if self.broker is None or self.broker._process is None:
            raise RuntimeError("no embedded broker to signal")
        self.broker._process.send_signal(sig)

    def stop(self) -> None:
        """Stop every child's process group (SIGTERM, then SIGKILL after `STOP_TIMEOUT_S`), then the broker."""
        processes = list(self.processes.values())
        self.processes.clear()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            stop_group(process, max(0.1, deadline - time.monotonic()))
        if self.broker:
            self.broker.stop()
            broker_file(self.settings).unlink(missing_ok=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str], settings: dict[str, object] | None = None) -> None:
        """Start ``streamrec ARGS`` with the stack's settings, changed by ``settings``."""
        env = {**os.environ, **self.settings.with_(**(settings or {})).as_env(), "PYTHONUNBUFFERED": "1"}
        # Its own process group: a terminal's Ctrl-C reaches only `up`, which stops the groups in order.
        # The child keeps its own copy of the log's descriptor; ours closes right away.
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "streamrec", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process

    def _check_alive(self, name: str) -> None:
        code = self.processes[name].poll()
        if code is not None:
            raise RuntimeError(f"{name} exited with code {code}; see {self.log_dir / (name + '.log')}")
