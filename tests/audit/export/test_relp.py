"""The syslog sink over RELP: end to end against a real rsyslogd with imrelp, restarts and
kills included, and against a scripted loopback server for what rsyslog never sends
(refusals, garbage, silence).

rsyslog writes each message's MSG (the OCSF JSON) as one line: what arrived is counted by
``metadata.sequence``. With RELP an acknowledged message is already in the file (see the
fixture's comment), so the tests read the file as soon as the export returns, with no wait.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.export import build_sink
from claudesec.audit.export.cursor import CursorStore
from claudesec.audit.export.interface import SinkUnavailable
from claudesec.audit.export.relp import (
    DEFAULT_WINDOW,
    Frame,
    FrameParser,
    RelpClient,
    RelpProtocolError,
    encode_frame,
    parse_response,
)
from claudesec.audit.export.runner import DeadLetter, Exporter, RetryPolicy, RunStats
from claudesec.audit.export.syslog import RelpSyslogSink, SyslogSink, parse_address
from claudesec.audit.store import AuditStore
from claudesec.config import SinkConfig
from claudesec.errors import ExternalServiceError
from tests.audit.export.helpers import make_store
from tests.audit.helpers import event, open_store
from tests.fixtures.cli import RunCli
from tests.fixtures.rsyslog import Rsyslog, wait_for

# Real backoff (the server is down while it restarts); the test itself waits on conditions.
PATIENT = RetryPolicy(max_attempts=200, initial_s=0.02, max_s=0.2)
# Against the scripted server: two attempts, no waiting between them.
BRIEF = RetryPolicy(max_attempts=2, initial_s=0.001, max_s=0.001)


def relp_sink(address: str, *, ca_bundle: str = "", timeout_s: float = 10.0) -> RelpSyslogSink:
    sink = build_sink(
        "siem",
        SinkConfig(type="syslog", syslog_address=address, ca_bundle=ca_bundle, timeout_s=timeout_s),
    )
    assert isinstance(sink, RelpSyslogSink)
    return sink


def exporter(
    tmp_path: Path,
    store: AuditStore,
    sink: SyslogSink,
    *,
    batch: int,
    retry: RetryPolicy = PATIENT,
    failures: list[str] | None = None,
) -> Exporter:
    return Exporter(
        store,
        sink,
        CursorStore(tmp_path / "cursors.db"),
        DeadLetter(tmp_path / "dl.jsonl"),
        batch_size=batch,
        retry=retry,
        sleep=(lambda s: None) if retry is BRIEF else time.sleep,
        on_retry=None if failures is None else (lambda message, delay: failures.append(message)),
    )


def sequences(lines: list[str]) -> Counter[int]:
    return Counter(json.loads(line)["metadata"]["sequence"] for line in lines)


# ------------------------------------------------------------------ real rsyslogd


@pytest.mark.parametrize("tls", [False, True], ids=["relp", "relp+tls"])
def test_events_arrive_over_relp_acknowledged_means_written(
    tmp_path: Path, rsyslog_factory: Callable[..., Rsyslog], tls: bool
) -> None:
    server = rsyslog_factory(tls=tls, relp=True)
    if tls:
        assert server.tls is not None
        sink = relp_sink(
            f"relp+tls://127.0.0.1:{server.relp_tls_port}", ca_bundle=str(server.tls.ca_file)
        )
    else:
        sink = relp_sink(f"relp://127.0.0.1:{server.relp_port}")
    store = make_store(tmp_path / "audit.db", 5)
    export = exporter(tmp_path, store, sink, batch=2)
    stats = export.run()
    assert stats.shipped == 5 and export.position() == 5 and stats.retries == 0
    # No wait: rsyslog acknowledged each message only once it had written it.
    docs = [json.loads(line) for line in server.lines()]
    assert [d["metadata"]["sequence"] for d in docs] == [1, 2, 3, 4, 5]
    assert docs[0]["metadata"]["uid"] == f"{export.store_id}-1"


def test_untrusted_relp_server_certificate_stops_the_run(
    tmp_path: Path, rsyslog_factory: Callable[..., Rsyslog]
) -> None:
    server = rsyslog_factory(tls=True, relp=True)
    other = rsyslog_factory(tls=True)  # another CA: trusting it must not trust the first
    assert other.tls is not None
    sink = relp_sink(
        f"relp+tls://127.0.0.1:{server.relp_tls_port}", ca_bundle=str(other.tls.ca_file)
    )
    store = make_store(tmp_path / "audit.db", 2)
    with pytest.raises(SinkUnavailable, match="not trusted"):
        exporter(tmp_path, store, sink, batch=10).run()
    assert server.lines() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_rsyslog_restarted_mid_export_over_relp_loses_nothing(
    tmp_path: Path, rsyslog_factory: Callable[..., Rsyslog], sig: signal.Signals
) -> None:
    """The claim plain syslog cannot make (see test_syslog.py's expected failure): rsyslogd
    stopped or killed twice in the middle of batches, and every event is in its file.

    The events come in three waves to a following exporter, and rsyslogd is frozen before
    each of the later waves is written: whatever the machine's load, the sink then has that
    wave's messages in flight to a collector that cannot answer when it is stopped."""
    server = rsyslog_factory(tls=False, relp=True)
    wave, batch = 2_000, 500
    n = 3 * wave
    store = make_store(tmp_path / "audit.db", wave)
    failures: list[str] = []
    result: dict[str, Any] = {}
    stop = threading.Event()

    def ship() -> None:
        # SQLite connections belong to their thread: the exporter opens its own store.
        try:
            sink = relp_sink(f"relp://127.0.0.1:{server.relp_port}")
            export = exporter(
                tmp_path,
                open_store(tmp_path / "audit.db", checkpoint_every=50),
                sink,
                batch=batch,
                failures=failures,
            )
            result["client"] = sink.client
            result["stats"] = export.run(follow=True, poll_s=0.02, stop=stop.is_set)
            result["position"] = export.position()
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    def acknowledged() -> int:
        # The cursor as committed, read on this thread (SQLite connections are per thread).
        with CursorStore(tmp_path / "cursors.db") as cursors:
            cursor = cursors.get("siem")
        return cursor.seq if cursor is not None else 0

    thread = threading.Thread(target=ship, daemon=True)
    thread.start()
    try:
        for shipped in (wave, 2 * wave):
            wait_for(
                lambda shipped=shipped: "error" in result or acknowledged() >= shipped,  # type: ignore[misc]
                f"{shipped} events acknowledged",
            )
            assert "error" not in result, result
            server.pause()  # frozen first: the next wave can only meet a silent collector
            store.append_many(event(i) for i in range(shipped + 1, shipped + wave + 1))
            wait_for(
                lambda: result["client"].in_flight > 0 or "error" in result,
                "the sink waiting for answers from the frozen rsyslogd",
            )
            server.restart(sig)
        wait_for(lambda: "error" in result or acknowledged() >= n, "every event acknowledged")
    finally:
        stop.set()
        thread.join(timeout=120)
        store.close()
    assert not thread.is_alive() and "error" not in result, result
    counts = sequences(server.lines())
    missing = sorted(set(range(1, n + 1)) - set(counts))
    assert not missing, (len(missing), missing[:5], missing[-5:], failures)
    assert result["position"] == n
    if sig == signal.SIGKILL:
        # A killed rsyslogd answers nothing more: each kill broke the session the sink was
        # waiting on. (A SIGTERMed one may answer what it holds first: no failure to count.)
        assert len(failures) >= 2 and result["client"].sessions >= 3, failures
    duplicates = sum(c - 1 for c in counts.values())
    assert duplicates <= DEFAULT_WINDOW * len(failures), (duplicates, failures)
    sessions = result["client"].sessions
    print(f"relp {sig.name}: {n} events, {sessions} sessions, {len(failures)} failures,", end="")
    print(f" {duplicates} duplicates")


# ------------------------------------------------------------------ scripted server


class ScriptedRelp:
    """A loopback RELP server whose answer to each ``syslog`` frame a test scripts, for the
    servers real rsyslog cannot be made to be. ``answer(session, txnr, message)`` returns the
    bytes to send back (``b""`` for nothing, ``None`` to hang up); a message counts as stored
    when the answer acknowledges it with 200. ``open_reply`` overrides the answer to open."""

    def __init__(
        self,
        answer: Callable[[int, int, bytes], bytes | None],
        *,
        open_reply: Callable[[int], bytes] | None = None,
    ) -> None:
        self.answer = answer
        self.open_reply = open_reply or (
            lambda txnr: encode_frame(
                txnr, "rsp", b"200 OK\nrelp_version=0\nrelp_software=scripted\ncommands=syslog"
            )
        )
        self.stored: list[bytes] = []
        self.sessions = 0
        self.closed_politely = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.sessions += 1
            threading.Thread(target=self._serve, args=(conn, self.sessions), daemon=True).start()

    def _frames(self, conn: socket.socket) -> Iterator[tuple[int, str, bytes]]:
        """The client's frames, read independently of the client's own parser."""
        buffer = b""
        while True:
            head = re.match(rb"(\d+) ([a-z]+) (\d+)[ \n]", buffer)
            if head is not None:
                length = int(head[3])
                end = head.end() + length + (1 if length else 0)
                if len(buffer) >= end:
                    assert buffer[end - 1 : end] == b"\n" or length == 0
                    yield int(head[1]), head[2].decode(), buffer[head.end() : head.end() + length]
                    buffer = buffer[end:]
                    continue
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk

    def _serve(self, conn: socket.socket, session: int) -> None:
        with conn:
            for txnr, command, data in self._frames(conn):
                if command == "open":
                    reply: bytes | None = self.open_reply(txnr)
                elif command == "close":
                    self.closed_politely += 1
                    conn.sendall(encode_frame(txnr, "rsp") + encode_frame(0, "serverclose"))
                    return
                else:
                    reply = self.answer(session, txnr, data)
                    if reply is not None and reply.startswith(f"{txnr} rsp 6 200 OK".encode()):
                        self.stored.append(data)
                try:
                    if reply is not None:
                        conn.sendall(reply)
                    if reply is None or b"serverclose" in reply:
                        self._hang_up(conn)
                        return
                except OSError:
                    return

    @staticmethod
    def _hang_up(conn: socket.socket) -> None:
        """Close our side, then read until the client closes its own: closing with its
        frames unread would make the kernel send a reset, which may overtake our answers."""
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass

    def end_sessions(self) -> None:
        """Say serverclose on every open session and hang up, as a collector shutting down."""
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.sendall(encode_frame(0, "serverclose"))
                conn.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedRelp]]:
    made: list[ScriptedRelp] = []

    def make(answer: Callable[[int, int, bytes], bytes | None], **kwargs: Any) -> ScriptedRelp:
        server = ScriptedRelp(answer, **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def ok(txnr: int) -> bytes:
    return encode_frame(txnr, "rsp", b"200 OK")


def accept(session: int, txnr: int, message: bytes) -> bytes:
    """A scripted answer: acknowledge every message."""
    return ok(txnr)


def stored_sequences(server: ScriptedRelp) -> Counter[int]:
    return sequences([m.split(b"] ", 1)[1].decode() for m in server.stored])


def test_rsp_500_is_retried_and_only_the_refused_messages_go_again(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp]
) -> None:
    # First session: refuse the fourth message (txnr 5, after open's 1). Later: accept all.
    server = scripted(
        lambda session, txnr, _: (
            encode_frame(txnr, "rsp", b"500 queue full") if (session, txnr) == (1, 5) else ok(txnr)
        )
    )
    store = make_store(tmp_path / "audit.db", 10)
    failures: list[str] = []
    sink = relp_sink(f"relp://127.0.0.1:{server.port}")
    export = exporter(tmp_path, store, sink, batch=10, retry=BRIEF, failures=failures)
    stats = export.run()
    assert export.position() == 10 and stats.shipped == 10
    assert sorted(stored_sequences(server)) == list(range(1, 11))  # none lost, none twice
    assert len(failures) == 1 and "refused message txnr 5: 500 queue full" in failures[0]
    assert server.closed_politely == 1  # the run ended its last session with close


