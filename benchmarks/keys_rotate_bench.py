"""Cost of one key rotation: wall time and calls to AWS and Anthropic, one command.

    .venv/bin/python benchmarks/keys_rotate_bench.py [--rotations 50] [--keys 10]

Everything runs on loopback: moto's server for Secrets Manager, the claudesec emulator for
the Admin API and the key probe. Three measurements:

1. ``claudesec``: ``KeyManager.rotate([name], force=True)`` N times on one managed key with a
   pool of N spares (lease, claim, pending version, activate, test, finish, settle).
2. ``naive``: the same four Secrets Manager steps and the same two Anthropic calls with no
   lease, no pool secret, no claim and no book-keeping (spares held in a Python list). It
   is not crash-safe; it is the floor the bookkeeping is compared against.
3. ``rotate --all``: one run over K managed keys (per-key time and calls at scale).

Audit events go to a null sink: this measures the rotation, not the audit store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from claudesec.anthropic_admin import AdminClient, probe_key  # noqa: E402
from claudesec.emulator import Emulator, IssuedKey  # noqa: E402
from claudesec.keys.model import ManagedKey, iso, utcnow  # noqa: E402
from claudesec.keys.rotation import KeyManager, Settings  # noqa: E402
from claudesec.stores.secretsmanager import SecretsManagerStore  # noqa: E402


class AwsCalls:
    """Counts Secrets Manager operations through botocore's event hooks."""

    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        self.ops[event_name.rsplit(".", 1)[-1]] += 1

    def take(self) -> Counter[str]:
        ops, self.ops = self.ops, Counter()
        return ops


def _client(endpoint: str, calls: AwsCalls) -> Any:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1}),
    )
    client.meta.events.register("before-call.secrets-manager", calls)
    return client


def _anthropic_calls(emulator: Emulator) -> tuple[int, int]:
    """(Admin API calls, probe calls) since the last clear."""
    records = emulator.state.requests()
    emulator.state.clear_requests()
    admin = sum(1 for r in records if r.path.startswith("/v1/organizations/"))
    return admin, len(records) - admin


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Figures:
    def __init__(self, label: str) -> None:
        self.label = label
        self.ms: list[float] = []
        self.aws: list[int] = []
        self.admin: list[int] = []
        self.probe: list[int] = []
        self.ops: Counter[str] = Counter()

    def add(self, ms: float, aws: Counter[str], admin: int, probe: int) -> None:
        self.ms.append(ms)
        self.aws.append(sum(aws.values()))
        self.admin.append(admin)
        self.probe.append(probe)
        self.ops.update(aws)

    def row(self) -> list[str]:
        n = len(self.ms)
        return [
            self.label,
            str(n),
            f"{statistics.median(self.ms):.1f}",
            f"{_pct(self.ms, 0.9):.1f}",
            f"{sum(self.aws) / n:.1f}",
            f"{sum(self.admin) / n:.1f}",
            f"{sum(self.probe) / n:.1f}",
        ]


def _manager(store: SecretsManagerStore, emulator: Emulator, admin_key: IssuedKey) -> KeyManager:
    return KeyManager(
        store,
        Settings(test_attempts=1, test_delay_s=0.0),
        admin=AdminClient(emulator.base_url, admin_key.secret, max_retries=0),
        probe=partial(probe_key, emulator.base_url, timeout_s=5),
    )


def bench_claudesec(endpoint: str, emulator: Emulator, rotations: int) -> Figures:
    calls = AwsCalls()
    store = SecretsManagerStore(_client(endpoint, calls))
    admin_key = emulator.state.add_key("admin")
    manager = _manager(store, emulator, admin_key)
    manager.add("bench-one", emulator.state.add_key("api").secret)
    for _ in range(rotations):
        manager.pool_add(emulator.state.add_key("api").secret)
    figures = Figures("claudesec rotate NAME")
    calls.take()
    _anthropic_calls(emulator)
    for _ in range(rotations):
        start = time.perf_counter()
        (result,) = manager.rotate(["bench-one"], force=True).results
        elapsed = (time.perf_counter() - start) * 1000
        if result.outcome != "rotated":
            raise SystemExit(f"rotation failed: {result.message}")
        figures.add(elapsed, calls.take(), *_anthropic_calls(emulator))
    return figures


