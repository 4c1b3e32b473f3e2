"""Where a worker keeps its local files: ``<data_dir>/workers/<name>/``.

Faust's RocksDB tables live there, and so does the ``ready`` marker the worker writes
once it consumes (what the local stack and the container health check wait for).
Standard library only, so that supervisors can use it without importing Faust.

>>> str(ready_marker("/data", "worker-0"))
'/data/workers/worker-0/ready'
"""

from __future__ import annotations

from pathlib import Path


def worker_dir(data_dir: str | Path, worker_name: str) -> Path:
    """The worker's own folder (Faust's ``datadir``)."""
    return Path(data_dir) / "workers" / worker_name


def ready_marker(data_dir: str | Path, worker_name: str) -> Path:
    """Exists while the worker is consuming; holds the time it became ready."""
    return worker_dir(data_dir, worker_name) / "ready"