def test_rsp_500_for_ever_is_exit_3_with_the_cursor_after_the_last_acknowledged_batch(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp]
) -> None:
    # Acknowledge three messages, then refuse every one, in any session.
    server = scripted(
        lambda session, txnr, _: (
            ok(txnr) if len(server.stored) < 3 else encode_frame(txnr, "rsp", b"500 no")
        )
    )
    store = make_store(tmp_path / "audit.db", 10)
    export = exporter(
        tmp_path, store, relp_sink(f"relp://127.0.0.1:{server.port}"), batch=2, retry=BRIEF
    )
    with pytest.raises(ExternalServiceError) as caught:
        export.run()
    message = str(caught.value)
    assert "\n" not in message and "refused message" in message and "500 no" in message
    assert caught.value.exit_code == 3
    # Events 1-2 (one batch) acknowledged: the cursor is past them and no further.
    assert export.position() == 2


def test_serverclose_mid_batch_resumes_with_what_was_not_acknowledged(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp]
) -> None:
    # The first session says goodbye instead of answering its sixth message.
    def answer(session: int, txnr: int, _: bytes) -> bytes | None:
        if session == 1 and txnr == 7:
            return encode_frame(0, "serverclose")
        return ok(txnr)

    server = scripted(answer)
    store = make_store(tmp_path / "audit.db", 12)
    failures: list[str] = []
    export = exporter(
        tmp_path,
        store,
        relp_sink(f"relp://127.0.0.1:{server.port}"),
        batch=12,
        retry=BRIEF,
        failures=failures,
    )
    export.run()
    assert export.position() == 12
    assert sorted(stored_sequences(server)) == list(range(1, 13))
    assert len(failures) == 1 and "serverclose" in failures[0]
    assert server.sessions == 2


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "malformed frame header"),
        (b"2 rsp 6 200 OKX", "no LF after its 6 bytes"),
        (b"2 rsp 0 \n", "DATALEN 0 must end the frame"),
        (b"1234567890 rsp 6 200 OK\n", "malformed frame header"),
        (b"2 rsp 999999999 ", "DATALEN 999999999 is too large"),
        (b"9 rsp 6 200 OK\n", "an answer to txnr 9, which was not sent"),
        (b"2 rsp 6 2x0 OK\n", "no status code"),
        (b"2 rsp 0\n", "no status code"),
        (b"2 syslog 3 abc\n", "unexpected command 'syslog'"),
    ],
    ids=[
        "http",
        "trailer",
        "empty-with-space",
        "txnr-10-digits",
        "huge",
        "txnr",
        "code",
        "empty-answer",
        "cmd",
    ],
)
def test_garbage_from_the_server_is_one_line_exit_3_and_nothing_counted_as_sent(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp], reply: bytes, error: str
) -> None:
    server = scripted(lambda session, txnr, _: reply)
    store = make_store(tmp_path / "audit.db", 3)
    export = exporter(
        tmp_path, store, relp_sink(f"relp://127.0.0.1:{server.port}"), batch=3, retry=BRIEF
    )
    with pytest.raises(ExternalServiceError) as caught:
        export.run()
    assert error in str(caught.value) and "\n" not in str(caught.value)
    assert export.position() == 0
    assert server.sessions == 2  # each attempt was a fresh session


