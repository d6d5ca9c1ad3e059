"""Latency floor of the loopback emulator: a bare SDK ``messages.create`` against it.

Prints p50/p90/p99 for the real ``anthropic`` SDK and, side by side, for a raw keep-alive
``http.client`` POST of the same request, so the SDK's own share is visible. The SDK figure
is the floor the audit wrapper's overhead is measured against (DESIGN.md section 6).

    .venv/bin/python benchmarks/emulator_bench.py [--calls 500]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from claudesec.emulator import Emulator

if TYPE_CHECKING:
    from anthropic.types import MessageParam

MODEL = "claude-sonnet-4-6"
MESSAGES: list[MessageParam] = [{"role": "user", "content": "Say hello to the benchmark."}]


def _time(call: Callable[[], object], calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"{label:<28} p50 {p50:6.3f} ms   p90 {p90:6.3f} ms   p99 {p99:6.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()

    import anthropic

    with Emulator() as emulator:
        _, secret = emulator.state.add_key("api", name="bench")
        client = anthropic.Anthropic(api_key=secret, base_url=emulator.base_url, max_retries=0)

        def sdk_call() -> object:
            return client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

        connection = http.client.HTTPConnection(emulator.host, emulator.port)
        body = json.dumps({"model": MODEL, "max_tokens": 64, "messages": MESSAGES})
        headers = {
            "content-type": "application/json",
            "anthropic-version": "2023-06-01",
            "x-api-key": secret,
        }

        def raw_call() -> object:
            connection.request("POST", "/v1/messages", body=body, headers=headers)
            response = connection.getresponse()
            return response.read()

        raw = _time(raw_call, args.calls, args.warmup)
        sdk = _time(sdk_call, args.calls, args.warmup)
        connection.close()
        client.close()

    print(f"{args.calls} calls each, loopback, keep-alive")
    print(_summary("raw http.client POST", raw))
    print(_summary("anthropic SDK create", sdk))
    print(f"SDK / raw p50 ratio: {statistics.median(sdk) / statistics.median(raw):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
