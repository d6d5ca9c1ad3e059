"""Overhead of AuditedAnthropic over the bare SDK, and DLP speed beside its peers.

Part 1, same run, same loopback emulator (in its own process by default, as the real API
never shares the client's interpreter lock; ``--in-process`` runs it on a thread instead),
calls interleaved so all clients see the same machine load: ``messages.create`` with a 10 KB
prompt through the bare ``anthropic.Anthropic``, through the SDK with a no-op middleware (the
floor of any middleware), and through ``AuditedAnthropic`` (identity, policy, DLP with
redaction on, response DLP, a record in an on-disk audit store per call).
Overhead = p50(audited) - p50(bare).

Part 2: DLP over the same 10 KB prompt (clean, and with planted secrets/PII): claudesec's DLP
(hyperscan and pure-Python backends), a straightforward stdlib-``re`` pass running every
detector's pattern over the text, and Presidio's analyzer when installed. Presidio runs its
pattern recognizers on a blank spaCy pipeline: its NER models are downloaded from a model
hub, which this benchmark never does, so its NER-based entities (names, places) are off.

    .venv/bin/python benchmarks/client_bench.py [--calls 400] [--dlp-runs 300]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudesec.emulator import Emulator

MODEL = "claude-sonnet-4-6"
PROMPT_BYTES = 10 * 1024


def make_prompt(seed: int = 7, planted: bool = False) -> str:
    """~10 KB of what prompts look like: prose, code, numbers, a date, an order id."""
    rng = random.Random(seed)
    words = [
        "the",
        "quarterly",
        "revenue",
        "grew",
        "while",
        "churn",
        "fell",
        "across",
        "regions",
        "so",
        "we",
        "should",
        "compare",
        "cohorts",
        "and",
        "write",
        "a",
        "summary",
        "for",
        "the",
        "team",
        "including",
        "tables",
        "of",
        "results",
        "and",
        "next",
        "steps",
        "python",
        "function",
        "returns",
        "list",
        "dict",
        "tokens",
        "context",
        "window",
        "model",
        "latency",
        "budget",
    ]
    chunks: list[str] = []
    size = 0
    while size < PROMPT_BYTES:
        roll = rng.random()
        if roll < 0.05:
            piece = f"def f_{rng.randint(0, 99)}(x):\n    return x * {rng.randint(2, 9)}\n"
        elif roll < 0.12:
            piece = f"{rng.randint(0, 99999)}"
        elif roll < 0.13:
            piece = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        else:
            piece = rng.choice(words)
        chunks.append(piece)
        size += len(piece) + 1
    text = " ".join(chunks)
    if planted:
        from tests.fixtures.keys import KeyFactory

        factory = KeyFactory(seed)
        extra = (
            f" key {factory.anthropic_api().value} gh {factory.github_classic().value}"
            " mail jane.doe@example.com tel +44 20 7946 0958 card 4111 1111 1111 1111"
            " ip 10.1.2.3 "
        )
        half = len(text) // 2
        text = text[:half] + extra + text[half:]
    return text[: PROMPT_BYTES + 400] if planted else text[:PROMPT_BYTES]


# --------------------------------------------------------------------------- part 1


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


_SERVE = """
import sys
from claudesec.emulator import Emulator
emulator = Emulator().start()
key = emulator.state.add_key("api", name="bench")
print(emulator.base_url, key.secret, flush=True)
sys.stdin.read()
emulator.stop()
"""


@contextlib.contextmanager
def emulator_endpoint(in_process: bool) -> Iterator[tuple[str, str]]:
    """``(base_url, api_key)`` of a running emulator, on a thread or in a child process."""
    if in_process:
        with Emulator() as emulator:
            key = emulator.state.add_key("api", name="bench")
            yield emulator.base_url, key.secret
        return
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert child.stdout is not None
        base_url, secret = child.stdout.readline().split()
        yield base_url, secret
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


def bench_client(calls: int, warmup: int, in_process: bool, fresh: bool = False) -> list[str]:
    import anthropic

    from claudesec import AuditedAnthropic
    from claudesec.audit.secrets import AuditKeys
    from claudesec.audit.store import AuditStore
    from claudesec.config import AuditConfig, Config, PolicyConfig, RoleConfig

    prompt = make_prompt()
    messages: Any = [{"role": "user", "content": prompt}]
    # --fresh: a different prompt on every call (same sequence for every client), so nothing
    # DLP remembers from an earlier call helps; otherwise the prompt repeats the way a
    # client's system prompt and history do.
    fresh_messages: list[Any] = (
        [[{"role": "user", "content": make_prompt(seed=1000 + i)}] for i in range(calls + warmup)]
        if fresh
        else []
    )
    turn = [0]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, emulator_endpoint(in_process) as (url, secret):
        os.environ["CLAUDESEC_HOME"] = tmp
        base = {"api_key": secret, "base_url": url, "max_retries": 0}
        config = Config(
            policy=PolicyConfig(
                users={"bench": "dev"},
                roles={"dev": RoleConfig(models=("claude-*",), max_tokens=1024, dlp="redact")},
            ),
            audit=AuditConfig(store_path=str(Path(tmp) / "audit.db")),
        )
        store = AuditStore.open(Path(tmp) / "plain.db", keys=AuditKeys(Path(tmp)))

        def noop(request: Any, call_next: Any) -> Any:
            return call_next(request)

        bare = anthropic.Anthropic(**base)
        floor = anthropic.Anthropic(**base, middleware=[noop])
        # What a user gets: the store the configuration names, the admission in the client's
        # intent journal and the call record committed by the writer thread. And the same
        # client handed a plain store (admission and outcome committed on the calling thread).
        audited = AuditedAnthropic(user="bench", claudesec_config=config, **base)
        synchronous = AuditedAnthropic(user="bench", claudesec_config=config, store=store, **base)
        clients = {
            "bare SDK": bare,
            "SDK + no-op middleware": floor,
            "AuditedAnthropic": audited,
            "Audited, store=AuditStore": synchronous,
        }
        samples: dict[str, list[float]] = {name: [] for name in clients}
        # CPU of this thread per call: the emulator runs elsewhere, so this is the client's
        # own work, which the machine's load distorts far less than wall time. The process's
        # CPU too: the queued writer's thread works for the client, off the calling thread.
        cpu: dict[str, list[float]] = {name: [] for name in clients}
        process_cpu: dict[str, list[float]] = {name: [] for name in clients}

        def call(client: anthropic.Anthropic) -> None:
            sent = fresh_messages[turn[0]] if fresh else messages
            client.messages.create(model=MODEL, max_tokens=64, messages=sent)

        for i in range(warmup):
            turn[0] = i
            for client in clients.values():
                call(client)
        for i in range(calls):
            turn[0] = warmup + i
            for name, client in clients.items():
                process_start = time.process_time()
                cpu_start = time.thread_time()
                start = time.perf_counter()
                call(client)
                samples[name].append((time.perf_counter() - start) * 1000)
                cpu[name].append((time.thread_time() - cpu_start) * 1000)
                process_cpu[name].append((time.process_time() - process_start) * 1000)
        for client in clients.values():
            client.close()
        recorded = store.head().seq
        with AuditStore.open(Path(tmp) / "audit.db", readonly=True) as own:
            recorded += own.head().seq
        store.close()

    base_p50 = statistics.median(samples["bare SDK"])
    where = "on a thread of this process" if in_process else "in its own process"
    prompts = "a fresh 10 KB prompt per call" if fresh else "10 KB prompt"
    lines.append(
        f"## client: {calls} calls each, {prompts}, interleaved; loopback emulator {where}"
    )
    for name, values in samples.items():
        p50 = statistics.median(values)
        lines.append(
            f"{name:<24} p50 {p50:7.3f} ms  p90 {_pct(values, 0.9):7.3f} ms  "
            f"p99 {_pct(values, 0.99):7.3f} ms  x{p50 / base_p50:5.2f} of bare  "
            f"CPU {statistics.mean(cpu[name]):6.3f} ms/call "
            f"(process {statistics.mean(process_cpu[name]):6.3f})"
        )
    over = statistics.median(samples["AuditedAnthropic"]) - base_p50
    cpu_over = statistics.mean(cpu["AuditedAnthropic"]) - statistics.mean(cpu["bare SDK"])
    wall, cpu_alone = pipeline_cost(prompt)
    lines.append(
        f"pipeline alone (admit + response DLP + record, no network): "
        f"{wall:.3f} ms per call, best of 7; CPU {cpu_alone:.3f} ms per call"
    )
    process_over = statistics.mean(process_cpu["AuditedAnthropic"]) - statistics.mean(
        process_cpu["bare SDK"]
    )
    lines.append(
        f"CPU overhead of AuditedAnthropic: {cpu_over:+.3f} ms per call on the calling thread, "
        f"{process_over:+.3f} ms in the process (mean)"
    )
    sync_over = statistics.median(samples["Audited, store=AuditStore"]) - base_p50
    lines.append(f"overhead with a plain store (synchronous outcomes): {sync_over:+.3f} ms p50")
    floor_over = statistics.median(samples["SDK + no-op middleware"]) - base_p50
    lines.append(
        f"overhead of AuditedAnthropic: {over:+.3f} ms p50 per call "
        f"(no-op middleware: {floor_over:+.3f} ms; target <= 0.5 ms) "
        f"-- {recorded} records written to disk"
    )
    return lines


def pipeline_cost(prompt: str) -> tuple[float, float]:
    """Wall time (best of 7) and CPU time (mean) of one audited attempt, measured without the
    SDK or the network."""
    from claudesec.audit.secrets import AuditKeys
    from claudesec.audit.store import AuditStore
    from claudesec.config import Config, PolicyConfig, RoleConfig
    from claudesec.guard.pipeline import ApiRequest, AuditPipeline, Caller

    config = Config(
        policy=PolicyConfig(
            users={"bench": "dev"},
            roles={"dev": RoleConfig(models=("claude-*",), max_tokens=1024, dlp="redact")},
        )
    )
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
    reply = (
        b'{"model":"claude-sonnet-4-6","content":[{"type":"text","text":"Emulated reply to: '
        + prompt[:120].encode()
        + b'"}],"usage":{"input_tokens":2560,"output_tokens":40},"stop_reason":"end_turn"}'
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = AuditStore.open(Path(tmp) / "audit.db", keys=AuditKeys(Path(tmp)))
        pipeline = AuditPipeline.from_config(config, store=store, keys=AuditKeys(Path(tmp)))
        request, caller = ApiRequest("POST", "/v1/messages", body), Caller("bench")

        def attempt() -> None:
            admission = pipeline.admit(caller, request)
            outcome, _ = pipeline.response_outcome(admission, 200, "req_bench", reply)
            pipeline.finish(admission, outcome)

        best = min(timeit.repeat(attempt, number=200, repeat=7)) / 200
        cpu_start = time.thread_time()
        for _ in range(400):
            attempt()
        cpu = (time.thread_time() - cpu_start) / 400
        store.close()
    return best * 1000, cpu * 1000


# --------------------------------------------------------------------------- part 2


def naive_regex_pass() -> Callable[[str], int]:
    """Every detector's full pattern over the whole text with stdlib re: no prefilter."""
    from claudesec.detect.catalogue import DETECTORS, PII_RULES

    secret_res = [d.regex for d in DETECTORS]
    pii_res = [d.regex for d in PII_RULES if not d.anchor]
    email = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

    def run(text: str) -> int:
        data = text.encode()
        found = 0
        for regex in (*secret_res, *pii_res, email):
            found += sum(1 for _ in regex.finditer(data))
        return found

    return run