def test_a_server_that_never_acknowledges_times_out_then_exit_3_cursor_kept(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp]
) -> None:
    server = scripted(lambda session, txnr, _: b"")  # reads everything, answers nothing
    store = make_store(tmp_path / "audit.db", 3)
    sink = relp_sink(f"relp://127.0.0.1:{server.port}", timeout_s=0.2)
    export = exporter(tmp_path, store, sink, batch=3, retry=BRIEF)
    with pytest.raises(ExternalServiceError, match=r"relp 127\.0\.0\.1:\d+: TimeoutError") as e:
        export.run()
    assert "3 of 3 unacknowledged" in str(e.value)
    assert export.position() == 0


def test_a_server_that_hangs_up_mid_batch_is_retried(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp]
) -> None:
    # The first session drops the connection instead of answering its third message.
    server = scripted(lambda session, txnr, _: None if (session, txnr) == (1, 4) else ok(txnr))
    store = make_store(tmp_path / "audit.db", 6)
    export = exporter(
        tmp_path, store, relp_sink(f"relp://127.0.0.1:{server.port}"), batch=6, retry=BRIEF
    )
    export.run()
    assert export.position() == 6
    assert sorted(stored_sequences(server)) == list(range(1, 7))


def test_a_server_without_the_syslog_command_stops_the_run_at_once(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp]
) -> None:
    server = scripted(
        accept, open_reply=lambda txnr: encode_frame(txnr, "rsp", b"200 OK\nrelp_version=0\n")
    )
    store = make_store(tmp_path / "audit.db", 2)
    export = exporter(
        tmp_path, store, relp_sink(f"relp://127.0.0.1:{server.port}"), batch=2, retry=BRIEF
    )
    with pytest.raises(SinkUnavailable, match="does not accept syslog messages"):
        export.run()
    assert server.sessions == 1 and export.position() == 0


