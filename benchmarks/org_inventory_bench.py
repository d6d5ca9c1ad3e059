"""Inventory of a large organisation: wall time, requests, peak memory, and that it pages right.

    .venv/bin/python benchmarks/org_inventory_bench.py [--keys 10000] [--workspaces 500]
        [--users 2000] [--parallel 4] [--json]

The emulator runs in a child process (its own interpreter, as the real API is another
machine), seeded by :func:`claudesec.emulator.org_fixtures.seed_large`. Measured here:

1. ``claudesec``: :class:`~claudesec.org.inventory.InventoryReader` reads every kind of
   ``RESOURCE_KINDS`` (per-workspace kinds ``--parallel`` at a time) plus the usage report;
2. ``sdk walk``: the anthropic SDK's own iterators over the core kinds only (API keys, users,
   workspaces, each workspace's members and rate limits), one after another, the peer a
   hand-written script would be.

"Pages right": every id is read once, and the counts equal what was seeded. Peak memory is
the reader process's maximum RSS growth over the run (``ru_maxrss``), and tracemalloc's peak
of Python allocations in a separate run. Target (issue 18): under 30 s for 10,000 keys,
500 workspaces and 2,000 users.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from claudesec.org.http import AdminHttp, Credential  # noqa: E402
from claudesec.org.inventory import InventoryReader, ReadOptions  # noqa: E402
from claudesec.org.model import OrgInventory  # noqa: E402


def serve(keys: int, workspaces: int, users: int) -> None:
    """The child: seed, print ``base_url admin_key seconds`` on one line, serve until killed."""
    from claudesec.emulator import Emulator
    from claudesec.emulator.org_fixtures import seed_large

    emulator = Emulator()
    started = time.perf_counter()
    seed_large(emulator.state, keys=keys, workspaces=workspaces, users=users)
    seeded_s = time.perf_counter() - started
    admin = emulator.state.add_key("admin")
    token = emulator.state.add_oauth_token().access_token
    emulator.start()
    print(emulator.base_url, admin.secret, token, f"{seeded_s:.2f}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    emulator.stop()


class CountingHttp(AdminHttp):
    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, timeout_s=30)
        self.requests = 0

    def request(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]],
        credential: Credential,
        *,
        betas: Sequence[str] = (),
    ) -> dict[str, Any]:
        self.requests += 1
        return super().request(method, path, params, credential, betas=betas)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_claudesec(
    base_url: str, admin: str, token: str, parallel: int
) -> tuple[OrgInventory, dict[str, Any]]:
    http = CountingHttp(base_url)
    before = _maxrss_mb()
    started = time.perf_counter()
    inventory = InventoryReader(
        http, admin_key=admin, oauth_token=token, options=ReadOptions(parallel=parallel)
    ).read()
    seconds = time.perf_counter() - started
    return inventory, {
        "seconds": round(seconds, 2),
        "requests": http.requests,
        "rss_growth_mb": round(_maxrss_mb() - before, 1),
    }


def bench_tracemalloc(base_url: str, admin: str, token: str, parallel: int) -> float:
    tracemalloc.start()
    try:
        InventoryReader(
            AdminHttp(base_url, timeout_s=30),
            admin_key=admin,
            oauth_token=token,
            options=ReadOptions(parallel=parallel),
        ).read()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def bench_sdk(base_url: str, admin: str) -> dict[str, Any]:
    import anthropic

    started = time.perf_counter()
    counts = {"api_keys": 0, "users": 0, "workspaces": 0, "members": 0, "rate_limits": 0}
    with anthropic.Anthropic(api_key=admin, base_url=base_url, max_retries=2) as client:
        org = client.organization
        counts["api_keys"] = sum(1 for _ in org.api_keys.list(limit=1000))
        counts["users"] = sum(1 for _ in org.users.list(limit=1000))
        workspace_ids = [w.id for w in org.workspaces.list(limit=1000, include_default=True)]
        counts["workspaces"] = len(workspace_ids)
        for workspace_id in workspace_ids:
            counts["members"] += sum(
                1 for _ in org.workspaces.members.list(workspace_id, limit=1000)
            )
            counts["rate_limits"] += sum(
                1 for _ in org.workspaces.rate_limits.list(workspace_id, limit=100)
            )
    return {"seconds": round(time.perf_counter() - started, 2), **counts}


def check_pages(inventory: OrgInventory, keys: int, workspaces: int, users: int) -> list[str]:
    problems = []
    expected = {"api_keys": keys, "users": users, "workspaces": workspaces + 1}
    for kind, count in expected.items():
        items = inventory.items(kind)
        ids = {item["id"] for item in items}
        if len(items) != count or len(ids) != count:
            problems.append(f"{kind}: {len(items)} items, {len(ids)} distinct, {count} seeded")
    if inventory.unavailable:
        problems.append(f"unavailable: {[u.kind for u in inventory.unavailable]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--workspaces", type=int, default=500)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--no-sdk", action="store_true", help="Skip the SDK walk.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.keys, args.workspaces, args.users)
        return 0

    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            f"--keys={args.keys}",
            f"--workspaces={args.workspaces}",
            f"--users={args.users}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        base_url, admin, token, seeded_s = child.stdout.readline().split()
        inventory, ours = bench_claudesec(base_url, admin, token, args.parallel)
        _, sequential = bench_claudesec(base_url, admin, token, 1)
        peak_mb = bench_tracemalloc(base_url, admin, token, args.parallel)
        sdk = None if args.no_sdk else bench_sdk(base_url, admin)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    problems = check_pages(inventory, args.keys, args.workspaces, args.users)
    figures = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
        "org": {"keys": args.keys, "workspaces": args.workspaces, "users": args.users},
        "seed_seconds": float(seeded_s),
        "claudesec": {**ours, "parallel": args.parallel, "tracemalloc_peak_mb": round(peak_mb, 1)},
        "claudesec_sequential": sequential,
        "sdk_walk_core_kinds": sdk,
        "items": {name: len(items) for name, items in inventory.lists.items()},
        "pages_right": not problems,
        "problems": problems,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"machine: {figures['machine']} — {figures['date']}")
        print(f"organisation: {args.keys} keys, {args.workspaces} workspaces, {args.users} users")
        print(f"seeded in {seeded_s} s (emulator child process)")
        print(
            f"claudesec inventory (parallel {args.parallel}): {ours['seconds']} s, "
            f"{ours['requests']} requests, RSS +{ours['rss_growth_mb']} MB, "
            f"tracemalloc peak {peak_mb:.1f} MB"
        )
        print(f"claudesec inventory (sequential): {sequential['seconds']} s")
        if sdk is not None:
            print(f"anthropic SDK iterators, core kinds only: {sdk['seconds']} s ({sdk})")
        print("pages right: " + ("yes" if not problems else "NO: " + "; ".join(problems)))
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