def bench_naive(endpoint: str, emulator: Emulator, rotations: int) -> Figures:
    calls = AwsCalls()
    client = _client(endpoint, calls)
    admin = AdminClient(emulator.base_url, emulator.state.add_key("admin").secret, max_retries=0)
    first = emulator.state.add_key("api")
    name = "naive/bench-one"
    now = iso(utcnow())
    client.create_secret(
        Name=name, SecretString=ManagedKey(first.id, first.secret, "n", None, now).to_json()
    )
    spares = [emulator.state.add_key("api", status="inactive") for _ in range(rotations)]
    figures = Figures("naive 4 steps")
    calls.take()
    _anthropic_calls(emulator)
    for spare in spares:
        start = time.perf_counter()
        stages = client.describe_secret(SecretId=name)["VersionIdsToStages"]
        current_v = next(v for v, s in stages.items() if "AWSCURRENT" in s)
        token = os.urandom(16).hex()
        pending = ManagedKey(spare.id, spare.secret, "n", None, iso(utcnow()))
        client.put_secret_value(
            SecretId=name,
            SecretString=pending.to_json(),
            ClientRequestToken=token,
            VersionStages=["AWSPENDING"],
        )
        admin.set_status(spare.id, "active")
        if probe_key(emulator.base_url, spare.secret).outcome != "valid":
            raise SystemExit("naive rotation: the new key was refused")
        client.update_secret_version_stage(
            SecretId=name,
            VersionStage="AWSCURRENT",
            MoveToVersionId=token,
            RemoveFromVersionId=current_v,
        )
        client.update_secret_version_stage(
            SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=token
        )
        elapsed = (time.perf_counter() - start) * 1000
        figures.add(elapsed, calls.take(), *_anthropic_calls(emulator))
    return figures


def bench_all(endpoint: str, emulator: Emulator, keys: int) -> tuple[Figures, float]:
    calls = AwsCalls()
    store = SecretsManagerStore(_client(endpoint, calls))
    manager = _manager(store, emulator, emulator.state.add_key("admin"))
    for index in range(keys):
        manager.add(f"fleet-{index}", emulator.state.add_key("api").secret)
        manager.pool_add(emulator.state.add_key("api").secret)
    calls.take()
    _anthropic_calls(emulator)
    start = time.perf_counter()
    report = manager.rotate(None, force=True)
    elapsed = (time.perf_counter() - start) * 1000
    rotated = sum(r.rotated for r in report.results)
    if rotated != keys:
        raise SystemExit(f"rotate --all rotated {rotated} of {keys}")
    aws = calls.take()
    admin, probe = _anthropic_calls(emulator)
    figures = Figures(f"claudesec rotate --all, per key ({keys} keys)")
    per_key = Counter({op: count // keys for op, count in aws.items()})
    figures.add(elapsed / keys, per_key, admin // keys, probe // keys)
    figures.aws[-1] = round(sum(aws.values()) / keys)
    return figures, elapsed


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _table(rows: list[list[str]]) -> str:
    head = [
        "rotation",
        "n",
        "p50 ms",
        "p90 ms",
        "AWS calls",
        "Admin API calls",
        "probe calls",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=50)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per moto request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with Emulator() as emulator:
            ours = bench_claudesec(endpoint, emulator, args.rotations)
            naive = bench_naive(endpoint, emulator, args.rotations)
            fleet, fleet_ms = bench_all(endpoint, emulator, args.keys)
    finally:
        server.stop()

    if args.json:
        print(
            json.dumps(
                {
                    "machine": _machine(),
                    "date": datetime.now(UTC).date().isoformat(),
                    "rows": [f.row() for f in (ours, naive, fleet)],
                    "claudesec_ops": dict(ours.ops),
                }
            )
        )
        return 0
    print(f"machine: {_machine()} — {datetime.now(UTC).date().isoformat()}")
    print(_table([ours.row(), naive.row(), fleet.row()]))
    ratio_ms = statistics.median(ours.ms) / statistics.median(naive.ms)
    ratio_calls = (sum(ours.aws) / len(ours.aws)) / (sum(naive.aws) / len(naive.aws))
    print(
        f"\nclaudesec vs naive: {ratio_ms:.2f}x the p50 time, {ratio_calls:.2f}x the AWS calls "
        "(the price of the lease, the claim and the book-keeping that make it crash-safe)"
    )
    per_op = ", ".join(f"{op} {count / len(ours.ms):.1f}" for op, count in sorted(ours.ops.items()))
    print(f"claudesec AWS calls per rotation by operation: {per_op}")
    print(f"rotate --all over {args.keys} keys: {fleet_ms / 1000:.2f} s in total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