def test_a_refused_open_is_retried_then_exit_3(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp]
) -> None:
    server = scripted(accept, open_reply=lambda txnr: encode_frame(txnr, "rsp", b"500 busy"))
    store = make_store(tmp_path / "audit.db", 2)
    export = exporter(
        tmp_path, store, relp_sink(f"relp://127.0.0.1:{server.port}"), batch=2, retry=BRIEF
    )
    with pytest.raises(ExternalServiceError, match="refused the session: 500 busy"):
        export.run()
    assert export.position() == 0


# ------------------------------------------------------------------ frames and addresses


def test_frames_parse_whatever_way_the_bytes_are_cut() -> None:
    wire = (
        encode_frame(1, "rsp", b"200 OK\nrelp_version=0\ncommands=syslog\n")
        + encode_frame(2, "rsp", b"200 OK")
        + encode_frame(0, "serverclose")
    )
    assert encode_frame(0, "serverclose") == b"0 serverclose 0\n"
    assert encode_frame(7, "syslog", b"<1>1 x") == b"7 syslog 6 <1>1 x\n"
    expected = [
        Frame(1, "rsp", b"200 OK\nrelp_version=0\ncommands=syslog\n"),
        Frame(2, "rsp", b"200 OK"),
        Frame(0, "serverclose", b""),
    ]
    for cut in range(len(wire) + 1):
        parser = FrameParser()
        assert parser.feed(wire[:cut]) + parser.feed(wire[cut:]) == expected
    parser = FrameParser()
    assert [f for byte in wire for f in parser.feed(bytes([byte]))] == expected
    assert parse_response(expected[1]).code == 200
    with pytest.raises(RelpProtocolError, match="no status code"):
        parse_response(Frame(3, "rsp", b""))  # only close is answered so: never an ack


