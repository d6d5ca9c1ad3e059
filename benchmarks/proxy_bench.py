"""Latency the proxy adds, its throughput, and its memory with 100 open streams.

    .venv/bin/python benchmarks/proxy_bench.py [--requests 2000]

The emulator runs in this process; the proxy runs as `claudesec proxy` in its own process (as
it is deployed), with policy, DLP and an audit record per call. Each latency pair is measured
in the same run over keep-alive connections: straight to the emulator, then through the proxy.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from claudesec.emulator import Emulator  # noqa: E402
from tests.fixtures.cli import spawn_proxy  # noqa: E402

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
CONFIG = """
[policy.roles.dev]
models = ["claude-sonnet-*"]
max_tokens = 1024
[proxy]
max_concurrent_streams = 1000
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(port: int, key: str, n: int, *, stream: bool) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.sock = None
    body = json.dumps({**BODY, "stream": stream})
    headers = {
        "x-api-key": key,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    out = []
    for _ in range(n):
        start = time.perf_counter()
        connection.request("POST", "/v1/messages", body=body, headers=headers)
        response = connection.getresponse()
        if stream:
            response.readline()  # time to first byte of the event stream
            out.append(time.perf_counter() - start)
            response.read()
        else:
            response.read()
            out.append(time.perf_counter() - start)
        assert response.status == 200, response.status
    connection.close()
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    (work / "claudesec.toml").write_text(CONFIG)
    with Emulator() as emulator:
        upstream = emulator.state.add_key("api")
        env = dict(
            os.environ,
            CLAUDESEC_HOME=str(work / "home"),
            ANTHROPIC_API_KEY=upstream.secret,
            CLAUDESEC_CONFIG=str(work / "claudesec.toml"),
            PYTHONPATH=str(ROOT),
        )
        from claudesec.config import load_config
        from claudesec.proxy.service import create_token

        os.environ["CLAUDESEC_HOME"] = env["CLAUDESEC_HOME"]
        token = create_token(
            load_config(work / "claudesec.toml").config, user="bench", role="dev", expires="1d"
        ).secret
        proxy, port, _ = spawn_proxy(emulator.base_url, env)
        try:
            n = args.requests
            timed(emulator.port, upstream.secret, 100, stream=False)  # warm-up
            timed(port, token, 100, stream=False)
            rows = []
            started_load = load_average()
            for label, stream in (("plain", False), ("stream TTFB", True)):
                direct = timed(emulator.port, upstream.secret, n, stream=stream)
                # The proxy's own CPU per request (its process only: the emulator and the
                # clients are here) moves much less with the machine's load than latency.
                cpu_before = cpu_s(proxy.pid)
                via = timed(port, token, n, stream=stream)
                cpu = (cpu_s(proxy.pid) - cpu_before) / n * 1e3
                d50, v50 = statistics.median(direct) * 1e3, statistics.median(via) * 1e3
                d99, v99 = pct(direct, 0.99) * 1e3, pct(via, 0.99) * 1e3
                rows.append((label, d50, v50, v50 - d50, d99, v99, v99 - d99, cpu))
            print(
                f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; "
                f"load average {started_load} before, {load_average()} after the latency runs"
            )
            print(
                "| request | direct p50 | proxy p50 | added p50 "
                "| direct p99 | proxy p99 | added p99 | proxy CPU per request |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for r in rows:
                print(f"| {r[0]} | " + " | ".join(f"{v:.2f} ms" for v in r[1:]) + " |")

            # Sustained throughput: 8 keep-alive clients for a few seconds.
            done = [0]
            lock = threading.Lock()
            stop = time.perf_counter() + args.seconds

            def load() -> None:
                while time.perf_counter() < stop:
                    timed(port, token, 20, stream=False)
                    with lock:
                        done[0] += 20

            threads = [threading.Thread(target=load) for _ in range(8)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print(
                f"sustained: {done[0] / (time.perf_counter() - started):.0f} requests/s "
                "(8 clients, proxy + emulator + clients sharing the cores)"
            )

            # Memory with 100 concurrent open streams.
            idle = rss_kb(proxy.pid)
            emulator.state.configure(stream_event_delay_ms=200)
            opened = threading.Barrier(101)
            peak = [0]

            def hold() -> None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                c.request(
                    "POST",
                    "/v1/messages",
                    body=json.dumps({**BODY, "stream": True}),
                    headers={"x-api-key": token, "anthropic-version": "2023-06-01"},
                )
                r = c.getresponse()
                r.readline()
                opened.wait()
                r.read()
                c.close()

            holders = [threading.Thread(target=hold) for _ in range(100)]
            for t in holders:
                t.start()
            opened.wait()
            peak[0] = rss_kb(proxy.pid)
            for t in holders:
                t.join()
            print(
                f"memory: {idle / 1024:.1f} MB idle, {peak[0] / 1024:.1f} MB with 100 open "
                f"streams ({(peak[0] - idle) / 100:.0f} KB per stream)"
            )
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)


if __name__ == "__main__":
    main()
