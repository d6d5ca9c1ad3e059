"""A RELP client: syslog messages a collector acknowledges one by one once it has taken them.

RELP (the Reliable Event Logging Protocol, rsyslog's ``imrelp`` / librelp) puts each message
in a frame ``TXNR SP COMMAND SP DATALEN [SP DATA] LF`` with a transaction number, and the
server answers each frame with ``TXNR rsp DATALEN 200 OK`` once the message is in its queue.
A session is ``open`` (offers ``relp_version=0``, ``relp_software``, ``commands=syslog``),
any number of ``syslog`` frames with up to :attr:`RelpClient.window` unanswered at a time,
then ``close``; the server may end it at any time with an unsolicited ``0 serverclose 0``.
So, unlike plain syslog, the sender knows which messages the collector holds: when the
session breaks (a restart, a reset, ``rsp 500``, a timeout), :class:`RelpSessionError` says
which ones were acknowledged and only the others need sending again.

Why our own ~250 lines rather than a library: the one on PyPI (``pyrelp``, a librelp
wrapper) was last released in 2014 and needs librelp's headers to build; the protocol is
small, and the parser here is strict (every field's alphabet and length as librelp checks
them, the trailer after exactly DATALEN bytes), so a confused or hostile peer is one error
line, never a hang or a guess. This module knows nothing of audit events: the syslog sink
builds the messages and maps the errors onto the export runner's retry rules.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from claudesec import __version__

#: librelp's defaults: transaction numbers wrap after nine digits, 128 frames in flight.
MAX_TXNR = 999_999_999
DEFAULT_WINDOW = 128
#: The largest response we accept (``open``'s offers are the only ones with a body).
MAX_RESPONSE = 64 * 1024

_HEADER = re.compile(rb"(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})([ \n])")
# What a header cut short by the network looks like: wait for more bytes, it is not an error.
_HEADER_PREFIX = re.compile(rb"\d{1,9}(?: [A-Za-z]{0,32}(?: \d{0,9})?)?")


class RelpError(Exception):
    """A RELP failure, as one line naming what the server did."""


class RelpProtocolError(RelpError):
    """The server sent something that is not RELP, or not an answer to what we sent."""


class RelpUnsupported(RelpError):
    """The server accepted the session but does not take ``syslog`` commands."""


class RelpSessionError(RelpError):
    """The session ended before every message was acknowledged.

    ``acked`` holds the indexes (into the messages given to :meth:`RelpClient.send`) that the
    server acknowledged with ``200``: those are in its queue; every other one must be re-sent.
    """

    def __init__(self, message: str, acked: frozenset[int] = frozenset()) -> None:
        super().__init__(message)
        self.acked = acked


@dataclass(frozen=True, slots=True)
class Frame:
    txnr: int
    command: str
    data: bytes


def encode_frame(txnr: int, command: str, data: bytes = b"") -> bytes:
    """One frame; an empty DATA has no separating space (librelp's reading of the spec)."""
    if not 0 <= txnr <= MAX_TXNR:
        raise ValueError(f"RELP txnr out of range: {txnr}")
    head = f"{txnr} {command} {len(data)}".encode("ascii")
    return head + b" " + data + b"\n" if data else head + b"\n"


class FrameParser:
    """Frames from a byte stream, strictly: any deviation is a :class:`RelpProtocolError`."""

    def __init__(self, max_data: int = MAX_RESPONSE) -> None:
        self.max_data = max_data
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        return frames

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet."""
        return len(self._buffer)

    def _next(self) -> Frame | None:
        buffer = self._buffer
        if not buffer:
            return None
        match = _HEADER.match(buffer)
        if match is None:
            if _HEADER_PREFIX.fullmatch(buffer):
                return None
            raise RelpProtocolError(f"malformed frame header {_excerpt(buffer)}")
        txnr, command, length = int(match[1]), match[2].decode("ascii"), int(match[3])
        if length > self.max_data:
            raise RelpProtocolError(f"frame {txnr} {command}: DATALEN {length} is too large")
        start = match.end()
        if length == 0:
            if match[4] != b"\n":
                raise RelpProtocolError(f"frame {txnr} {command}: DATALEN 0 must end the frame")
            del buffer[:start]
            return Frame(txnr, command, b"")
        if match[4] != b" ":
            raise RelpProtocolError(f"frame {txnr} {command}: no DATA after DATALEN {length}")
        end = start + length
        if len(buffer) <= end:
            return None
        if buffer[end] != 0x0A:
            raise RelpProtocolError(
                f"frame {txnr} {command}: no LF after its {length} bytes of DATA "
                f"(found {_excerpt(buffer[end:])})"
            )
        data = bytes(buffer[start:end])
        del buffer[: end + 1]
        return Frame(txnr, command, data)


def _excerpt(data: bytes | bytearray) -> str:
    """A peer's bytes as a short, printable, single-line quotation."""
    return repr(bytes(data[:40])) + ("..." if len(data) > 40 else "")


@dataclass(frozen=True, slots=True)
class Response:
    code: int
    text: str
    body: bytes


def parse_response(frame: Frame) -> Response:
    """``rsp`` DATA: ``CODE [SP TEXT] [LF BODY]``. (Only ``close`` is answered with no DATA,
    and :meth:`RelpClient.close` does not parse that answer: an empty answer to ``open`` or
    ``syslog`` is no acknowledgement.)"""
    head, _, body = frame.data.partition(b"\n")
    code, _, text = head.partition(b" ")
    if len(code) != 3 or not code.isdigit():
        raise RelpProtocolError(f"response to {frame.txnr}: no status code in {_excerpt(head)}")
    printable = "".join(c if c.isprintable() else "?" for c in text.decode("utf-8", "replace"))
    return Response(int(code), printable[:80], body)


class RelpClient:
    """One RELP session at a time to ``host:port``, opened on first use, re-opened after a break.

    Not thread-safe: one exporter drives it. Every failure closes the connection; the next
    :meth:`send` starts a fresh session (transaction numbers restart at 1, as RELP wants).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        timeout_s: float = 10.0,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.timeout_s = timeout_s
        self.window = max(1, window)
        self._sock: socket.socket | None = None
        self._parser = FrameParser()
        self._queued: list[Frame] = []
        self._txnr = 0
        #: Sessions opened so far (a restarted collector means a new one), and messages sent
        #: and not answered yet: what a caller (or a test) can see of the session's state.
        self.sessions = 0
        self.in_flight = 0

    # ----------------------------------------------------------------- session

    def _next_txnr(self) -> int:
        self._txnr = self._txnr % MAX_TXNR + 1
        return self._txnr

    def _connect(self) -> None:
        conn = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = (
                conn if self.tls is None else self.tls.wrap_socket(conn, server_hostname=self.host)
            )
        except BaseException:
            conn.close()
            raise
        self._sock = stream
        self._parser = FrameParser()
        self._queued = []
        self._txnr = 0
        offers = f"relp_version=0\nrelp_software=claudesec,{__version__}\ncommands=syslog"
        txnr = self._next_txnr()
        stream.sendall(encode_frame(txnr, "open", offers.encode("ascii")))
        frame = self._read_one()
        if frame.command != "rsp" or frame.txnr != txnr:
            raise RelpProtocolError(
                f"expected the answer to open, got {frame.txnr} {frame.command}"
            )
        answer = parse_response(frame)
        if answer.code != 200:
            raise RelpSessionError(f"the server refused the session: {answer.code} {answer.text}")
        commands = _offer(answer.body, "commands")
        if "syslog" not in commands.split(","):
            raise RelpUnsupported(
                f"the server does not accept syslog messages (it offers commands={commands!r})"
            )
        self.sessions += 1

    def _read_one(self) -> Frame:
        """The next frame; any that came with it wait in ``_queued`` for :meth:`_read`."""
        frames = self._read()
        self._queued = frames[1:]
        return frames[0]

    def _read(self) -> list[Frame]:
        """At least one whole frame, reading as little as it takes."""
        assert self._sock is not None
        if self._queued:
            frames, self._queued = self._queued, []
            return frames
        while True:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionAbortedError(
                    "the server closed the connection"
                    + (" in the middle of a frame" if self._parser.pending else "")
                )
            frames = self._parser.feed(chunk)
            if frames:
                return frames

    def _ended(self) -> bool:
        """Whether an idle session is over: between batches a server has nothing to say, so
        anything to read (a ``serverclose``, the end of the stream, a reset) means it has gone,
        and a new session beats sending a batch into the old one only to retry it."""
        sock = self._sock
        assert sock is not None
        if self._queued or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None

    # ----------------------------------------------------------------- sending

    def send(self, messages: Sequence[bytes]) -> None:
        """Deliver ``messages``; returns once every one is acknowledged, else raises
        :class:`RelpSessionError` (with the acknowledged ones), :class:`RelpUnsupported`,
        or :class:`ssl.SSLCertVerificationError` for a server certificate not trusted."""
        acked: set[int] = set()
        if self._sock is not None and self._ended():
            self._drop()
        try:
            if self._sock is None:
                self._connect()
            self._exchange(messages, acked)
        except ssl.SSLCertVerificationError:
            self._drop()
            raise
        except RelpUnsupported:
            self._drop()
            raise
        except (OSError, ssl.SSLError, RelpError) as exc:
            self._drop()
            self.in_flight = 0
            detail = str(exc) or type(exc).__name__
            if isinstance(exc, OSError) and not isinstance(exc, ConnectionAbortedError):
                detail = f"{type(exc).__name__}: {detail}"
            raise RelpSessionError(
                f"{detail} ({len(messages) - len(acked)} of {len(messages)} unacknowledged)",
                frozenset(acked),
            ) from exc

    def _exchange(self, messages: Sequence[bytes], acked: set[int]) -> None:
        assert self._sock is not None
        outstanding: dict[int, int] = {}  # txnr -> index into messages
        refused = ""
        sent = 0
        while outstanding or (sent < len(messages) and not refused):
            room = self.window - len(outstanding)
            if sent < len(messages) and room > 0 and not refused:
                frames = []
                for index in range(sent, min(len(messages), sent + room)):
                    txnr = self._next_txnr()
                    outstanding[txnr] = index
                    frames.append(encode_frame(txnr, "syslog", messages[index]))
                sent += len(frames)
                self._sock.sendall(b"".join(frames))
                self.in_flight = len(outstanding)
            for frame in self._read():
                refused = self._settle(frame, outstanding, acked) or refused
            self.in_flight = len(outstanding)
        if refused:
            # Sent no more after the refusal, but took every answer to what was in flight:
            # the messages acknowledged meanwhile need not go twice.
            raise RelpSessionError(refused)

    def _settle(self, frame: Frame, outstanding: dict[int, int], acked: set[int]) -> str:
        """Count one answer; returns the refusal, if the server refused the message."""
        if frame.command == "serverclose":
            raise RelpSessionError("the server ended the session (serverclose)")
        if frame.command != "rsp":
            raise RelpProtocolError(f"unexpected command {frame.command!r} from the server")
        index = outstanding.pop(frame.txnr, None)
        if index is None:
            raise RelpProtocolError(f"an answer to txnr {frame.txnr}, which was not sent")
        answer = parse_response(frame)
        if answer.code != 200:
            return f"the server refused message txnr {frame.txnr}: {answer.code} {answer.text}"
        acked.add(index)
        return ""

    def close(self) -> None:
        """End the session politely (``close``, its answer, TLS close_notify); never raises:
        everything sent was acknowledged or will be re-sent by the next run."""
        if self._sock is None:
            return
        sock = self._sock
        try:
            txnr = self._next_txnr()
            sock.sendall(encode_frame(txnr, "close"))
            while not any(f.command == "rsp" and f.txnr == txnr for f in self._read()):
                pass
            if isinstance(sock, ssl.SSLSocket):
                sock.unwrap()
        except (OSError, ssl.SSLError, RelpError):
            pass
        finally:
            self._drop()


def _offer(body: bytes, name: str) -> str:
    """The value of offer ``name`` in an ``open`` answer's body (``name=value`` lines)."""
    for line in body.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip()
    return ""