@pytest.mark.parametrize(
    "wire",
    [
        b"x",
        b"1 rsp x",
        b"1  rsp 0\n",
        b"1 rsp 0 \n",
        b"1 rsp 3\nabc\n",
        b"1 r5p 0\n",
        b"-1 rsp 0\n",
    ],
)
def test_frame_parser_rejects_what_librelp_would(wire: bytes) -> None:
    with pytest.raises(RelpProtocolError):
        FrameParser().feed(wire)


def test_addresses_by_scheme() -> None:
    assert parse_address("relp://siem") == ("relp", "siem", 2514)
    assert parse_address("relp+tls://siem:2515") == ("relp+tls", "siem", 2515)
    assert parse_address("tls://siem") == ("tls", "siem", 6514)
    with pytest.raises(ValueError, match="relp"):
        parse_address("udp://siem:514")
    plain = build_sink("s", SinkConfig(type="syslog", syslog_address="tcp://127.0.0.1:1"))
    assert type(plain) is SyslogSink  # tcp:// and tls:// keep the plain sink


def test_transaction_numbers_wrap_after_nine_digits_as_librelp_does() -> None:
    from claudesec.audit.export.relp import MAX_TXNR

    client = RelpClient("127.0.0.1", 9)
    client._txnr = MAX_TXNR - 1
    assert [client._next_txnr() for _ in range(3)] == [MAX_TXNR, 1, 2]
    with pytest.raises(ValueError, match="out of range"):
        encode_frame(MAX_TXNR + 1, "syslog", b"x")


