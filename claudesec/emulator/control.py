"""The ``/_emulator/...`` control surface, and a small client for it.

Drills and tests that run the emulator in another process (``claudesec emulator serve``)
use this to mint keys, set fault knobs and read the request log. The client is stdlib-only
(``urllib``) so a drill can drive an emulator without importing the SDK.

Endpoints (JSON in, JSON out; errors use the API's error envelope):

=======  ============================  ==================================================
GET      /_emulator/health             ``{"status": "ok"}``
GET      /_emulator/state              knobs, pending faults, keys, request count
POST     /_emulator/reset              forget keys, faults, knobs, logs, usage
POST     /_emulator/settings           ``latency_ms``, ``stream_event_delay_ms``,
                                       ``retry_after_s``, ``open_mode``
GET      /_emulator/faults             pending faults
POST     /_emulator/faults             ``kind``, ``count``, ``path_prefix``, ``retry_after``
DELETE   /_emulator/faults             drop pending faults
GET      /_emulator/keys               every key (API and admin), no secrets
POST     /_emulator/keys               ``kind``, ``name``, ``status``, ``workspace_id``,
                                       ``created_at``, ``expires_at``; answers with the
                                       secret under ``key``, once
POST     /_emulator/keys/{id}          force ``status`` and/or ``name`` (no API rules)
GET      /_emulator/requests           the request log
DELETE   /_emulator/requests           clear it
GET      /_emulator/usage              the usage records behind the usage report
POST     /_emulator/clock              ``advance_s``: move the emulator's clock forward
POST     /_emulator/oauth_tokens       ``scopes``, ``lifetime_s``, ``workspace_id``: an
                                       OAuth token as ``ant auth login`` gives (default
                                       ``org:admin``); the secret under ``access_token``, once
GET      /_emulator/auth_events        the token exchange's authentication events
=======  ============================  ==================================================
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from claudesec.emulator.faults import Fault, FaultKind
from claudesec.emulator.keys import (
    KEY_KINDS,
    KEY_STATUSES,
    IssuedKey,
    KeyKind,
    KeyRecord,
    KeyStatus,
)
from claudesec.emulator.state import EmulatorState, Settings, UsageRecord

if TYPE_CHECKING:
    import urllib.request

from claudesec.emulator.wire import (
    Response,
    invalid_request,
    not_found,
    parse_rfc3339,
    rfc3339,
)

CONTROL_PREFIX = "/_emulator/"
CONTROL_TOKEN_HEADER = "x-emulator-token"  # noqa: S105 - a header name, not a secret


# ------------------------------------------------------------------------------ server side


def key_json(key: KeyRecord) -> dict[str, Any]:
    return {
        "id": key.id,
        "kind": key.kind,
        "name": key.name,
        "status": key.effective_status(),
        "workspace_id": key.workspace_id,
        "created_at": rfc3339(key.created_at),
        "expires_at": rfc3339(key.expires_at) if key.expires_at else None,
        "partial_key_hint": key.partial_key_hint,
    }


def settings_json(settings: Settings) -> dict[str, Any]:
    return {
        "latency_ms": settings.latency_ms,
        "stream_event_delay_ms": settings.stream_event_delay_ms,
        "retry_after_s": settings.retry_after_s,
        "open_mode": settings.open_mode,
    }


def fault_json(fault: Fault) -> dict[str, Any]:
    return {
        "kind": fault.kind.value,
        "path_prefix": fault.path_prefix,
        "retry_after": fault.retry_after,
    }


def usage_json(record: UsageRecord) -> dict[str, Any]:
    return {
        "at": rfc3339(record.at),
        "key_id": record.key_id,
        "workspace_id": record.workspace_id,
        "model": record.model,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
    }


def handle_control(state: EmulatorState, method: str, path: str, body: Any) -> Response:
    """Serve one control request; ``path`` starts with :data:`CONTROL_PREFIX`."""
    route = path[len(CONTROL_PREFIX) :].strip("/")
    args: dict[str, Any] = body if isinstance(body, dict) else {}
    if body is not None and not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object")
    match method, route.split("/"):
        case "GET", ["health"]:
            return Response(200, {"status": "ok"})
        case "GET", ["state"]:
            return Response(200, _state_json(state))
        case "POST", ["reset"]:
            state.reset()
            return Response(200, _state_json(state))
        case "POST", ["settings"]:
            try:
                settings = state.configure(
                    latency_ms=_number(args, "latency_ms"),
                    stream_event_delay_ms=_number(args, "stream_event_delay_ms"),
                    retry_after_s=_number(args, "retry_after_s"),
                    open_mode=_bool(args, "open_mode"),
                )
            except ValueError as exc:
                raise invalid_request(str(exc)) from None
            return Response(200, settings_json(settings))
        case "GET", ["faults"]:
            return Response(200, {"data": [fault_json(f) for f in state.pending_faults()]})
        case "POST", ["faults"]:
            _inject(state, args)
            return Response(200, {"data": [fault_json(f) for f in state.pending_faults()]})
        case "DELETE", ["faults"]:
            state.clear_faults()
            return Response(200, {"data": []})
        case "GET", ["keys"]:
            return Response(200, {"data": [key_json(k) for k in state.list_keys()]})
        case "POST", ["keys"]:
            return Response(200, _add_key(state, args))
        case "POST", ["keys", key_id]:
            return Response(200, _force_key(state, key_id, args))
        case "GET", ["requests"]:
            return Response(200, {"data": [r.to_json() for r in state.requests()]})
        case "DELETE", ["requests"]:
            state.clear_requests()
            return Response(200, {"data": []})
        case "GET", ["usage"]:
            return Response(200, {"data": [usage_json(u) for u in state.usage()]})
        case "POST", ["clock"]:
            seconds = _number(args, "advance_s")
            if seconds is None or seconds < 0:
                raise invalid_request("advance_s: a non-negative number is required")
            return Response(200, {"now": rfc3339(state.advance_clock(seconds))})
        case "POST", ["oauth_tokens"]:
            return Response(200, _add_oauth_token(state, args))
        case "GET", ["auth_events"]:
            return Response(200, {"data": [e.to_json() for e in state.tokens.events()]})
    raise not_found(f"no control endpoint {method} {path}")


def _state_json(state: EmulatorState) -> dict[str, Any]:
    return {
        "organization_id": state.organization_id,
        "default_workspace_id": state.default_workspace_id,
        "settings": settings_json(state.settings),
        "faults": [fault_json(f) for f in state.pending_faults()],
        "keys": [key_json(k) for k in state.list_keys()],
        "requests": len(state.requests()),
    }


def _number(args: dict[str, Any], name: str) -> float | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_request(f"{name}: Input should be a number")
    return float(value)


def _bool(args: dict[str, Any], name: str) -> bool | None:
    value = args.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid_request(f"{name}: Input should be a boolean")
    return value


def _string(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_request(f"{name}: Input should be a string")
    return value


def _inject(state: EmulatorState, args: dict[str, Any]) -> None:
    kind = _string(args, "kind")
    if kind not in {k.value for k in FaultKind}:
        raise invalid_request(f"kind: Input should be one of {[k.value for k in FaultKind]}")
    count = args.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int):
        raise invalid_request("count: Input should be an integer")
    try:
        state.inject_fault(
            FaultKind(kind),
            count,
            path_prefix=_string(args, "path_prefix") or "/v1/",
            retry_after=_number(args, "retry_after"),
        )
    except ValueError as exc:
        raise invalid_request(str(exc)) from None


def _moment(args: dict[str, Any], name: str) -> datetime | None:
    text = _string(args, name)
    return parse_rfc3339(text, field_name=name) if text else None


def _add_key(state: EmulatorState, args: dict[str, Any]) -> dict[str, Any]:
    kind = _string(args, "kind") or "api"
    status = _string(args, "status") or "active"
    if kind not in KEY_KINDS:
        raise invalid_request(f"kind: Input should be one of {list(KEY_KINDS)}")
    if status not in KEY_STATUSES:
        raise invalid_request(f"status: Input should be one of {list(KEY_STATUSES)}")
    issued = state.add_key(
        kind,
        name=_string(args, "name"),
        status=status,
        workspace_id=_string(args, "workspace_id"),
        created_at=_moment(args, "created_at"),
        expires_at=_moment(args, "expires_at"),
    )
    return {**key_json(state.get_key(issued.id)), "key": issued.secret}


def _add_oauth_token(state: EmulatorState, args: dict[str, Any]) -> dict[str, Any]:
    scopes = args.get("scopes", ["org:admin"])
    if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
        raise invalid_request("scopes: Input should be a list of strings")
    lifetime = args.get("lifetime_s", 3600)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 1:
        raise invalid_request("lifetime_s: Input should be a positive integer")
    issued = state.add_oauth_token(
        scopes=scopes, lifetime_s=lifetime, workspace_id=_string(args, "workspace_id")
    )
    return {
        "id": issued.record.id,
        "access_token": issued.access_token,
        "expires_in": issued.expires_in,
        "scope": " ".join(sorted(issued.record.scopes)),
    }


def _force_key(state: EmulatorState, key_id: str, args: dict[str, Any]) -> dict[str, Any]:
    status = _string(args, "status")
    name = _string(args, "name")
    if status is not None and status not in KEY_STATUSES:
        raise invalid_request(f"status: Input should be one of {list(KEY_STATUSES)}")
    try:
        if status is not None:
            state.set_key_status(key_id, status)
        if name is not None:
            state.update_key(key_id, name=name)
        return key_json(state.get_key(key_id))
    except KeyError:
        raise not_found(f"no key {key_id}") from None
    except ValueError as exc:
        raise invalid_request(str(exc)) from None


# ------------------------------------------------------------------------------ client side


class EmulatorControlError(RuntimeError):
    """The control endpoint refused a call or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EmulatorControl:
    """Drive a running emulator (possibly in another process) over its control endpoint."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        # Imported here: urllib.request costs ~20 ms and only a client needs it.
        import urllib.request

        # An explicit empty ProxyHandler: an HTTP(S)_PROXY in the environment must never
        # receive loopback control calls.
        self._opener: urllib.request.OpenerDirector = urllib.request.build_opener(
            urllib.request.ProxyHandler({})
        )

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the URL is the emulator's own base URL
            f"{self.base_url}{CONTROL_PREFIX}{route}", data=data, method=method
        )
        request.add_header("content-type", "application/json")
        if self._token is not None:
            request.add_header(CONTROL_TOKEN_HEADER, self._token)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            raise EmulatorControlError(f"{method} {route}: {message}", status=exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise EmulatorControlError(f"{method} {route}: emulator unreachable ({exc})") from None

    def health(self) -> bool:
        try:
            return bool(self._call("GET", "health").get("status") == "ok")
        except EmulatorControlError:
            return False

    def state(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "state"))

    def reset(self) -> None:
        self._call("POST", "reset")

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        stream_event_delay_ms: float | None = None,
        retry_after_s: float | None = None,
        open_mode: bool | None = None,
    ) -> dict[str, Any]:
        body = {
            "latency_ms": latency_ms,
            "stream_event_delay_ms": stream_event_delay_ms,
            "retry_after_s": retry_after_s,
            "open_mode": open_mode,
        }
        return cast(dict[str, Any], self._call("POST", "settings", body))

    def inject_fault(
        self,
        kind: FaultKind | str,
        count: int = 1,
        *,
        path_prefix: str = "/v1/",
        retry_after: float | None = None,
    ) -> int:
        """Queue ``count`` faults; returns how many are now pending."""
        body = {
            "kind": FaultKind(kind).value,
            "count": count,
            "path_prefix": path_prefix,
            "retry_after": retry_after,
        }
        return len(self._call("POST", "faults", body)["data"])

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def add_key(
        self,
        kind: KeyKind = "api",
        *,
        name: str | None = None,
        status: KeyStatus = "active",
        workspace_id: str | None = None,
        created_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        body = {
            "kind": kind,
            "name": name,
            "status": status,
            "workspace_id": workspace_id,
            "created_at": rfc3339(created_at) if created_at else None,
            "expires_at": rfc3339(expires_at) if expires_at else None,
        }
        answer = self._call("POST", "keys", body)
        return IssuedKey(answer["id"], answer["key"])

    def set_key_status(self, key_id: str, status: KeyStatus) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("POST", f"keys/{key_id}", {"status": status}))

    def list_keys(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "keys")["data"])

    def requests(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "requests")["data"])

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def usage(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "usage")["data"])

    def advance_clock(self, seconds: float) -> str:
        """Move the emulator's clock forward; returns its new time (RFC 3339)."""
        return cast(str, self._call("POST", "clock", {"advance_s": seconds})["now"])

    def add_oauth_token(
        self,
        scopes: list[str] | None = None,
        *,
        lifetime_s: int = 3600,
        workspace_id: str | None = None,
    ) -> str:
        """An OAuth access token (``org:admin`` by default); the secret is returned once."""
        body = {
            "scopes": scopes or ["org:admin"],
            "lifetime_s": lifetime_s,
            "workspace_id": workspace_id,
        }
        return cast(str, self._call("POST", "oauth_tokens", body)["access_token"])

    def auth_events(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "auth_events")["data"])


__all__ = [
    "CONTROL_PREFIX",
    "CONTROL_TOKEN_HEADER",
    "EmulatorControl",
    "EmulatorControlError",
    "handle_control",
]
