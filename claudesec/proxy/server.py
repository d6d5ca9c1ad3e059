"""The proxy's HTTP server (aiohttp): routes, credentials, limits, forwarding, lifecycle.

One event loop serves clients and talks to the upstream through one pooled
``aiohttp.ClientSession``, so a streamed answer goes from the upstream socket to the client
socket chunk by chunk as it arrives, with no thread hand-off and no buffering (both sides
run with ``TCP_NODELAY``). Audit records leave the loop through a
:class:`~claudesec.audit.writer.BackgroundWriter`, so SQLite never stalls the loop. A call's
admission record is committed before any byte goes upstream (the writer's group commit: the
calls admitted meanwhile share one transaction); its outcome record, queued once the answer
is known, completes it. A crash in between leaves the call listed as incomplete
(``logs query --incomplete``), never missing.

Request path, in order, so that nothing reaches the upstream before it is decided:
route allow-list -> credential (401) -> size limit (413) -> body parse (400) -> the audit
pipeline: identity, policy, DLP (401/403 / redacted body; 503 when the audit log cannot be
written) -> admission record committed -> stream limit (429) -> inject the upstream credential
(the key, or a federated access token: :mod:`.upstream`), strip every client credential
header -> forward -> response-side DLP (JSON and SSE) -> outcome record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from aiohttp.client_exceptions import ClientError
from multidict import CIMultiDict

from claudesec.errors import ClaudesecError, ConfigError, ExternalServiceError
from claudesec.guard.jsonbody import AmbiguousJson, parse_body
from claudesec.guard.pipeline import (
    Admission,
    ApiRequest,
    AuditPipeline,
    AuditUnavailable,
    CallDenied,
    Caller,
    Outcome,
    SseMonitor,
    StreamEnd,
)
from claudesec.proxy.auth import CLIENT_AUTH_HEADERS, Credential, extract_credential
from claudesec.proxy.connections import ConnectionLimits, GuardedSite, Limits
from claudesec.proxy.gate import Denial, RequestInfo
from claudesec.proxy.tokens import TokenRejected, TokenStore
from claudesec.proxy.upstream import UpstreamCredentialSource, with_oauth_beta

if TYPE_CHECKING:
    from claudesec.audit.writer import BackgroundWriter

log = logging.getLogger("claudesec.proxy")

# Endpoints forwarded; everything else (the Admin API above all) is refused here. The kind
# says whether the pipeline sees the JSON body ("message", "batch") or only the path ("read").
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/v1/messages$"), "message"),
    ("POST", re.compile(r"^/v1/messages/count_tokens$"), "message"),
    ("GET", re.compile(r"^/v1/models$"), "read"),
    ("GET", re.compile(r"^/v1/models/[^/]+$"), "read"),
    ("POST", re.compile(r"^/v1/messages/batches$"), "batch"),
    ("GET", re.compile(r"^/v1/messages/batches$"), "read"),
    ("GET", re.compile(r"^/v1/messages/batches/[^/]+$"), "read"),
    ("GET", re.compile(r"^/v1/messages/batches/[^/]+/results$"), "read"),
    ("POST", re.compile(r"^/v1/messages/batches/[^/]+/cancel$"), "read"),
    ("DELETE", re.compile(r"^/v1/messages/batches/[^/]+$"), "read"),
)
# Answers read whole, for usage and response-side DLP; every other answer streams through.
_BUFFERED_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
_WITHHELD = (
    "claudesec could not write the audit record of this call, so its answer is withheld "
    "(audit.fail_closed)"
)

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        # aiohttp negotiates and decodes compression with the upstream itself; the client
        # gets identity bytes, which response-side DLP needs anyway.
        "accept-encoding",
        "content-encoding",
    }
)
_DROP_RESPONSE = _HOP_BY_HOP | {"set-cookie"}
_MAX_JSON_RESPONSE = 64 * 1024 * 1024  # a Messages answer is far smaller; this bounds memory


@dataclass(frozen=True)
class ProxySettings:
    host: str = "127.0.0.1"
    port: int = 8788
    upstream: str = "https://api.anthropic.com"
    max_request_bytes: int = 32 * 1024 * 1024
    max_concurrent_streams: int = 256
    retry_after_s: int = 1
    upstream_timeout_s: float = 600.0
    shutdown_grace_s: float = 30.0
    tls_cert_file: str = ""
    tls_key_file: str = ""
    upstream_ca_file: str = ""  # tests: trust an upstream with a self-signed certificate
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    idle_timeout_s: float = 60.0
    max_connections: int = 1024

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert_file else "http"


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8788`` for IPv6) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"proxy.listen {listen!r} must be HOST:PORT", hint="e.g. 127.0.0.1:8788")
    value = int(port)
    if value > 65535:
        raise ConfigError(f"proxy.listen port {value} is out of range")
    return host.strip("[]"), value


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the proxy's TLS certificate/key: {exc}",
            hint="check proxy.tls_cert_file and proxy.tls_key_file (PEM)",
        ) from exc
    return context


def _forwarded_headers(request: web.Request) -> Iterator[tuple[str, str]]:
    """The client's headers that go upstream (and that DLP inspects): not hop-by-hop ones,
    not the client's credential, not claudesec's own."""
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in _HOP_BY_HOP or lower in CLIENT_AUTH_HEADERS or lower.startswith("x-claudesec-"):
            continue
        yield name, value


def _error(status: int, error_type: str, message: str, **headers: str) -> web.Response:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers or None,
    )


def _denial(denial: Denial, request_id: str) -> web.Response:
    return _error(
        denial.status,
        denial.error_type,
        denial.message,
        **{"x-claudesec-request-id": request_id, "x-claudesec-reason": denial.reason},
    )


class ProxyServer:
    """The proxy application. ``await start()`` / ``await stop()``, or :meth:`run` to block.

    ``writer`` is the pipeline's record sink when the server owns it: :meth:`stop` writes what
    is queued once the last stream has finished, then closes the store. ``credential`` is what
    the proxy calls Anthropic with (:mod:`claudesec.proxy.upstream`).
    """

    def __init__(
        self,
        settings: ProxySettings,
        *,
        pipeline: AuditPipeline,
        credential: UpstreamCredentialSource,
        tokens: TokenStore,
        writer: BackgroundWriter | None = None,
    ) -> None:
        self.settings = settings
        self._pipeline = pipeline
        self.credential = credential
        self._tokens = tokens
        self._writer = writer
        self._streams = 0
        self._inflight = 0
        self._session: ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._upstream = settings.upstream.rstrip("/")
        self.connections = ConnectionLimits(
            Limits(settings.header_timeout_s, settings.max_connections)
        )
        self.port = settings.port
        self.draining = False

    # ----------------------------------------------------------------- lifecycle

    def make_app(self) -> web.Application:
        # The size limit is enforced by _read_body with an Anthropic-shaped 413; aiohttp's own
        # limit is set just above it as a backstop.
        app = web.Application(client_max_size=self.settings.max_request_bytes + 1)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_startup.append(self._open_session)
        app.on_cleanup.append(self._close_session)
        return app

    async def _open_session(self, _app: web.Application) -> None:
        context: ssl.SSLContext | bool = True
        if self.settings.upstream_ca_file:
            context = ssl.create_default_context(cafile=self.settings.upstream_ca_file)
        connector = TCPConnector(limit=0, ssl=context, ttl_dns_cache=300)
        self._session = ClientSession(
            connector=connector,
            timeout=ClientTimeout(
                total=None, connect=30.0, sock_read=self.settings.upstream_timeout_s
            ),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def _close_session(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def start(self) -> None:
        """Bind and serve in the running loop; :attr:`port` is the real port afterwards."""
        ssl_context = None
        if self.settings.tls_cert_file:
            ssl_context = server_ssl_context(
                self.settings.tls_cert_file, self.settings.tls_key_file
            )
        runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self.settings.shutdown_grace_s,
            keepalive_timeout=self.settings.idle_timeout_s,
        )
        await runner.setup()
        site = GuardedSite(
            runner,
            self.settings.host,
            self.settings.port,
            self.connections,
            ssl_context=ssl_context,
            backlog=1024,
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ExternalServiceError(
                f"cannot listen on {self.settings.host}:{self.settings.port}: "
                f"{exc.strerror or exc}",
                hint="choose another --listen address",
            ) from exc
        self._runner = runner
        self.port = site.port

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests and streams finish (up to the grace period),
        then write the audit records still queued."""
        self.draining = True
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()

    def flush_audit(self, timeout: float = 10.0) -> bool:
        """Wait until every record so far is in the store (tests, drills); False on timeout."""
        return self._writer.flush(timeout) if self._writer is not None else True

    @property
    def base_url(self) -> str:
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"{self.settings.scheme}://{shown}:{self.port}"

    def run(self, on_ready: Callable[[ProxyServer], None] | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then shut down gracefully."""
        import signal

        async def main() -> None:
            await self.start()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if on_ready is not None:
                on_ready(self)
            await stop.wait()
            log.info("shutting down; %d request(s) in flight", self._inflight)
            await self.stop()

        asyncio.run(main())

    # ----------------------------------------------------------------- endpoints

    async def _healthz(self, _request: web.Request) -> web.Response:
        audit = self._pipeline.recording_problem()
        status = "draining" if self.draining else ("audit_unavailable" if audit else "ok")
        body = {
            "status": status,
            "in_flight": self._inflight,
            "streams": self._streams,
            "key_loaded": self.credential.loaded,
            "upstream_credential": self.credential.describe().kind,
            "audit": audit or "ok",
            "audit_pending": self._writer.pending if self._writer is not None else 0,
        }
        return web.json_response(body, status=200 if status == "ok" else 503)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._inflight += 1
        transport = request.transport
        self.connections.request_started(transport)  # headers in: their deadline is off
        try:
            return await self._serve(request)
        finally:
            self._inflight -= 1
            self.connections.request_finished(transport)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = "csreq_" + uuid.uuid4().hex
        credential = extract_credential(request.headers)
        info = RequestInfo(
            request_id=request_id,
            method=request.method,
            path=request.path,
            client=request.remote or "",
            credential=credential.kind,
            credential_hint=credential.hint,
        )
        kind = _route_kind(request.method, request.path)
        if kind is None:
            # Recorded: a client trying the Admin API through the proxy is worth knowing about.
            denial = self._refuse(
                info, None, "request.not_proxied", f"{request.method} {request.path} is not proxied"
            )
            return _denial(denial, request_id)

        authenticated = await self._authenticate(credential, info, started)
        if isinstance(authenticated, Denial):
            return _denial(authenticated, request_id)
        caller, info = authenticated

        body_bytes = b""
        body: Any = None
        if request.method == "POST":
            limit = self.settings.max_request_bytes
            try:
                async with asyncio.timeout(self.settings.body_timeout_s):
                    read = await self._read_body(request, limit)
            except TimeoutError:
                message = (
                    f"the request body did not arrive within {self.settings.body_timeout_s:g} s"
                )
                denial = self._refuse(info, caller, "request.timeout", message)
                response = _denial(denial, request_id)
                response.force_close()  # the rest of the body may still come: not reusable
                return response
            if read is None:
                message = f"the request body exceeds the proxy's limit of {limit} bytes"
                return _denial(self._refuse(info, caller, "request.too_large", message), request_id)
            body_bytes = read
            if kind != "read":
                # What is checked must be what the upstream reads from the bytes forwarded:
                # a body parsers could read differently is refused (guard/jsonbody.py).
                try:
                    body = parse_body(body_bytes)
                except AmbiguousJson as exc:
                    denial = self._refuse(info, caller, "request.malformed", str(exc))
                    return _denial(denial, request_id)
                if not isinstance(body, dict):
                    message = "the request body must be a JSON object"
                    denial = self._refuse(info, caller, "request.malformed", message)
                    return _denial(denial, request_id)

        streaming = kind == "message" and isinstance(body, dict) and body.get("stream") is True
        api = replace(
            info.api_request(
                body,
                stream=streaming,
                headers=tuple(_forwarded_headers(request)),
                query=tuple(request.rel_url.query.items()),
            ),
            upstream=self.credential.describe().fields(),
        )
        admitted = await self._admit(caller, api)
        if isinstance(admitted, Denial):
            return _denial(admitted, request_id)
        admission = admitted

        forward_body = body_bytes
        if admission.body is not api.body:
            forward_body = json.dumps(admission.body, ensure_ascii=False).encode("utf-8")

        if streaming and self._streams >= self.settings.max_concurrent_streams:
            self._finish(admission, Outcome(status=429, error="proxy.too_many_streams"))
            return _error(
                429,
                "rate_limit_error",
                f"the proxy is serving {self.settings.max_concurrent_streams} streams; "
                "retry shortly",
                **{"retry-after": str(self.settings.retry_after_s)},
            )
        if streaming:
            self._streams += 1
        try:
            return await self._forward(request, forward_body, admission, info)
        finally:
            if streaming:
                self._streams -= 1

    # ----------------------------------------------------------------- identity

    async def _authenticate(
        self, credential: Credential, info: RequestInfo, started: float
    ) -> tuple[Caller, RequestInfo] | Denial:
        """Who calls, before the body is read: an unidentified client cannot make the proxy
        read (up to) ``max_request_bytes``."""
        from claudesec.guard.identity import Identity, IdentityProviderError, IdentityRejected

        def reject(reason: str, message: str, source: str = "", user: str = "") -> Denial:
            try:
                self._pipeline.reject(
                    info.api_request(),
                    f"identity.{reason}",
                    message,
                    source=source,
                    user=user,
                    started=started,
                )
            except CallDenied as denied:
                return Denial.of(denied)

        if credential.kind == "none":
            return reject(
                "no_identity",
                "no credential: send a claudesec proxy token or an OIDC token as x-api-key "
                "or Authorization: Bearer",
            )
        if credential.kind == "anthropic_key":
            return reject(
                "anthropic_key_presented",
                "Anthropic API keys are not accepted here (and were not forwarded): use a "
                "claudesec proxy token (claudesec proxy token create) or an OIDC token",
            )
        if credential.kind == "ambiguous":
            return reject(
                "ambiguous_credentials", "x-api-key and Authorization carry different credentials"
            )
        if credential.kind == "proxy_token":
            try:
                record = self._tokens.verify(credential.value)
            except TokenRejected as exc:
                if exc.token is not None:
                    info = replace(info, token_id=exc.token.id)
                    return reject(exc.reason.value, exc.message, "proxy_token", exc.token.user)
                return reject(exc.reason.value, exc.message, "proxy_token")
            except ClaudesecError as exc:
                log.error("token store unavailable: %s", exc.message)
                return reject(
                    "token_store_unavailable",
                    "the proxy cannot read its token store",
                    "proxy_token",
                )
            info = replace(info, token_id=record.id)
            identity = Identity(
                user=record.user, roles=(record.role,), source="proxy_token", subject=record.id
            )
            return Caller(identity=identity, role=record.role), info
        if credential.kind == "jwt":
            try:
                # Verification may fetch the IdP's JWKS: off the loop. The pipeline caches the
                # verified identity until the token expires.
                identity = await asyncio.to_thread(
                    self._pipeline.identify, Caller(token=credential.value)
                )
            except IdentityRejected as exc:
                return reject(exc.reason.value, exc.message, "oidc")
            except IdentityProviderError as exc:
                log.error("identity provider unavailable: %s", exc.message)
                return reject(
                    "idp_unavailable", "the identity provider is unreachable (fail closed)", "oidc"
                )
            return Caller(identity=identity), info
        return reject("unknown_credential", "the credential is neither a proxy token nor a JWT")

    # ----------------------------------------------------------------- body and pipeline

    async def _read_body(self, request: web.Request, limit: int) -> bytes | None:
        """The body, or None when it is over ``limit`` (not read further)."""
        length = request.content_length
        if length is not None and length > limit:
            return None
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _refuse(
        self, info: RequestInfo, caller: Caller | None, reason: str, message: str
    ) -> Denial:
        """Record and answer a request the proxy will not relay, whoever sent it."""
        identity = caller.identity if caller is not None else None
        try:
            self._pipeline.reject(
                info.api_request(),
                reason,
                message,
                source=identity.source if identity is not None else "",
                user=identity.user if identity is not None else "",
            )
        except CallDenied as denied:
            return Denial.of(denied)

    async def _admit(self, caller: Caller, api: ApiRequest) -> Admission | Denial:
        try:
            # Returns once the admission record is committed (write ahead): nothing has been
            # sent upstream yet, and a crash from here on leaves the call visibly incomplete.
            return await self._pipeline.admit_async(caller, api)
        except CallDenied as denied:
            return Denial.of(denied)
        except ClaudesecError as exc:
            log.error("the audit pipeline failed: %s", exc.message)
            return Denial(503, "api_error", f"claudesec refused the call: {exc.message}")

    def _finish(self, admission: Admission, outcome: Outcome) -> bool:
        """Record the outcome; False when the answer must be withheld (fail closed)."""
        try:
            self._pipeline.finish(admission, outcome)
        except AuditUnavailable:
            return False  # already logged by the pipeline
        except ClaudesecError as exc:
            log.error("could not record the call's outcome: %s", exc.message)
            return False
        return True

    # ----------------------------------------------------------------- forwarding

    def _upstream_headers(self, request: web.Request, auth: Mapping[str, str]) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in _forwarded_headers(request):
            headers.add(name, value)
        for name, value in auth.items():
            headers[name] = value
        if "authorization" in auth:
            # A Bearer token (federation) is only accepted with the OAuth beta flag.
            headers["anthropic-beta"] = with_oauth_beta(headers.get("anthropic-beta", ""))
        return headers

    async def _forward(
        self, request: web.Request, body: bytes, admission: Admission, info: RequestInfo
    ) -> web.StreamResponse:
        assert self._session is not None
        try:
            auth = await self.credential.get()
        except ClaudesecError as exc:
            log.error("no upstream credential: %s", exc.message)
            self._finish(admission, Outcome(status=503, error="proxy.no_upstream_key"))
            return _error(503, "api_error", "the proxy has no Anthropic credential to call with")
        sent_with = auth.described.fields()
        if sent_with != admission.request.upstream:
            # The call record names the credential that actually went out (a refresh may
            # have happened since the admission was written).
            admission = replace(admission, request=replace(admission.request, upstream=sent_with))
        url = self._upstream + request.rel_url.raw_path_qs
        try:
            upstream = await self._session.request(
                request.method,
                url,
                data=body if request.method != "GET" else None,
                headers=self._upstream_headers(request, auth.headers),
                allow_redirects=False,
            )
        except (ClientError, TimeoutError, OSError) as exc:
            log.warning("upstream unreachable: %s", exc)
            self._finish(admission, Outcome(status=529, error="upstream.unreachable"))
            return _error(529, "overloaded_error", "the upstream Anthropic API is unreachable")

        if upstream.status == 401:
            # Rotated out or expired: get a fresh credential for the next request.
            self.credential.rejected(auth.value)
        try:
            if upstream.content_type == "text/event-stream":
                return await self._relay_stream(request, upstream, admission, info)
            if admission.request.path in _BUFFERED_PATHS:
                return await self._relay_body(upstream, admission, info)
            return await self._relay_through(request, upstream, admission, info)
        finally:
            upstream.release()

    def _response_headers(self, upstream: Any, info: RequestInfo) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in upstream.headers.items():
            if name.lower() not in _DROP_RESPONSE:
                headers.add(name, value)
        headers["x-claudesec-request-id"] = info.request_id
        return headers

    async def _relay_body(
        self, upstream: Any, admission: Admission, info: RequestInfo
    ) -> web.StreamResponse:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in upstream.content.iter_any():
                size += len(chunk)
                if size > _MAX_JSON_RESPONSE:
                    raise ValueError("the upstream answer is too large")
                chunks.append(chunk)
        except (ClientError, TimeoutError, OSError, ValueError) as exc:
            log.warning("upstream failed mid-response: %s", exc)
            self._finish(admission, Outcome(status=529, error="upstream.failed"))
            return _error(529, "overloaded_error", "the upstream Anthropic API failed")
        raw = b"".join(chunks)
        status = upstream.status
        request_id = str(upstream.headers.get("request-id", ""))
        outcome, rewritten = self._pipeline.response_outcome(
            admission, status, request_id, raw if status < 400 else None
        )
        if not self._finish(admission, outcome):
            return _error(503, "api_error", _WITHHELD)
        return web.Response(
            status=status,
            body=raw if rewritten is None else rewritten,
            headers=self._response_headers(upstream, info),
        )

    async def _relay_through(
        self, request: web.Request, upstream: Any, admission: Admission, info: RequestInfo
    ) -> web.StreamResponse:
        """Model lists, batch status and results (JSONL, possibly large): passed on as they
        arrive; the record says how the attempt ended."""
        status = upstream.status
        request_id = str(upstream.headers.get("request-id", ""))
        outcome, _ = self._pipeline.response_outcome(admission, status, request_id, None)
        response = web.StreamResponse(status=status, headers=self._response_headers(upstream, info))
        recorded = False
        try:
            await _to_client(response.prepare(request))
            async for chunk in upstream.content.iter_any():
                await _to_client(response.write(chunk))
            # Recorded before the last chunk: a client that has its whole answer can count
            # on the record being queued (a flush then finds it).
            self._finish(admission, outcome)
            recorded = True
            await _to_client(response.write_eof())
        except _ClientGone:
            _log_hang_up(info, upstream)
            outcome = replace(outcome, extra={**outcome.extra, "abandoned": True})
        except (ClientError, TimeoutError) as exc:
            log.warning("upstream broke mid-response: %s", exc)
            outcome = replace(outcome, error="upstream.failed")
        finally:
            if not recorded:
                self._finish(admission, outcome)
        return response

    async def _relay_stream(
        self, request: web.Request, upstream: Any, admission: Admission, info: RequestInfo
    ) -> web.StreamResponse:
        monitor = self._pipeline.stream_monitor(
            admission,
            status=upstream.status,
            request_id=str(upstream.headers.get("request-id", "")),
        )
        response = web.StreamResponse(
            status=upstream.status, headers=self._response_headers(upstream, info)
        )
        how: StreamEnd = "complete"
        error = ""
        try:
            await _to_client(response.prepare(request))
            async for chunk in upstream.content.iter_any():
                # With response redaction on, the monitor releases whole events and holds back
                # a text tail that may be the start of a secret finished by the next event;
                # the events it leaves alone go out before it decodes the rest of the chunk.
                for out in monitor.feed_parts(chunk):
                    await _to_client(response.write(out))
            # Recorded before the last chunk, as in _relay_through (a second finish is a no-op).
            _finish_stream(monitor, how, error)
            await _to_client(response.write_eof())
        except _ClientGone:
            # The client hung up: its side, not the upstream's, and no traceback for it.
            how = "abandoned"
            _log_hang_up(info, upstream)
        except (ClientError, TimeoutError) as exc:
            how, error = "failed", "upstream.failed"
            log.warning("upstream stream broke: %s", exc)
        except asyncio.CancelledError:
            how = "abandoned"
            raise
        finally:
            # The answer has been sent: a failed record cannot withhold it, only refuse the
            # next calls (the pipeline does) and be logged.
            _finish_stream(monitor, how, error)
        return response


class _ClientGone(Exception):
    """Writing to the client failed: it disconnected (or reset the connection)."""


async def _to_client(write: Awaitable[Any]) -> None:
    """Await a write to the client, telling its failure apart from the upstream's.

    aiohttp raises ``ClientConnectionResetError`` for a client that went away, which is also a
    ``ClientError``: caught as such, a hang-up was recorded as the upstream failing.
    """
    try:
        await write
    except (ConnectionError, RuntimeError) as exc:
        # RuntimeError: aiohttp refuses to write once the transport is closing.
        if isinstance(exc, RuntimeError) and "closing" not in str(exc).lower():
            raise
        raise _ClientGone from None


def _log_hang_up(info: RequestInfo, upstream: Any) -> None:
    upstream.close()  # stop the generation (and its cost) instead of draining it
    log.info(
        "client %s disconnected mid-response to %s (%s); recorded as abandoned",
        info.client or "?",
        info.path,
        info.request_id,
    )


def _finish_stream(monitor: SseMonitor, how: StreamEnd, error: str) -> None:
    try:
        monitor.finish(how, error)
    except ClaudesecError as exc:
        log.error("claudesec: %s", exc.message)


def _route_kind(method: str, path: str) -> str | None:
    for route_method, pattern, kind in _ROUTES:
        if route_method == method and pattern.match(path):
            return kind
    return None


# --------------------------------------------------------------------------- in a thread


class ThreadedProxy:
    """A :class:`ProxyServer` on its own loop in a daemon thread (tests, benchmarks, drills)."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        timeout = self.server.settings.shutdown_grace_s + 10
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
