"""Measuring tools for bench/bench_scale.py: resident memory over time, folder sizes, wrk.

>>> spark([1, 2, 3, 4]), spark([])
('▁▃▅█', '')
>>> parse_wrk(WRK_SAMPLE)["requests_per_s"], parse_wrk(WRK_SAMPLE)["p99_ms"]
(6012.5, 14.2)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

BARS = "▁▂▃▄▅▆▇█"
PAGE_KB = 1024
# One line of wrk's --latency table: "     99%   14.20ms".
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
WRK_SAMPLE = """  Latency Distribution
     50%    1.20ms
     75%    2.00ms
     90%    4.00ms
     99%   14.20ms
  90000 requests in 15.00s, 50.00MB read
Requests/sec:   6012.50
"""
# wrk picks a random user of u0..u{n-1} per request (Lua's RNG, seeded per thread).
WRK_SCRIPT = """
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  return wrk.format("GET", "/v1/users/u" .. math.random(0, %d) .. "/recommendations"%s)
end
"""


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MB (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = next((int(line.split()[1]) for line in text.splitlines() if line.startswith("VmRSS:")), None)
    return None if kb is None else kb / PAGE_KB  # a zombie has no VmRSS


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


class Sampler:
    """Samples named probes every ``every_s`` in a thread: ``series[name] = [(t, MB)]``, all
    probes of a round at the same ``t``. ``watch`` probes a process's ``rss_mb``."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.probes: dict[str, Callable[[], float | None]] = {}
        self.series: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def watch(self, name: str, pid: int) -> None:
        self.track(name, partial(rss_mb, pid))

    def track(self, name: str, probe: Callable[[], float | None]) -> None:
        """Sample ``probe()`` (MB; None: no sample this round) as ``name``."""
        self.probes[name] = probe
        self.series.setdefault(name, [])

    def elapsed(self) -> float:
        """Seconds since the sampler was made: the time axis of its series."""
        return time.monotonic() - self._t0

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            t = round(self.elapsed(), 1)
            for name, probe in list(self.probes.items()):
                mb = probe()
                if mb is not None:
                    self.series[name].append((t, round(mb, 1)))


def spark(values: list[float]) -> str:
    """A one-line bar chart of ``values`` (min .. max)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    return "".join(BARS[int((v - low) / (high - low or 1) * (len(BARS) - 1))] for v in values)


def plateau(series: list[tuple[float, float]]) -> dict[str, float]:
    """Growth of the last quarter of a run against the whole: a plateau keeps it near 0."""
    values = [mb for _, mb in series]
    if len(values) < 4:
        return {"first_mb": values[0] if values else 0.0, "last_mb": values[-1] if values else 0.0}
    quarter = len(values) * 3 // 4
    return {
        "first_mb": values[0],
        "peak_mb": max(values),
        "last_mb": values[-1],
        "last_quarter_growth_mb": round(values[-1] - values[quarter], 1),
    }


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from ``wrk --latency`` output."""
    out = {f"p{p}_ms": round(float(v) * _UNIT_MS[u], 2) for p, v, u in _PERCENTILE.findall(text)}
    rate = _RATE.search(text)
    out["requests_per_s"] = float(rate[1]) if rate else 0.0
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = float(errors[1]) if errors else 0.0
    return out


def run_wrk(
    url: str, users: int, seconds: float, connections: int, threads: int, server: int, key: str = ""
) -> dict[str, Any]:
    """wrk against random users' lists at ``url``; its figures, with the CPU time the
    ``server`` process spent: requests per CPU-second hardly depend on what else runs."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    header = f', {{["Authorization"] = "Bearer {key}"}}' if key else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (users - 1, header))
    try:
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "-s", script.name, url]
        cpu = cpu_seconds(server)
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
        cpu = cpu_seconds(server) - cpu
    finally:
        os.unlink(script.name)
    figures = parse_wrk(done.stdout)
    served = figures["requests_per_s"] * seconds
    return figures | {
        "server_cpu_s": round(cpu, 1),
        "requests_per_cpu_s": round(served / cpu, 1) if cpu else 0.0,
        "connections": connections,
        "threads": threads,
        "seconds": seconds,
    }
