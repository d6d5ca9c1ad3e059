"""Syslog: RFC 5424 messages over TCP, octet-counted (RFC 6587), optionally in TLS (RFC 5425).

For the SIEMs that ingest syslog (QRadar, ArcSight, Sentinel through its agent). Each event is
one message: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [origin ...] MSG`` where PRI is
facility 13 (log audit) with a severity from the OCSF one, MSGID the event type, and MSG the
event's JSON (OCSF by default), which carries ``metadata.uid`` for de-duplication.

Acknowledgement. Syslog over TCP has no application-level ack: bytes accepted by the kernel
prove nothing, and a server restart silently drops what it had not read. So each batch goes
on its own connection, ended cleanly: after the last frame the client half-closes (TLS:
``close_notify``, then the TCP FIN) and waits for the server to close its side. A syslog
server closes a session when it has read it to its end, having handed every message to its
queue; a server that dies first either never closes (the read times out) or resets the
connection (Linux sends RST when a socket is closed with unread data). Only the clean close
counts as the ack; anything else is a retry of the whole batch. Delivery is therefore at least
once, and a duplicate can only come from a batch whose connection failed after the server had
read part of it: at most one batch per failure, each copy with the same ``metadata.uid``.
That close cannot tell "read and queued" from "read, then stopped before queueing", so plain
syslog can lose the tail of a batch across a collector restart (docs/export.md).

``relp://`` (and ``relp+tls://``) sends the same messages over RELP (:mod:`.relp`): the
collector acknowledges each one once it holds it, the session stays open across batches, and
after a break only the messages not acknowledged are sent again: no loss across a restart,
and at most a window of duplicates per failure.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from claudesec import __version__
from claudesec.audit.export.interface import (
    BatchLimits,
    Encoded,
    ExportItem,
    Rejection,
    Render,
    Sink,
    SinkRetry,
    SinkUnavailable,
    dumps,
)
from claudesec.audit.export.relp import (
    DEFAULT_WINDOW,
    RelpClient,
    RelpSessionError,
    RelpUnsupported,
)
from claudesec.config import SinkConfig

FACILITY_LOG_AUDIT = 13
# OCSF severity_id -> syslog severity: Informational=info, Low=notice, Medium=warning,
# High=error; unknown ones are notices.
_SEVERITY = {1: 6, 2: 5, 3: 4, 4: 3}
_NILVALUE = "-"


def _printable(text: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, at most ``limit`` long."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text)[:limit]
    return cleaned or _NILVALUE


def _sd_value(text: str) -> str:
    """A PARAM-VALUE: '"', '\\' and ']' escaped (RFC 5424 section 6.3.3)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def timestamp(time_ns: int) -> str:
    """RFC 3339 in UTC with milliseconds, as RFC 5424 wants it."""
    seconds, rest = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


def frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