def test_cli_exports_over_relp_then_exits_3_with_the_cursor_kept_when_the_collector_is_gone(
    tmp_path: Path, rsyslog_factory: Callable[..., Rsyslog], run_cli: RunCli
) -> None:
    from tests.audit.export.helpers import register_commands, write_config

    register_commands()
    server = rsyslog_factory(tls=False, relp=True)
    write_config(
        Path.cwd(),
        f"""
[audit]
store_path = "{tmp_path / "audit.db"}"
checkpoint_every = 50

[export]
max_attempts = 2
backoff_initial_s = 0.01
backoff_max_s = 0.01

[export.sinks.siem]
type = "syslog"
syslog_address = "relp://127.0.0.1:{server.relp_port}"
timeout_s = 5
""",
    )
    store = make_store(tmp_path / "audit.db", 5)
    result = run_cli("logs", "export", "--sink", "siem")
    assert result.exit_code == 0, result.output
    assert "siem: shipped 5 events" in result.stderr
    assert sorted(sequences(server.lines())) == [1, 2, 3, 4, 5]

    server.stop()  # nobody listens any more
    store.append_many([event(6), event(7)])
    store.close()
    result = run_cli("logs", "export", "--sink", "siem")
    assert result.exit_code == 3, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert any("relp 127.0.0.1" in line and "ConnectionRefusedError" in line for line in errors)
    assert "Traceback" not in result.output
    status = json.loads(run_cli("logs", "export", "status", "--format", "json").stdout)
    assert [(row["sink"], row["cursor"]) for row in status] == [("siem", 5)]


def test_a_session_the_server_ended_between_batches_is_replaced_without_a_retry(
    tmp_path: Path, scripted: Callable[..., ScriptedRelp]
) -> None:
    """A collector that restarts while the exporter is between batches (``--follow`` idles
    for hours) leaves a serverclose and an end of stream on the idle session: the next batch
    opens a new session rather than failing in the old one and waiting a backoff."""
    server = scripted(accept)
    store = make_store(tmp_path / "audit.db", 4)
    sink = relp_sink(f"relp://127.0.0.1:{server.port}")
    failures: list[str] = []
    export = exporter(tmp_path, store, sink, batch=2, retry=BRIEF, failures=failures)

    def end_session_once(stats: RunStats) -> None:
        if stats.cursor == 2:
            server.end_sessions()
            # On loopback the bytes are there at once; wait for them rather than assume it.
            wait_for(sink.client._ended, "the serverclose reached the client")

    export._on_progress = end_session_once
    export.run()
    assert export.position() == 4 and failures == []
    assert sorted(stored_sequences(server)) == [1, 2, 3, 4]
    assert server.sessions == 2
