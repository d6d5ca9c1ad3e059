"""Events per second shipped from a large audit store to loopback Splunk HEC and Elasticsearch.

    python benchmarks/export_bench.py [--events 1000000] [--batch 1000] [--keep DIR]
                                      [--syslog-events 100000]

Builds a store of N varied call events (reused with --keep), then ships all of it with the
real runner (cursor, batching, OCSF / ECS rendering, HTTP keep-alive) to two minimal loopback
servers that accept every request, so the number measures claudesec, not the receiver. A
third run follows the store (``--follow`` path) while a writer appends, and reports the peak
RSS growth: memory stays bounded because one batch is in flight at a time.
With rsyslogd (and its imrelp) installed, the syslog sink ships a second store to one real
rsyslogd on loopback twice, over plain TCP and over RELP, side by side: there the receiver
(rsyslog writing each message to a file before it acknowledges) is part of the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudesec.audit import AuditEvent, AuditStore
from claudesec.audit.export._http import HttpClient
from claudesec.audit.export.cursor import CursorStore
from claudesec.audit.export.ecs import to_ecs
from claudesec.audit.export.elastic import ElasticBulkSink
from claudesec.audit.export.ocsf import to_ocsf
from claudesec.audit.export.runner import DeadLetter, Exporter
from claudesec.audit.export.splunk import SplunkHecSink
from claudesec.audit.secrets import AuditKeys


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    received = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path.startswith("/_bulk"):
            _Handler.received += body.count(b"\n") // 2
            reply = b'{"errors":false}'
        else:
            _Handler.received += body.count(b'"sourcetype"')
            reply = b'{"text":"Success","code":0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def serve() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def build_store(path: Path, n: int) -> AuditStore:
    store = AuditStore.open(path, checkpoint_every=10_000, keys=AuditKeys(path.parent))
    have = store.head().seq
    base = time.time_ns() - n * 1_000_000
    chunk = 20_000
    started = time.perf_counter()
    for start in range(have + 1, n + 1, chunk):
        store.append_many(
            AuditEvent(
                type="call",
                time_ns=base + i * 1_000_000,
                user=f"user{i % 97}",
                role="analyst",
                model="claude-sonnet-4-6" if i % 3 else "claude-haiku-4-5",
                input_tokens=200 + i % 5000,
                output_tokens=50 + i % 700,
                latency_ms=300.0 + i % 900,
                decision="allow",
                request_id=f"req_{i:012d}",
                host="bench-host",
            )
            for i in range(start, min(n, start + chunk - 1) + 1)
        )
    if n > have:
        print(f"built store: {n - have} events in {time.perf_counter() - started:.1f} s")
    return store


def ship(store: AuditStore, sink: Any, state: Path, batch: int) -> tuple[int, float]:
    cursors = CursorStore(state / f"cursors-{sink.name}.db")
    exporter = Exporter(store, sink, cursors, DeadLetter(state / "dl.jsonl"), batch_size=batch)
    exporter.seek(0)
    started = time.perf_counter()
    stats = exporter.run()
    elapsed = time.perf_counter() - started
    cursors.close()
    return stats.shipped, elapsed


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def follow_memory(store_path: Path, url: str, state: Path, batch: int, extra: int) -> None:
    """Follow while a writer appends ``extra`` events; print the peak RSS growth."""
    reader = AuditStore.open(store_path, readonly=True)
    sink = SplunkHecSink("follow", HttpClient(url), "bench", to_ocsf)
    cursors = CursorStore(state / "cursors-follow.db")
    exporter = Exporter(reader, sink, cursors, DeadLetter(state / "dl.jsonl"), batch_size=batch)
    cursors.set("follow", exporter.store_id, reader.head().seq)
    target = reader.head().seq + extra
    writer = AuditStore.open(store_path, checkpoint_every=10_000, keys=AuditKeys(store_path.parent))

    def write() -> None:
        for i in range(0, extra, 500):
            writer.append_many(
                AuditEvent(
                    type="call",
                    user=f"u{j % 50}",
                    model="claude-haiku-4-5",
                    input_tokens=100,
                    output_tokens=10,
                    decision="allow",
                )
                for j in range(i, min(extra, i + 500))
            )

    before = rss_mb()
    thread = threading.Thread(target=write)
    thread.start()
    stats = exporter.run(follow=True, poll_s=0.05, stop=lambda: exporter.position() >= target)
    thread.join()
    print(
        f"follow: shipped {stats.shipped} events while they were written; "
        f"peak RSS {rss_mb():.0f} MB (grew {rss_mb() - before:.1f} MB)"
    )


def syslog_side_by_side(workdir: Path, n: int, batch: int) -> dict[str, float]:
    """Plain TCP and RELP to the same real rsyslogd: events/s of each, one run each."""
    from claudesec.audit.export import build_sink
    from claudesec.config import SinkConfig
    from tests.fixtures.rsyslog import Rsyslog, find_rsyslogd, has_imrelp

    binary = find_rsyslogd()
    if binary is None or not has_imrelp():
        print("syslog: skipped (needs rsyslogd and imrelp: apt-get install rsyslog rsyslog-relp)")
        return {}
    store = build_store(workdir / "syslog-audit.db", n)
    directory = Path(tempfile.mkdtemp(prefix="claudesec-rsyslog-"))
    server = Rsyslog(binary, directory, None, relp=True)
    server.start()
    results = {}
    try:
        for name, address in (
            ("syslog_tcp", f"tcp://127.0.0.1:{server.port}"),
            ("syslog_relp", f"relp://127.0.0.1:{server.relp_port}"),
        ):
            sink = build_sink(name, SinkConfig(type="syslog", syslog_address=address))
            count, elapsed = ship(store, sink, workdir, batch)
            results[name] = count / elapsed
            print(
                f"{address.split(':')[0]:>4} to rsyslogd: {count} events in {elapsed:.1f} s = "
                f"{count / elapsed:,.0f} ev/s"
            )
    finally:
        server.stop()
        store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--follow-events", type=int, default=50_000)
    parser.add_argument("--keep", help="directory for the store (reused between runs)")
    parser.add_argument("--syslog-events", type=int, default=100_000, help="0 = no syslog run")
    args = parser.parse_args()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="claudesec-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CLAUDESEC_HOME", str(workdir))
    store_path = workdir / "audit.db"
    store = build_store(store_path, args.events)
    server, url = serve()
    results = {}
    hec = SplunkHecSink("hec", HttpClient(url), "bench", to_ocsf)
    count, elapsed = ship(store, hec, workdir, args.batch)
    results["splunk_hec_ocsf"] = count / elapsed
    print(f"Splunk HEC (OCSF): {count} events in {elapsed:.1f} s = {count / elapsed:,.0f} ev/s")
    bulk = ElasticBulkSink("es", HttpClient(url), "", to_ecs)
    count, elapsed = ship(store, bulk, workdir, args.batch)
    results["elastic_bulk_ecs"] = count / elapsed
    print(f"Elastic _bulk (ECS): {count} events in {elapsed:.1f} s = {count / elapsed:,.0f} ev/s")
    store.close()
    follow_memory(store_path, url, workdir, args.batch, args.follow_events)
    server.shutdown()
    if args.syslog_events:
        results.update(syslog_side_by_side(workdir, args.syslog_events, args.batch))
    print(json.dumps({k: round(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