class SyslogSink(Sink):
    kind = "syslog"
    limits = BatchLimits(max_events=1000, max_bytes=4_000_000)

    def __init__(
        self,
        name: str,
        render: Render,
        *,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        app_name: str = "claudesec",
        timeout_s: float = 10.0,
        hostname: str = "",
    ) -> None:
        super().__init__(name, render)
        self.host = host
        self.port = port
        self.tls = tls
        self.app_name = _printable(app_name, 48)
        self.timeout_s = timeout_s
        self.hostname = _printable(hostname or socket.gethostname(), 255)
        self._origin = f'[origin software="claudesec" swVersion="{_sd_value(__version__)}"]'

    def encode(self, item: ExportItem) -> bytes:
        return frame(self.message(item))

    def message(self, item: ExportItem) -> bytes:
        """The RFC 5424 message for ``item``, before any transport framing."""
        document = self._render(item)
        severity = _SEVERITY.get(int(document.get("severity_id", 0) or 0), 5)
        header = " ".join(
            (
                f"<{FACILITY_LOG_AUDIT * 8 + severity}>1",
                timestamp(item.event.time_ns),
                _printable(item.event.host, 255) if item.event.host else self.hostname,
                self.app_name,
                _NILVALUE,
                _printable(item.event.type, 32),
                self._origin,
            )
        )
        return header.encode("ascii") + b" " + dumps(document)

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        where = f"syslog {self.host}:{self.port}"
        try:
            conn = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise SinkRetry(f"{where}: {type(exc).__name__}: {exc}") from exc
        stream: socket.socket = conn
        try:
            if self.tls is not None:
                stream = self.tls.wrap_socket(conn, server_hostname=self.host)
            stream.sendall(b"".join(e.payload for e in batch))
            self._close_and_wait(stream)
        except ssl.SSLCertVerificationError as exc:
            raise SinkUnavailable(
                f"{where}: the server's certificate is not trusted: {exc.verify_message}",
                hint="set export.sinks.NAME.ca_bundle to the CA that signed it",
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise SinkRetry(f"{where}: {type(exc).__name__}: {exc}") from exc
        finally:
            # wrap_socket took over the connection's descriptor: close what holds it.
            stream.close()
            conn.close()
        return []

    def _close_and_wait(self, stream: socket.socket) -> None:
        """Half-close and wait for the server's own close: the only proof it read it all."""
        raw: socket.socket = stream
        if isinstance(stream, ssl.SSLSocket):
            try:
                raw = stream.unwrap()  # sends close_notify; returns once the peer answers
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return  # the server closed after our close_notify: it read everything
        raw.shutdown(socket.SHUT_WR)
        while True:
            chunk = raw.recv(4096)  # a syslog server sends nothing; EOF is the answer
            if not chunk:
                return


class RelpSyslogSink(SyslogSink):
    """The same RFC 5424 messages over RELP: each acknowledged by the collector, one by one."""

    def __init__(
        self,
        name: str,
        render: Render,
        *,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        app_name: str = "claudesec",
        timeout_s: float = 10.0,
        hostname: str = "",
        window: int = DEFAULT_WINDOW,
    ) -> None:
        super().__init__(
            name,
            render,
            host=host,
            port=port,
            tls=tls,
            app_name=app_name,
            timeout_s=timeout_s,
            hostname=hostname,
        )
        self.client = RelpClient(host, port, tls=tls, timeout_s=timeout_s, window=window)

    def encode(self, item: ExportItem) -> bytes:
        return self.message(item)  # RELP's own frame carries the length

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        where = f"relp {self.host}:{self.port}"
        try:
            self.client.send([e.payload for e in batch])
        except ssl.SSLCertVerificationError as exc:
            raise SinkUnavailable(
                f"{where}: the server's certificate is not trusted: {exc.verify_message}",
                hint="set export.sinks.NAME.ca_bundle to the CA that signed it",
            ) from exc
        except RelpUnsupported as exc:
            raise SinkUnavailable(
                f"{where}: {exc}", hint="point syslog_address at the collector's RELP input"
            ) from exc
        except RelpSessionError as exc:
            # Acknowledged messages are in the collector's queue: only the others go again,
            # so the cursor never passes an event the collector did not confirm.
            pending = [e.item.seq for i, e in enumerate(batch) if i not in exc.acked]
            raise SinkRetry(f"{where}: {exc}", pending=pending) from exc
        return []

    def close(self) -> None:
        self.client.close()


_DEFAULT_PORTS = {"tcp": 514, "tls": 6514, "relp": 2514, "relp+tls": 2514}


def parse_address(address: str) -> tuple[str, str, int]:
    """``tls://``, ``tcp://``, ``relp://`` or ``relp+tls://`` ``HOST:PORT`` as (scheme, host,
    port)."""
    parts = urlsplit(address)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("expected tls://, tcp://, relp:// or relp+tls:// then HOST:PORT")
    return parts.scheme, parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]


def from_config(name: str, config: SinkConfig) -> SyslogSink:
    from claudesec.audit.export import renderer
    from claudesec.errors import ConfigError

    where = f"export.sinks.{name}.syslog_address"
    if not config.syslog_address:
        raise ConfigError(f"{where} is required for a syslog sink", hint="e.g. tls://siem:6514")
    try:
        scheme, host, port = parse_address(config.syslog_address)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}, not {config.syslog_address!r}") from None
    context: Any = None
    if scheme in ("tls", "relp+tls"):
        try:
            context = ssl.create_default_context(cafile=config.ca_bundle or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"export.sinks.{name}.ca_bundle: cannot load {config.ca_bundle}: {exc}"
            ) from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    kind = RelpSyslogSink if scheme.startswith("relp") else SyslogSink
    return kind(
        name,
        renderer(config),
        host=host,
        port=port,
        tls=context,
        app_name=config.syslog_app_name,
        timeout_s=config.timeout_s,
    )