def presidio_runner() -> tuple[Callable[[str], int] | None, str]:
    try:
        import spacy
        import tldextract.tldextract as tld
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
    except ImportError as exc:
        return None, f"not installed ({exc.name}); `pip install presidio-analyzer` to compare"

    # Presidio's email recognizer asks tldextract, which would fetch the public suffix list
    # from the network: use the snapshot bundled with the package instead.
    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=())

    class BlankSpacy(SpacyNlpEngine):
        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": "blank"}])

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankSpacy()
    engine.load()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def run(text: str) -> int:
        return len(analyzer.analyze(text=text, language="en"))

    return run, "pattern recognizers on a blank spaCy pipeline (no NER model may be downloaded)"


def bench_dlp(runs: int) -> list[str]:
    from claudesec.guard.dlp import DlpScanner

    clean, planted = make_prompt(), make_prompt(planted=True)
    contenders: list[tuple[str, Callable[[str], int] | None, str]] = [
        ("claudesec DLP (hyperscan)", _scanner(DlpScanner(backend="hyperscan")), ""),
        ("claudesec DLP (pure Python)", _scanner(DlpScanner(backend="python")), ""),
        ("stdlib re, every pattern", naive_regex_pass(), ""),
    ]
    presidio, note = presidio_runner()
    contenders.append(("Presidio analyzer", presidio, note))
    lines = [f"## DLP per 10 KB prompt (best of 9 x {runs} runs; clean / with 6 planted values)"]
    ours: float | None = None
    for name, run, why in contenders:
        if run is None:
            lines.append(f"{name:<28} skipped: {why}")
            continue
        count = max(5, runs // 20) if "Presidio" in name else runs
        times = []
        for text in (clean, planted):
            best = min(timeit.repeat(lambda t=text, f=run: f(t), number=count, repeat=9)) / count
            times.append(best * 1000)
        ours = ours if ours is not None else times[0]
        found = run(planted)
        lines.append(
            f"{name:<28} {times[0]:8.3f} ms / {times[1]:8.3f} ms  "
            f"x{times[0] / ours:6.1f}  ({found} findings in the planted prompt)"
            + (f"  [{why}]" if why else "")
        )
    return lines


def _scanner(scanner: Any) -> Callable[[str], int]:
    return lambda text: scanner.scan(text).total


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--dlp-runs", type=int, default=300)
    parser.add_argument("--in-process", action="store_true", help="emulator on a thread")
    parser.add_argument(
        "--fresh", action="store_true", help="a different prompt on every call (no repeats)"
    )
    parser.add_argument("--skip-dlp", action="store_true", help="only the client part")
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, load average "
        + " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    )
    if not args.skip_dlp:
        for line in bench_dlp(args.dlp_runs):
            print(line)
    for line in bench_client(args.calls, args.warmup, args.in_process, args.fresh):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
