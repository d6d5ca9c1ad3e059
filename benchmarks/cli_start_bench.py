"""Start-up cost of the CLI: `claudesec --help` against `python -c "import typer"`.

One command: ``python benchmarks/cli_start_bench.py [--runs N]``. Prints the median wall time
of each and their ratio (target: <= 1.5x). Also reports `claudesec scan --help`, the
pre-commit path.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def median_wall(argv: list[str], runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    py = sys.executable
    baseline = median_wall([py, "-c", "import typer"], args.runs)
    rows = [
        ("python -c 'import typer'", baseline),
        ("claudesec --help", median_wall([py, "-m", "claudesec", "--help"], args.runs)),
        (
            "claudesec scan --help",
            median_wall([py, "-m", "claudesec", "scan", "--help"], args.runs),
        ),
        ("claudesec --version", median_wall([py, "-m", "claudesec", "--version"], args.runs)),
    ]
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{'command':<28} {'median ms':>10} {'vs import typer':>16}")
    for name, seconds in rows:
        print(f"{name:<28} {seconds * 1000:>10.1f} {seconds / baseline:>15.2f}x")


if __name__ == "__main__":
    main()
