"""The HTTP server: routing, authentication, faults, framing.

Built on ``http.server`` so the emulator needs nothing beyond the standard library. Two
details make it fast enough to be the baseline the audit overhead is measured against:

* every response goes out in one ``send`` (status line, headers and body together), with
  Nagle disabled, so keep-alive requests do not stall on delayed ACKs (~40 ms otherwise);
* every response carries ``content-length`` (or chunked framing for SSE), so clients keep
  the connection open instead of reconnecting per request.

Authorization follows the real API where it is known and is plausible where it is not: a
missing credential or an unknown, inactive, archived or expired key gets 401
``authentication_error``; an API key on an Admin API endpoint gets 403 ``permission_error``;
an admin key on an inference endpoint gets 401 (to the inference plane it is not an API key).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

from claudesec import strict_json
from claudesec.emulator import admin, org_api
from claudesec.emulator import federation_api as fed
from claudesec.emulator.control import CONTROL_PREFIX, CONTROL_TOKEN_HEADER, handle_control
from claudesec.emulator.faults import Fault, FaultKind
from claudesec.emulator.federation import SCOPE_DEVELOPER, SCOPE_INFERENCE, SCOPE_ORG_ADMIN
from claudesec.emulator.keys import new_id, new_request_id
from claudesec.emulator.messages import (
    build_reply,
    message_json,
    parse_message_request,
    sse_frame,
    stream_events,
)
from claudesec.emulator.oauth import (
    FEDERATION_BETA,
    OAUTH_BETA,
    GrantRefused,
    exchange,
    is_oauth_token,
    parse_exchange_body,
)
from claudesec.emulator.state import (
    STREAM_HOLD_LIMIT_S,
    AuthResult,
    EmulatorState,
    UsageRecord,
)
from claudesec.emulator.wire import (
    ApiError,
    Query,
    Response,
    dumps,
    error_body,
    invalid_request,
    not_found,
    paginate,
    reason_phrase,
)
from claudesec.redact import redact

log = logging.getLogger("claudesec.emulator")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 32 * 1024 * 1024  # the Messages API's documented request size limit
IDLE_TIMEOUT_S = 120.0
_POLL_INTERVAL_S = 0.05
# Headers that carry credentials: never logged, never recorded.
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "cookie", CONTROL_TOKEN_HEADER})
# How many SSE events go out before a STREAM_CUT / STREAM_ERROR fault strikes: the message
# has started and some text has arrived, the situation a client must handle.
_EVENTS_BEFORE_STREAM_FAULT = 4

# Which credential a route takes: an API key or a workspace-scoped OAuth token
# ("inference"), an Admin API key ("admin"), an OAuth token with org:admin ("org_admin"),
# either of the last two ("admin_or_org"), or anything registered ("any").
Scope = Literal["inference", "admin", "org_admin", "admin_or_org", "any"]
TOKEN_PATH = "/v1/oauth/token"  # noqa: S105 - a path, not a secret
_INFERENCE_SCOPES = frozenset({SCOPE_INFERENCE, SCOPE_DEVELOPER})
_NEEDS_ORG_ADMIN = (
    "This endpoint requires an OAuth access token with the org:admin scope (from `ant auth "
    "login --scope org:admin` or a federation rule); {what} are not accepted."
)
_NEEDS_ADMIN_KEY = "This endpoint requires an Admin API key; an OAuth access token was provided."


@dataclass(frozen=True)
class _Call:
    state: EmulatorState
    query: Query
    body: Any
    params: dict[str, str]
    auth: AuthResult
    request_id: str


@dataclass(frozen=True)
class _StreamReply:
    events: list[tuple[str, dict[str, Any]]]
    usage: UsageRecord


_Handler = Callable[[_Call], "Response | _StreamReply"]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    scope: Scope
    handler: _Handler


# ------------------------------------------------------------------------------- endpoints


def _usage_record(call: _Call, model: str, input_tokens: int, output_tokens: int) -> UsageRecord:
    key = call.auth.key
    return UsageRecord(
        at=call.state.now(),
        key_id=key.id if key else None,
        workspace_id=call.auth.workspace_id or call.state.default_workspace_id,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def _create_message(call: _Call) -> Response | _StreamReply:
    request = parse_message_request(call.body, call.state.resolve_model)
    reply = build_reply(request)
    message_id = new_id("msg")
    usage = _usage_record(call, request.model, request.input_tokens, reply.output_tokens)
    if request.stream:
        return _StreamReply(stream_events(message_id, request, reply), usage)
    call.state.record_usage(usage)
    return Response(200, message_json(message_id, request, reply))


def _count_tokens(call: _Call) -> Response:
    request = parse_message_request(call.body, call.state.resolve_model, count_only=True)
    return Response(200, {"input_tokens": request.input_tokens})


def _list_models(call: _Call) -> Response:
    page = paginate(call.state.models, id_of=lambda m: m.id, keep=lambda _: True, query=call.query)
    return Response(200, page.to_json(lambda m: m.to_json()))


def _retrieve_model(call: _Call) -> Response:
    spec = call.state.resolve_model(call.params["model_id"])
    if spec is None:
        raise not_found(f"model: {call.params['model_id']}")
    return Response(200, spec.to_json())


def _organization(call: _Call) -> Response:
    return Response(200, admin.organization_json(call.state))


def _list_api_keys(call: _Call) -> Response:
    return Response(200, admin.list_api_keys(call.state, call.query))


def _retrieve_api_key(call: _Call) -> Response:
    return Response(200, admin.retrieve_api_key(call.state, call.params["key_id"]))


def _update_api_key(call: _Call) -> Response:
    return Response(200, admin.update_api_key(call.state, call.params["key_id"], call.body))


def _usage_report(call: _Call) -> Response:
    return Response(200, admin.usage_report(call.state, call.query))


def _route(method: str, path: str, scope: Scope, handler: _Handler) -> _Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return _Route(method, re.compile(f"^{pattern}$"), scope, handler)


ROUTES: tuple[_Route, ...] = (
    _route("POST", "/v1/messages", "inference", _create_message),
    _route("POST", "/v1/messages/count_tokens", "inference", _count_tokens),
    _route("GET", "/v1/models", "inference", _list_models),
    _route("GET", "/v1/models/{model_id}", "inference", _retrieve_model),
    _route("GET", "/v1/organizations/me", "admin", _organization),
    _route("GET", "/v1/organizations/api_keys", "admin", _list_api_keys),
    _route("GET", "/v1/organizations/api_keys/{key_id}", "admin", _retrieve_api_key),
    _route("POST", "/v1/organizations/api_keys/{key_id}", "admin", _update_api_key),
    _route("GET", "/v1/organizations/usage_report/messages", "admin", _usage_report),
    _route("GET", "/v1/organizations/analytics/usage_report", "admin", _usage_report),
    # Workspaces: the Admin API's, which also takes an org:admin OAuth token.
    _route("POST", "/v1/organizations/workspaces", "admin_or_org", fed.create_workspace),
    _route("GET", "/v1/organizations/workspaces", "admin_or_org", fed.list_workspaces),
    _route(
        "GET", "/v1/organizations/workspaces/{workspace_id}", "admin_or_org", fed.retrieve_workspace
    ),
    _route(
        "POST", "/v1/organizations/workspaces/{workspace_id}", "admin_or_org", fed.update_workspace
    ),
    _route(
        "POST",
        "/v1/organizations/workspaces/{workspace_id}/archive",
        "admin_or_org",
        fed.archive_workspace,
    ),
    # Workspace membership of service accounts, service accounts, federation: org:admin only.
    _route(
        "GET",
        "/v1/organizations/workspaces/{workspace_id}/service_accounts",
        "org_admin",
        fed.list_workspace_accounts,
    ),
    _route(
        "POST",
        "/v1/organizations/workspaces/{workspace_id}/service_accounts",
        "org_admin",
        fed.add_workspace_account,
    ),
    _route(
        "GET",
        "/v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}",
        "org_admin",
        fed.retrieve_workspace_account,
    ),
    _route(
        "POST",
        "/v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}",
        "org_admin",
        fed.update_workspace_account,
    ),
    _route(
        "DELETE",
        "/v1/organizations/workspaces/{workspace_id}/service_accounts/{service_account_id}",
        "org_admin",
        fed.remove_workspace_account,
    ),
    _route("POST", "/v1/organizations/service_accounts", "org_admin", fed.create_service_account),
    _route("GET", "/v1/organizations/service_accounts", "org_admin", fed.list_service_accounts),
    _route(
        "GET",
        "/v1/organizations/service_accounts/{service_account_id}",
        "org_admin",
        fed.retrieve_service_account,
    ),
    _route(
        "POST",
        "/v1/organizations/service_accounts/{service_account_id}",
        "org_admin",
        fed.update_service_account,
    ),
    _route(
        "POST",
        "/v1/organizations/service_accounts/{service_account_id}/archive",
        "org_admin",
        fed.archive_service_account,
    ),
    _route(
        "GET",
        "/v1/organizations/service_accounts/{service_account_id}/workspaces",
        "org_admin",
        fed.list_account_workspaces,
    ),
    _route(
        "POST",
        "/v1/organizations/service_accounts/{service_account_id}/workspaces",
        "org_admin",
        fed.add_account_workspace,
    ),
    _route(
        "DELETE",
        "/v1/organizations/service_accounts/{service_account_id}/workspaces/{workspace_id}",
        "org_admin",
        fed.remove_account_workspace,
    ),
    _route("POST", "/v1/organizations/federation_issuers", "org_admin", fed.create_issuer),
    _route("GET", "/v1/organizations/federation_issuers", "org_admin", fed.list_issuers),
    _route(
        "GET", "/v1/organizations/federation_issuers/{issuer_id}", "org_admin", fed.retrieve_issuer
    ),
    _route(
        "POST", "/v1/organizations/federation_issuers/{issuer_id}", "org_admin", fed.update_issuer
    ),
    _route(
        "POST",
        "/v1/organizations/federation_issuers/{issuer_id}/archive",
        "org_admin",
        fed.archive_issuer,
    ),
    _route("POST", "/v1/organizations/federation_rules", "org_admin", fed.create_rule),
    _route("GET", "/v1/organizations/federation_rules", "org_admin", fed.list_rules),
    _route("GET", "/v1/organizations/federation_rules/{rule_id}", "org_admin", fed.retrieve_rule),
    _route("POST", "/v1/organizations/federation_rules/{rule_id}", "org_admin", fed.update_rule),
    _route(
        "POST",
        "/v1/organizations/federation_rules/{rule_id}/archive",
        "org_admin",
        fed.archive_rule,
    ),
    _route(
        "GET",
        "/v1/organizations/federation_rules/{rule_id}/workspaces",
        "org_admin",
        fed.list_rule_workspaces,
    ),
    _route(
        "POST",
        "/v1/organizations/federation_rules/{rule_id}/workspaces",
        "org_admin",
        fed.add_rule_workspace,
    ),
    _route(
        "DELETE",
        "/v1/organizations/federation_rules/{rule_id}/workspaces/{workspace_id}",
        "org_admin",
        fed.remove_rule_workspace,
    ),
    # Users, invites, limits, telemetry, webhooks, compliance, CMK, RBAC, Claude Code.
    *(_route(method, path, scope, handler) for method, path, scope, handler in org_api.ROUTE_SPECS),
)


def _find_route(method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
    for route in ROUTES:
        if route.method == method and (found := route.pattern.match(path)):
            return route, {k: unquote(v) for k, v in found.groupdict().items()}
    return None, {}


def _fault_error(fault: Fault, default_retry_after: float) -> ApiError:
    if fault.kind is FaultKind.RATE_LIMIT:
        seconds = fault.retry_after if fault.retry_after is not None else default_retry_after
        return ApiError(
            "rate_limit_error",
            "This request would exceed your organization's rate limit. Please try again later.",
            headers={"retry-after": _seconds(seconds)},
        )
    if fault.kind is FaultKind.OVERLOADED:
        return ApiError("overloaded_error", "Overloaded")
    return ApiError("api_error", "Internal server error")


def _seconds(value: float) -> str:
    # The real API sends whole seconds; fractions are allowed here so tests stay fast, and
    # the SDK accepts them.
    return str(int(value)) if value == int(value) else f"{value:g}"


# ---------------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Listen backlog: a burst of parallel test clients must not be refused.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], state: EmulatorState, control_token: str | None
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.control_token = control_token
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, EmulatorHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients resetting idle keep-alive connections is routine, not worth a traceback on
        # stderr (socketserver's default); anything else goes to the logger.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("connection from %s ended: %s", client_address, error)
        else:
            log.exception("emulator connection from %s failed", client_address)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Cut idle keep-alive connections, or their threads would keep serving after stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class EmulatorHandler(BaseHTTPRequestHandler):
    """One connection; serves requests on it until the client closes or goes idle."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    # ------------------------------------------------------------------------ dispatch

    def _handle(self, method: str) -> None:
        request_id = new_request_id()
        path, _, raw_query = self.path.partition("?")
        try:
            try:
                raw = self._read_body()
            except ApiError as exc:
                # The unread body is still on the socket: this connection cannot be reused.
                self.close_connection = True
                self._send_json(_error_response(exc, request_id), request_id)
                return
            if path.startswith(CONTROL_PREFIX):
                self._handle_control(method, path, raw, request_id)
            else:
                self._handle_api(method, path, raw_query, raw, request_id)
        except OSError:
            # The client went away mid-answer; nothing left to tell it.
            self.close_connection = True

    def _handle_control(self, method: str, path: str, raw: bytes, request_id: str) -> None:
        token = self.server.control_token
        try:
            if token is not None and not hmac.compare_digest(
                (self.headers.get(CONTROL_TOKEN_HEADER) or "").encode(), token.encode()
            ):
                raise ApiError("authentication_error", "invalid emulator control token")
            body = _parse_json(raw)
            response = handle_control(self.server.state, method, path, body)
        except ApiError as exc:
            response = _error_response(exc, request_id)
        self._send_json(response, request_id)

    def _handle_api(
        self, method: str, path: str, raw_query: str, raw: bytes, request_id: str
    ) -> None:
        state = self.server.state
        query = Query(parse_qs(raw_query, keep_blank_values=True))
        body: Any = None
        body_error: ApiError | None = None
        try:
            body = _parse_body(raw, self.headers.get("content-type") or "")
        except ApiError as exc:
            body, body_error = raw.decode("utf-8", "replace"), exc
        logged_body = _loggable(path, body)
        streaming = path == "/v1/messages" and isinstance(body, dict) and body.get("stream") is True
        credential = self._credential()
        known = state.key_for_secret(credential) if credential else None

        def record(status: int, fault: Fault | None = None) -> None:
            state.record_request(
                request_id=request_id,
                method=method,
                path=path,
                query={k: list(v) for k, v in query.values.items()},
                headers={
                    k.lower(): v
                    for k, v in self.headers.items()
                    if k.lower() not in _SECRET_HEADERS
                },
                body=logged_body,
                key_id=known.id if known else None,
                credential_hint=redact(credential) if credential else None,
                status=status,
                fault=fault.kind if fault else None,
                streamed=streaming and status == 200,
            )

        settings = state.settings
        if settings.latency_ms > 0:
            time.sleep(settings.latency_ms / 1000)
        # Stream faults are taken only once a stream is really about to be sent, so a
        # streaming request refused for a bad key or body does not use one up.
        fault = state.take_fault(path, streaming=False)
        if fault is not None and fault.kind is FaultKind.DROP_CONNECTION:
            record(0, fault)
            self._drop()
            return
        if fault is not None:
            response = _error_response(_fault_error(fault, settings.retry_after_s), request_id)
            record(response.status, fault)
            self._send_json(response, request_id)
            return

        if path == TOKEN_PATH:
            # After the fault knobs, so drills can make the token endpoint fail too.
            self._handle_token(method, body, body_error, request_id)
            return
        route, params = _find_route(method, path)
        result: Response | _StreamReply
        try:
            auth = self._authenticate(credential, route.scope if route else "any")
            if not self.headers.get("anthropic-version"):
                raise invalid_request("anthropic-version: header is required")
            if route is None:
                raise not_found("Not Found")
            if body_error is not None:
                raise body_error
            result = route.handler(_Call(state, query, body, params, auth, request_id))
        except ApiError as exc:
            result = _error_response(exc, request_id)
        except Exception:
            log.exception("emulator handler failed on %s %s", method, path)
            result = _error_response(ApiError("api_error", "Internal server error"), request_id)

        if isinstance(result, _StreamReply):
            fault = state.take_fault(path, streaming=True, only_streaming=True)
            record(200, fault)
            self._send_stream(result, request_id, fault, settings.stream_event_delay_ms)
        else:
            record(result.status)
            self._send_json(result, request_id)

    def _credential(self) -> str | None:
        api_key = self.headers.get("x-api-key")
        if api_key:
            return api_key.strip()
        authorization = self.headers.get("authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None

    def _authenticate(self, credential: str | None, scope: Scope) -> AuthResult:
        if not credential:
            raise ApiError("authentication_error", "x-api-key header is required")
        auth = self.server.state.authenticate(credential)
        if auth is None and is_oauth_token(credential):
            raise ApiError("authentication_error", "OAuth token has expired or is not valid")
        if auth is None or (scope == "inference" and auth.kind == "admin"):
            raise ApiError("authentication_error", "invalid x-api-key")
        if auth.kind == "oauth":
            self._check_oauth(auth, scope)
        elif scope == "admin" and auth.kind != "admin":
            raise ApiError(
                "permission_error",
                "This endpoint requires an Admin API key; a standard API key was provided.",
            )
        elif scope == "org_admin":
            what = "Admin API keys" if auth.kind == "admin" else "API keys"
            raise ApiError("permission_error", _NEEDS_ORG_ADMIN.format(what=what))
        elif scope == "admin_or_org" and auth.kind != "admin":
            raise ApiError(
                "permission_error",
                "This endpoint requires an Admin API key or an org:admin OAuth token; "
                "a standard API key was provided.",
            )
        return auth

    def _check_oauth(self, auth: AuthResult, scope: Scope) -> None:
        """An OAuth token: the beta flag, a live principal, the scope, its one workspace."""
        token = auth.token
        assert token is not None
        flags = {f.strip() for f in (self.headers.get("anthropic-beta") or "").split(",")}
        if OAUTH_BETA not in flags:
            # What the API answers a bearer token sent without the OAuth beta.
            raise ApiError(
                "authentication_error", "OAuth authentication is currently not supported."
            )
        registry = self.server.state.federation
        if token.service_account_id is not None:
            try:
                account = registry.service_account(token.service_account_id)
            except ApiError:
                account = None
            if account is None or account.archived_at is not None:
                raise ApiError("authentication_error", "The token's service account is archived")
        if scope == "admin":
            raise ApiError("permission_error", _NEEDS_ADMIN_KEY)
        if scope in ("org_admin", "admin_or_org"):
            if SCOPE_ORG_ADMIN not in token.scopes:
                raise ApiError(
                    "permission_error",
                    "This OAuth token lacks the org:admin scope this endpoint needs",
                )
            return
        if scope == "inference":
            if not token.scopes & _INFERENCE_SCOPES:
                raise ApiError(
                    "permission_error",
                    "This OAuth token has no workspace:inference or workspace:developer scope",
                )
            asked = self.headers.get("anthropic-workspace-id")
            if asked and asked != token.workspace_id:
                # Federation tokens are minted for one workspace; switching needs a new exchange.
                raise ApiError(
                    "permission_error",
                    "This token is scoped to another workspace; exchange a new token for "
                    f"workspace {asked}",
                )
            if token.workspace_id is not None:
                try:
                    workspace = registry.workspace(token.workspace_id)
                except ApiError:
                    workspace = None
                if workspace is None or workspace.archived_at is not None:
                    raise ApiError("permission_error", "The token's workspace is archived")

    def _handle_token(
        self, method: str, body: Any, body_error: ApiError | None, request_id: str
    ) -> None:
        """``POST /v1/oauth/token``: OAuth errors (RFC 6749 5.2), no anthropic-version needed."""
        state = self.server.state
        status, answer = 200, {}
        try:
            if method != "POST":
                raise GrantRefused("invalid_request", "use POST", status=405)
            flags = {f.strip() for f in (self.headers.get("anthropic-beta") or "").split(",")}
            if not {OAUTH_BETA, FEDERATION_BETA} <= flags:
                raise GrantRefused(
                    "invalid_request",
                    f"the jwt-bearer grant needs anthropic-beta: {OAUTH_BETA},{FEDERATION_BETA}",
                    status=400,
                )
            if body_error is not None:
                raise GrantRefused("invalid_request", "the body is not valid JSON", status=400)
            issued = exchange(
                parse_exchange_body(body),
                organization_id=state.organization_id,
                registry=state.federation,
                store=state.tokens,
                clock=state.now,
                default_audience=state.default_audience,
            )
            answer = issued.to_json()
        except GrantRefused as refused:
            status = refused.status
            description = (
                "The assertion was not accepted for this federation rule."
                if refused.status == 401
                else refused.detail or refused.reason
            )
            answer = {"error": refused.error, "error_description": description}
        except Exception:
            # Whatever an assertion holds, the answer is an OAuth error, never a dropped
            # connection: a crash would be a (noisy) oracle of its own.
            log.exception("token exchange failed")
            status = 500
            answer = {"error": "server_error", "error_description": "internal error"}
        state.record_request(
            request_id=request_id,
            method=method,
            path=TOKEN_PATH,
            query={},
            headers={
                k.lower(): v for k, v in self.headers.items() if k.lower() not in _SECRET_HEADERS
            },
            body=_loggable(TOKEN_PATH, body),
            key_id=None,
            credential_hint=None,
            status=status,
        )
        headers = {"cache-control": "no-store"}
        self._send_json(Response(status, answer, headers), request_id)

    # --------------------------------------------------------------------------- I/O

    def _read_body(self) -> bytes:
        length = self.headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise invalid_request("invalid content-length header") from None
            if size > MAX_BODY_BYTES:
                raise ApiError("request_too_large", "Request exceeds the maximum allowed size")
            return self.rfile.read(size) if size > 0 else b""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return self._read_chunked()
        return b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise invalid_request("malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise ApiError("request_too_large", "Request exceeds the maximum allowed size")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _head(self, status: int, headers: dict[str, str], request_id: str) -> list[str]:
        lines = [
            f"HTTP/1.1 {status} {reason_phrase(status)}",
            f"request-id: {request_id}",
            f"anthropic-organization-id: {self.server.state.organization_id}",
        ]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if self.close_connection:
            lines.append("connection: close")
        return lines

    def _send_json(self, response: Response, request_id: str) -> None:
        payload = dumps(response.body)
        lines = self._head(response.status, response.headers, request_id)
        lines.append("content-type: application/json")
        lines.append(f"content-length: {len(payload)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write, one segment: see the module docstring.
        self.wfile.write(head + payload)

    def _send_stream(
        self, reply: _StreamReply, request_id: str, fault: Fault | None, delay_ms: float
    ) -> None:
        events = reply.events
        if fault is None:
            # Billed once the answer is decided, so a usage report read right after the
            # stream ends already includes it.
            self.server.state.record_usage(reply.usage)
        else:
            events = events[:_EVENTS_BEFORE_STREAM_FAULT]
            if fault.kind is FaultKind.STREAM_ERROR:
                events = [
                    *events,
                    (
                        "error",
                        {
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": "Overloaded"},
                        },
                    ),
                ]
        lines = self._head(
            200,
            {
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "transfer-encoding": "chunked",
            },
            request_id,
        )
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        chunks = [_chunk(sse_frame(name, data)) for name, data in events]
        cut = fault is not None and fault.kind is FaultKind.STREAM_CUT
        ending = b"" if cut else b"0\r\n\r\n"
        hold = self.server.state.stream_hold()
        if hold is not None and chunks:
            self.wfile.write(head + chunks[0])
            head, chunks = b"", chunks[1:]
            hold.wait(STREAM_HOLD_LIMIT_S)
        if delay_ms <= 0:
            self.wfile.write(head + b"".join(chunks) + ending)
        else:
            self.wfile.write(head)
            for chunk in chunks:
                time.sleep(delay_ms / 1000)
                self.wfile.write(chunk)
            self.wfile.write(ending)
        if cut:
            self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _loggable(path: str, body: Any) -> Any:
    """The body as the request log keeps it: a token request's assertion is a credential."""
    if path == TOKEN_PATH and isinstance(body, dict) and "assertion" in body:
        return {**body, "assertion": "[redacted]"}
    return body


def _parse_body(raw: bytes, content_type: str) -> Any:
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        # RFC 6749 token requests are form-encoded; the SDK sends JSON. Accept both.
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in fields.items()}
    return _parse_json(raw)


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        # Strict: a lone surrogate escape is refused here (400, as the API does) instead of
        # crashing the handler later when the body is echoed or recorded as UTF-8.
        return strict_json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_request("There was an issue with your request body: invalid JSON") from None


def _error_response(exc: ApiError, request_id: str) -> Response:
    return Response(exc.status, error_body(exc.error_type, exc.message, request_id), exc.headers)


# -------------------------------------------------------------------------------- public API


class Emulator:
    """A loopback Anthropic API on a background thread.

    ``state`` exists before :meth:`start`, so keys can be seeded first. Use it as a context
    manager, or call :meth:`start` and :meth:`stop`. Point any client at :attr:`base_url`.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        state: EmulatorState | None = None,
        control_token: str | None = None,
    ) -> None:
        self.state = state if state is not None else EmulatorState()
        self._requested = (host, port)
        self._control_token = control_token
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------- lifecycle

    def bind(self) -> None:
        """Bind the socket without serving yet, so :attr:`base_url` is known early."""
        self._bind()

    def _bind(self) -> _HTTPServer:
        if self._server is None:
            host = self._requested[0]
            if not _is_loopback(host):
                log.warning(
                    "emulator bound to %s, reachable beyond this machine%s",
                    host,
                    "" if self._control_token else "; its control endpoint has no token",
                )
            self._server = _HTTPServer(self._requested, self.state, self._control_token)
        return self._server

    def start(self) -> Emulator:
        """Bind and serve on a daemon thread; returns self. ``port=0`` picks a free port."""
        if self._thread is not None:
            return self
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name=f"claudesec-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until :meth:`stop` is called from another thread."""
        server = self._bind()
        try:
            server.serve_forever(poll_interval=_POLL_INTERVAL_S)
        finally:
            server.close_connections()
            server.server_close()

    def stop(self) -> None:
        """Stop serving and cut open connections. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
            server.server_close()
        self._server, self._thread = None, None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------------- addresses

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: pass as ``base_url=`` to ``anthropic.Anthropic``."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def serve_forever(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    state: EmulatorState | None = None,
    control_token: str | None = None,
    on_ready: Callable[[Emulator], None] | None = None,
) -> None:
    """Run an emulator on the calling thread until interrupted (the CLI's entry point).

    ``on_ready`` runs once the socket is bound, with the emulator, so the caller can print
    :attr:`Emulator.base_url`, seed keys, or keep a handle to :meth:`Emulator.stop` it.
    """
    emulator = Emulator(host, port, state=state, control_token=control_token)
    emulator.bind()
    if on_ready is not None:
        on_ready(emulator)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
