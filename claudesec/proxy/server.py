"""The proxy's HTTP server (aiohttp): routes, credentials, limits, forwarding, lifecycle.

One event loop serves clients and talks to the upstream through one pooled
``aiohttp.ClientSession``, so a streamed answer goes from the upstream socket to the client
socket chunk by chunk as it arrives, with no thread hand-off and no buffering (both sides
run with ``TCP_NODELAY``).

Request path, in order, so that nothing reaches the upstream before it is decided:
route allow-list -> credential (401) -> size limit (413) -> body parse (400) -> the gate:
identity, policy, DLP (403 / redacted body) -> stream limit (429) -> inject the key, strip
every client credential header -> forward -> response-side DLP -> record.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from aiohttp.client_exceptions import ClientError
from multidict import CIMultiDict

from claudesec.errors import ClaudesecError, ConfigError, ExternalServiceError
from claudesec.proxy.auth import CLIENT_AUTH_HEADERS, Credential, extract_credential
from claudesec.proxy.gate import Call, Caller, Denial, Gate, PassThroughStream, RequestInfo, Usage
from claudesec.proxy.keysource import CachedKey
from claudesec.proxy.tokens import TokenRejected, TokenStore

if TYPE_CHECKING:
    from claudesec.audit.identity import OidcVerifier

log = logging.getLogger("claudesec.proxy")

# Endpoints forwarded; everything else (the Admin API above all) is refused here. The bool
# says whether the JSON body is a Messages request the gate must see.
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
_MAX_JSON_RESPONSE = 64 * 1024 * 1024


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
    """The proxy application. ``await start()`` / ``await stop()``, or :meth:`run` to block."""

    def __init__(
        self,
        settings: ProxySettings,
        *,
        gate: Gate,
        key: CachedKey,
        tokens: TokenStore,
        verifier: OidcVerifier | None = None,
    ) -> None:
        self.settings = settings
        self._gate = gate
        self._key = key
        self._tokens = tokens
        self._verifier = verifier
        self._streams = 0
        self._inflight = 0
        self._session: ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._upstream = settings.upstream.rstrip("/")
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
        )
        await runner.setup()
        site = web.TCPSite(
            runner, self.settings.host, self.settings.port, ssl_context=ssl_context, backlog=1024
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
        server = site._server  # the asyncio server: the only way to learn port 0's real port
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests and streams finish (up to the grace period)."""
        self.draining = True
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

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
        status = "draining" if self.draining else "ok"
        body = {
            "status": status,
            "in_flight": self._inflight,
            "streams": self._streams,
            "key_loaded": self._key.peek() is not None,
        }
        return web.json_response(body, status=503 if self.draining else 200)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._inflight += 1
        try:
            return await self._serve(request)
        finally:
            self._inflight -= 1

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = "csreq_" + uuid.uuid4().hex
        kind = _route_kind(request.method, request.path)
        if kind is None:
            return _error(404, "not_found_error", f"{request.method} {request.path} is not proxied")

        credential = extract_credential(request.headers)
        info = RequestInfo(
            request_id=request_id,
            method=request.method,
            path=request.path,
            client=request.remote or "",
            user_agent=request.headers.get("user-agent", "")[:256],
            credential=credential.kind,
            credential_hint=credential.hint,
        )
        caller_or_denial = await self._authenticate(credential, info)
        if isinstance(caller_or_denial, Denial):
            return _denial(caller_or_denial, request_id)
        caller, info = caller_or_denial

        body_bytes = b""
        body: Any = None
        if request.method == "POST":
            read = await self._read_body(request)
            if isinstance(read, web.Response):
                return read
            body_bytes = read
            if kind != "read":
                try:
                    body = json.loads(body_bytes)
                except ValueError:
                    return _error(400, "invalid_request_error", "the request body is not JSON")
                if not isinstance(body, dict):
                    return _error(
                        400, "invalid_request_error", "the request body must be a JSON object"
                    )

        calls, denial = self._admit(kind, caller, body, info)
        if denial is not None:
            return _denial(denial, request_id)

        forward_body = body_bytes
        if kind == "message" and calls and calls[0].body is not None:
            forward_body = json.dumps(calls[0].body).encode()
        elif kind == "batch" and any(c.body is not None for c in calls):
            forward_body = json.dumps(_rebuild_batch(body, calls)).encode()

        streaming = kind == "message" and isinstance(body, dict) and body.get("stream") is True
        if streaming and self._streams >= self.settings.max_concurrent_streams:
            self._finish_all(calls, 429, None, started, "too_many_streams")
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
            return await self._forward(request, forward_body, calls, info, started)
        finally:
            if streaming:
                self._streams -= 1

    # ----------------------------------------------------------------- identity

    async def _authenticate(
        self, credential: Credential, info: RequestInfo
    ) -> tuple[Caller, RequestInfo] | Denial:
        from claudesec.audit.identity import Identity, IdentityProviderError, IdentityRejected

        def reject(reason: str, message: str) -> Denial:
            try:
                self._gate.reject_identity(info, reason, message)
            except ClaudesecError:
                log.exception("could not record a rejected identity")
            return Denial(401, "authentication_error", message, reason)

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
                return reject(exc.reason.value, exc.message)
            except ClaudesecError as exc:
                log.error("token store unavailable: %s", exc)
                return Denial(503, "api_error", "the proxy cannot read its token store")
            info = _with_token(info, record.id)
            identity = Identity(
                user=record.user, roles=(record.role,), source="trusted", subject=record.id
            )
            return Caller(identity, record.role), info
        if credential.kind == "jwt":
            if self._verifier is None:
                return reject(
                    "oidc_not_configured", "OIDC tokens are not accepted: identity.issuer is unset"
                )
            try:
                identity = await asyncio.to_thread(self._verifier.verify, credential.value)
            except IdentityRejected as exc:
                return reject(exc.reason.value, exc.message)
            except IdentityProviderError as exc:
                # Fail closed: no verified identity, no call.
                log.error("identity provider unavailable: %s", exc)
                return Denial(
                    503, "api_error", "the identity provider is unreachable", "idp_unavailable"
                )
            return Caller(identity, None), info
        return reject("unknown_credential", "the credential is neither a proxy token nor a JWT")

    # ----------------------------------------------------------------- body and gate

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        limit = self.settings.max_request_bytes
        too_large = _error(
            413, "request_too_large", f"the request body exceeds the proxy's limit of {limit} bytes"
        )
        length = request.content_length
        if length is not None and length > limit:
            return too_large
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
            if total > limit:
                return too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _admit(
        self, kind: str, caller: Caller, body: Any, info: RequestInfo
    ) -> tuple[list[Call], Denial | None]:
        try:
            if kind == "batch":
                return self._admit_batch(caller, body, info)
            result = self._gate.admit(caller, body if kind == "message" else None, info)
        except ClaudesecError as exc:
            log.error("the audit pipeline failed: %s", exc)
            return [], Denial(503, "api_error", f"claudesec refused the call: {exc.message}")
        if isinstance(result, Denial):
            return [], result
        return [result], None

    def _admit_batch(
        self, caller: Caller, body: Mapping[str, Any], info: RequestInfo
    ) -> tuple[list[Call], Denial | None]:
        items = body.get("requests")
        if not isinstance(items, list) or not items:
            return [], Denial(400, "invalid_request_error", "a batch needs a list of requests")
        calls: list[Call] = []
        for item in items:
            params = item.get("params") if isinstance(item, dict) else None
            if not isinstance(params, dict):
                return [], Denial(400, "invalid_request_error", "each batch request needs params")
            result = self._gate.admit(caller, params, info)
            if isinstance(result, Denial):
                custom_id = str(item.get("custom_id", ""))[:64]
                message = f"batch request {custom_id!r}: {result.message}"
                return [], Denial(result.status, result.error_type, message, result.reason)
            calls.append(result)
        return calls, None

    def _finish_all(
        self,
        calls: list[Call],
        status: int,
        usage: Usage | None,
        started: float,
        error: str = "",
    ) -> None:
        latency = (time.perf_counter() - started) * 1000
        for call in calls:
            try:
                call.finish(status=status, usage=usage, latency_ms=latency, error=error)
            except ClaudesecError:
                log.exception("could not record the call's outcome")

    # ----------------------------------------------------------------- forwarding

    def _upstream_headers(self, request: web.Request, key: str) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.items():
            lower = name.lower()
            if (
                lower in _HOP_BY_HOP
                or lower in CLIENT_AUTH_HEADERS
                or lower.startswith("x-claudesec-")
            ):
                continue
            headers.add(name, value)
        headers["x-api-key"] = key
        return headers

    async def _forward(
        self,
        request: web.Request,
        body: bytes,
        calls: list[Call],
        info: RequestInfo,
        started: float,
    ) -> web.StreamResponse:
        assert self._session is not None
        try:
            key = await self._key.get()
        except ClaudesecError as exc:
            log.error("no upstream key: %s", exc)
            self._finish_all(calls, 503, None, started, "no_upstream_key")
            return _error(503, "api_error", "the proxy has no Anthropic key to call with")
        url = self._upstream + request.rel_url.raw_path_qs
        try:
            upstream = await self._session.request(
                request.method,
                url,
                data=body if request.method != "GET" else None,
                headers=self._upstream_headers(request, key.key),
                allow_redirects=False,
            )
        except (ClientError, TimeoutError, OSError) as exc:
            log.warning("upstream unreachable: %s", exc)
            self._finish_all(calls, 502, None, started, "upstream_unreachable")
            return _error(529, "overloaded_error", "the upstream Anthropic API is unreachable")

        if upstream.status == 401:
            # The key may just have been rotated out: read it again for the next request.
            self._key.invalidate()
        try:
            if upstream.content_type == "text/event-stream":
                return await self._relay_stream(request, upstream, calls, info, started)
            return await self._relay_body(upstream, calls, info, started)
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
        self, upstream: Any, calls: list[Call], info: RequestInfo, started: float
    ) -> web.StreamResponse:
        try:
            raw: bytes = await upstream.content.read(_MAX_JSON_RESPONSE)
        except (ClientError, TimeoutError, OSError) as exc:
            log.warning("upstream failed mid-response: %s", exc)
            self._finish_all(calls, 502, None, started, "upstream_failed")
            return _error(529, "overloaded_error", "the upstream Anthropic API failed")
        usage: Usage | None = None
        if calls and upstream.content_type == "application/json" and raw:
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            if data is not None:
                filtered = calls[0].filter_response(data) if upstream.status == 200 else data
                if filtered is not data:
                    raw = json.dumps(filtered).encode()
                usage = _usage_of(data)
        self._finish_all(calls, upstream.status, usage, started)
        return web.Response(
            status=upstream.status, body=raw, headers=self._response_headers(upstream, info)
        )

    async def _relay_stream(
        self,
        request: web.Request,
        upstream: Any,
        calls: list[Call],
        info: RequestInfo,
        started: float,
    ) -> web.StreamResponse:
        stream_filter = calls[0].stream_filter() if calls else PassThroughStream()
        response = web.StreamResponse(
            status=upstream.status, headers=self._response_headers(upstream, info)
        )
        await response.prepare(request)
        error = ""
        try:
            async for chunk in upstream.content.iter_any():
                out = stream_filter.feed(chunk)
                if out:
                    await response.write(out)
            rest = stream_filter.close()
            if rest:
                await response.write(rest)
            await response.write_eof()
        except (ClientError, TimeoutError) as exc:
            error = "upstream_failed"
            log.warning("upstream stream broke: %s", exc)
        except (ConnectionResetError, asyncio.CancelledError):
            error = "client_gone"
            raise
        finally:
            self._finish_all(calls, upstream.status, stream_filter.usage, started, error)
        return response


def _route_kind(method: str, path: str) -> str | None:
    for route_method, pattern, kind in _ROUTES:
        if route_method == method and pattern.match(path):
            return kind
    return None


def _with_token(info: RequestInfo, token_id: str) -> RequestInfo:
    from dataclasses import replace

    return replace(info, token_id=token_id)


def _usage_of(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    usage = data.get("usage")
    if not isinstance(usage, dict):
        # count_tokens answers {"input_tokens": N}
        if isinstance(data.get("input_tokens"), int):
            return Usage(input_tokens=data["input_tokens"])
        return None
    return Usage(
        int(usage.get("input_tokens") or 0),
        int(usage.get("output_tokens") or 0),
        str(data.get("stop_reason") or ""),
        str(data.get("model") or ""),
    )


def _rebuild_batch(body: Mapping[str, Any], calls: list[Call]) -> dict[str, Any]:
    items = []
    for item, call in zip(body["requests"], calls, strict=True):
        params = call.body if call.body is not None else item["params"]
        items.append({**item, "params": dict(params)})
    return {**body, "requests": items}


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
