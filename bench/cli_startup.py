"""Start-up time of the ``streamrec`` command: median wall time of N runs, each a new process.

    python bench/cli_startup.py            # 10 runs of each
    python bench/cli_startup.py --runs 20

Times ``python -m streamrec --help`` and ``streamrec --version`` (the console script next to
this interpreter). Target on an idle machine: under 1 s each; the CLI imports subcommands
lazily and keeps torch, Faust and FAISS inside command bodies (tests/unit/test_layers.py
checks the imports; this prints the time they cost).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Enough runs for a stable median on a shared machine without taking long (~10 s).
DEFAULT_RUNS = 10
TARGET_S = 1.0


def wall_s(command: list[str]) -> float:
    """Seconds from spawn to exit of one run (output discarded; a failure stops the bench)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    runs = parser.parse_args().runs
    script = str(Path(sys.executable).with_name("streamrec"))
    for command in ([sys.executable, "-m", "streamrec", "--help"], [script, "--version"]):
        times = [wall_s(command) for _ in range(runs)]
        median = statistics.median(times)
        shown = " ".join([Path(command[0]).name, *command[1:]])
        verdict = "ok" if median < TARGET_S else f"over the {TARGET_S:.0f} s target"
        print(f"{shown}: median {median:.3f} s, min {min(times):.3f} s over {runs} runs ({verdict})")


if __name__ == "__main__":
    main()
