"""How fast `claudesec drill run` stops on Ctrl-C, and that it still writes its reports.

Starts the whole offline catalogue (default parallelism) in a child, waits until a drill has
started its work (its temporary directory exists), sends SIGINT as a terminal would, and times
from the signal to the process exit. Repeats at different moments (the first drill, the middle
of the run) and checks each time that the JSON report exists and marks the run interrupted.

    .venv/bin/python benchmarks/drill_interrupt_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOTSTRAP = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from claudesec.cli.entry import run; run(sys.argv[1:])"
)


def one_run(delay_dirs: int) -> tuple[float, bool, int]:
    """Interrupt once ``delay_dirs`` drill directories have appeared; (seconds to exit,
    report written and marked interrupted, exit code)."""
    with tempfile.TemporaryDirectory() as work:
        temp = Path(work) / "tmp"
        temp.mkdir()
        env = dict(os.environ, TMPDIR=str(temp), PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP, "drill", "run", "--json", "o.json"],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(1 for _ in temp.glob("*/*")) >= delay_dirs:
                break
            time.sleep(0.02)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=300)
        took = time.perf_counter() - sent
        report = Path(work) / "o.json"
        ok = report.exists() and json.loads(report.read_text())["interrupted"] is True
        return took, ok, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}")
    times: list[float] = []
    for run in range(args.runs):
        delay = 1 + 3 * run  # the first drill, then deeper into the run
        took, ok, code = one_run(delay)
        times.append(took)
        print(
            f"run {run + 1}: SIGINT after {delay} drill dir(s): "
            f"exit {code} in {took:.2f} s, report ok: {ok}"
        )
    print(f"p50 {statistics.median(times):.2f} s, max {max(times):.2f} s over {len(times)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
