"""``AuditedAnthropic`` / ``AsyncAuditedAnthropic``: the SDK clients with the audit pipeline as
their innermost middleware.

The SDK runs its client ``middleware=`` chain once per HTTP attempt, inside its retry loop, for
every resource (messages, streaming, count_tokens, batches, models, beta), so one middleware
covers them all without re-implementing any of them. Ours goes last in the chain, next to the
wire: whatever the caller's own middleware does to a request, ours judges exactly what would
be sent, and a denial raises before the request reaches the HTTP client.

    from claudesec import AuditedAnthropic

    client = AuditedAnthropic(user="alice")             # or identity_token=<OIDC JWT>
    client.messages.create(model=..., max_tokens=..., messages=[...])

Everything else (``api_key``, ``base_url``, ``http_client``, ``max_retries``, ``timeout``,
the caller's own ``middleware``, ``credentials``) is passed to the SDK unchanged. With the
SDK's workload identity federation (``credentials=WorkloadIdentityCredentials(...)``, or the
``ANTHROPIC_FEDERATION_RULE_ID`` / ``ANTHROPIC_ORGANIZATION_ID`` /
``ANTHROPIC_IDENTITY_TOKEN_FILE`` chain) no key is held at all, and each record's
``upstream`` names the workload (issuer, subject, rule...) instead of a key hint
(:mod:`claudesec.guard.upstream`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

import anthropic
import httpx2

from claudesec.guard.pipeline import (
    Admission,
    ApiRequest,
    AuditPipeline,
    CallDenied,
    Caller,
    Outcome,
    SseMonitor,
    finalize_on_collect,
)
from claudesec.guard.upstream import UpstreamCredential, describe_sdk_client

if TYPE_CHECKING:
    from anthropic import APIResponse, AsyncAPIResponse
    from anthropic._middleware import AsyncCallNext, CallNext, MiddlewareInput
    from anthropic._request import APIRequest

    from claudesec.config import Config, PolicyConfig
    from claudesec.guard.pipeline import RecordSink
    from claudesec.guard.policy import Policy

__all__ = [
    "AsyncAuditedAnthropic",
    "AuditMiddleware",
    "AuditedAnthropic",
    "CallDenied",
]

_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_R = TypeVar("_R", "APIResponse[Any]", "AsyncAPIResponse[Any]")


@dataclass(frozen=True, slots=True)
class _Binding:
    """A pipeline and the caller it acts for; shared by a client and its copies."""

    pipeline: AuditPipeline
    caller: Caller
    owns_pipeline: bool = False


def _api_request(
    request: APIRequest, upstream: Callable[[], UpstreamCredential] | None = None
) -> ApiRequest:
    options = request.options
    body: Any = request.json
    extra = options.extra_json
    if extra and isinstance(body, dict):
        # The SDK merges extra_body before the chain runs; should it ever not, judge (and
        # send) the merged body rather than let extra_body slip past DLP.
        body = {**body, **extra}
    opaque = options.files is not None or options.content is not None
    url = request.url
    headers = request.headers
    params = request.query_params
    return ApiRequest(
        method=request.method.upper(),
        path=urlsplit(url).path or url,
        body=body,
        opaque=opaque,
        stream=request.stream,
        attempt=request.retries_taken,
        upstream=upstream().fields() if upstream is not None else {},
        headers=_caller_headers(headers) if headers else (),
        query=_query_fields(url, params),
    )


# Headers that carry the credential: the SDK adds its own after the chain; one a caller puts
# in ``extra_headers`` is what the call authenticates with, not data (and never recorded).
_CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization"})


def _caller_headers(headers: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The per-call headers (``workspace_id``, ``user_profile_id``, ``extra_headers``) as
    DLP sees them; the SDK's ``Omit`` markers and the credential left out."""
    return tuple(
        (name, value)
        for name, value in headers.items()
        if isinstance(value, str) and name.lower() not in _CREDENTIAL_HEADERS
    )


def _query_fields(url: str, params: Any) -> tuple[tuple[str, str], ...]:
    """Query parameters from ``extra_query`` and the URL itself, flattened to strings."""
    fields: list[tuple[str, str]] = []
    if "?" in url:
        fields.extend(parse_qsl(urlsplit(url).query, keep_blank_values=False))
    if isinstance(params, Mapping):
        for name, value in params.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            fields.extend((str(name), item) for item in values if isinstance(item, str))
    return tuple(fields)


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
        return "connection"
    return "error." + type(exc).__name__


def _is_sse(request: APIRequest, http: httpx2.Response) -> bool:
    kind = http.headers.get("content-type", "")
    return request.stream and kind.startswith("text/event-stream")


def _headers(http: httpx2.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in http.headers.multi_items() if k.lower() not in _DROPPED_HEADERS]


def _with_body(http: httpx2.Response, content: bytes) -> httpx2.Response:
    return httpx2.Response(
        http.status_code,
        headers=_headers(http),
        content=content,
        request=http.request,
        extensions=http.extensions,
    )


def _with_stream(
    http: httpx2.Response, stream: httpx2.SyncByteStream | httpx2.AsyncByteStream
) -> httpx2.Response:
    # The new response serves already-decoded bytes, so it must not claim an encoding.
    return httpx2.Response(
        http.status_code,
        headers=_headers(http),
        stream=stream,
        request=http.request,
        extensions=http.extensions,
    )


class _MonitoredStream(httpx2.SyncByteStream):
    """Passes an SSE body through its monitor chunk by chunk, without buffering it."""

    def __init__(self, source: httpx2.Response, monitor: SseMonitor) -> None:
        self._source = source
        self._monitor = monitor

    def __iter__(self) -> Iterator[bytes]:
        monitor = self._monitor
        try:
            for chunk in self._source.iter_bytes():
                yield from monitor.feed_parts(chunk)
        except GeneratorExit:
            monitor.finish_quietly("abandoned")
            raise
        except Exception as exc:
            _finish_failed(monitor, exc)
            raise
        monitor.finish("complete")

    def close(self) -> None:
        self._source.close()
        self._monitor.finish_quietly("abandoned")


class _AsyncMonitoredStream(httpx2.AsyncByteStream):
    def __init__(self, source: httpx2.Response, monitor: SseMonitor) -> None:
        self._source = source
        self._monitor = monitor

    async def __aiter__(self) -> AsyncIterator[bytes]:
        monitor = self._monitor
        try:
            async for chunk in self._source.aiter_bytes():
                for out in monitor.feed_parts(chunk):
                    yield out
        except GeneratorExit:
            monitor.finish_quietly("abandoned")
            raise
        except Exception as exc:
            _finish_failed(monitor, exc)
            raise
        await monitor.finish_async("complete")

    async def aclose(self) -> None:
        await self._source.aclose()
        self._monitor.finish_quietly("abandoned")


def _finish_failed(monitor: SseMonitor, exc: BaseException) -> None:
    # The caller gets the stream's own error; a failed audit write is logged beside it.
    try:
        monitor.finish("failed", _error_code(exc))
    except Exception as audit_exc:
        exc.add_note(f"claudesec: {audit_exc}")


class AuditMiddleware(anthropic.Middleware):
    """The SDK middleware adapter over :class:`AuditPipeline` (sync and async)."""

    def __init__(self, binding: _Binding) -> None:
        self.binding = binding
        # Set by the client once the SDK has resolved its credential (see _Audited).
        self.describe: Callable[[], UpstreamCredential] | None = None

    def _admit(self, request: APIRequest) -> tuple[Admission, APIRequest]:
        api = _api_request(request, self.describe)
        admission = self.binding.pipeline.admit(self.binding.caller, api)
        return admission, _as_sent(request, api, admission)

    async def _admit_async(self, request: APIRequest) -> tuple[Admission, APIRequest]:
        api = _api_request(request, self.describe)
        admission = await self.binding.pipeline.admit_async(self.binding.caller, api)
        return admission, _as_sent(request, api, admission)

    def handle(self, request: APIRequest, call_next: CallNext) -> APIResponse[Any]:
        admission, request = self._admit(request)
        pipeline = self.binding.pipeline
        try:
            response = call_next(request)
        except Exception as exc:
            pipeline.finish(self._sent_with(admission), Outcome(error=_error_code(exc)))
            raise
        return self._respond(self._sent_with(admission), request, response, _MonitoredStream)

    async def handle_async(
        self, request: APIRequest, call_next: AsyncCallNext
    ) -> AsyncAPIResponse[Any]:
        admission, request = await self._admit_async(request)
        pipeline = self.binding.pipeline
        try:
            response = await call_next(request)
        except Exception as exc:
            await pipeline.finish_async(self._sent_with(admission), Outcome(error=_error_code(exc)))
            raise
        admission = self._sent_with(admission)
        http = response.http_response
        if http.status_code < 400 and _is_sse(request, http):
            return self._respond(admission, request, response, _AsyncMonitoredStream)
        outcome, rewritten = self._plain_outcome(admission, response)
        # Written before the response is handed over: fail closed withholds it.
        await pipeline.finish_async(admission, outcome)
        if rewritten is not None:
            response.http_response = _with_body(http, rewritten)
        return response

    def _sent_with(self, admission: Admission) -> Admission:
        """The admission with the credential as it went out: a federated client exchanges its
        identity token only once the request is on its way, so its first admission record
        names the rule but not yet the workload's subject."""
        if self.describe is None:
            return admission
        upstream = self.describe().fields()
        if upstream == admission.request.upstream:
            return admission
        return replace(admission, request=replace(admission.request, upstream=upstream))

    def _respond(
        self, admission: Admission, request: APIRequest, response: _R, stream_type: Any
    ) -> _R:
        """What sync and async share once the response head is in: a stream is handed to a
        monitor that records it when it ends; anything else is finished now."""
        http = response.http_response
        status = http.status_code
        request_id = http.headers.get("request-id", "")
        if status < 400 and _is_sse(request, http):
            monitor = self.binding.pipeline.stream_monitor(
                admission, status=status, request_id=request_id
            )
            stream = stream_type(http, monitor)
            finalize_on_collect(stream, monitor)
            response.http_response = _with_stream(http, stream)
            return response
        self._finish_plain(admission, response, status, request_id)
        return response

    def _finish_plain(
        self,
        admission: Admission,
        response: APIResponse[Any] | AsyncAPIResponse[Any],
        status: int,
        request_id: str,
    ) -> None:
        outcome, rewritten = self._plain_outcome(admission, response)
        if rewritten is not None:
            response.http_response = _with_body(response.http_response, rewritten)
        self.binding.pipeline.finish(admission, outcome)

    def _plain_outcome(
        self, admission: Admission, response: APIResponse[Any] | AsyncAPIResponse[Any]
    ) -> tuple[Outcome, bytes | None]:
        http = response.http_response
        status = http.status_code
        body: bytes | None
        try:
            body = http.content
        except httpx2.ResponseNotRead:
            body = None  # `.with_streaming_response` on a JSON endpoint: usage not read here
        return self.binding.pipeline.response_outcome(
            admission, status, http.headers.get("request-id", ""), body if status < 400 else None
        )


def _as_sent(request: APIRequest, api: ApiRequest, admission: Admission) -> APIRequest:
    return request if admission.body is api.body else request.copy(body=admission.body)


def _binding(
    binding: _Binding | None,
    *,
    user: str | None,
    identity_token: str | None,
    role: str | None,
    policy: Policy | PolicyConfig | None,
    claudesec_config: Config | None,
    store: RecordSink | None,
    pipeline: AuditPipeline | None,
    environment: str | None,
) -> _Binding:
    if binding is not None:
        return binding
    owns = pipeline is None
    if pipeline is None:
        pipeline = AuditPipeline.from_config(
            claudesec_config, store=store, policy=policy, environment=environment
        )
    return _Binding(pipeline, Caller(user, identity_token, role), owns_pipeline=owns)


_CREDENTIAL_ARGS = ("api_key", "auth_token", "credentials", "config", "profile")


def _with_sdk_chain(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the credential the SDK's chain resolves, when the caller gave none.

    The SDK runs its credential chain (profiles, the ``ANTHROPIC_FEDERATION_RULE_ID`` /
    ``ANTHROPIC_ORGANIZATION_ID`` / ``ANTHROPIC_IDENTITY_TOKEN_FILE`` federation variables)
    only for ``anthropic.Anthropic`` itself, never for a subclass, so without this an audited
    client in a federated workload would find no credential. It runs the SDK's own
    ``default_credentials``, with the same precedence: an explicit argument, then
    ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_AUTH_TOKEN``, then the chain.
    """
    import os

    if any(kwargs.get(name) is not None for name in _CREDENTIAL_ARGS):
        return kwargs
    if os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return kwargs
    from anthropic.lib.credentials import default_credentials

    explicit = kwargs.get("base_url") or os.environ.get("ANTHROPIC_BASE_URL")
    result = default_credentials(base_url=str(explicit or "https://api.anthropic.com"))
    if result is None:
        return kwargs
    found = {**kwargs, "credentials": result.provider}
    if result.extra_headers:
        found["default_headers"] = {**result.extra_headers, **(kwargs.get("default_headers") or {})}
    if not explicit and result.base_url:
        found["base_url"] = result.base_url
    return found


def _chain(binding: _Binding, middleware: Sequence[MiddlewareInput] | None) -> list[Any]:
    # Copies pass the parent's middleware back in: drop its audit middleware, add ours last.
    others = [m for m in middleware or () if not isinstance(m, AuditMiddleware)]
    return [*others, AuditMiddleware(binding)]


class _Audited:
    """What the sync and async clients share: their construction and the caller binding.

    Placed before the SDK class in the MRO, so ``super().__init__`` is the SDK's.
    """

    _claudesec: _Binding

    def __init__(
        self,
        *,
        user: str | None = None,
        identity_token: str | None = None,
        role: str | None = None,
        policy: Policy | PolicyConfig | None = None,
        claudesec_config: Config | None = None,
        store: RecordSink | None = None,
        pipeline: AuditPipeline | None = None,
        environment: str | None = None,
        middleware: Sequence[MiddlewareInput] | None = None,
        _claudesec_binding: _Binding | None = None,
        **kwargs: Any,
    ) -> None:
        binding = _binding(
            _claudesec_binding,
            user=user,
            identity_token=identity_token,
            role=role,
            policy=policy,
            claudesec_config=claudesec_config,
            store=store,
            pipeline=pipeline,
            environment=environment,
        )
        chain = _chain(binding, middleware)
        try:
            kwargs = _with_sdk_chain(kwargs)
            super().__init__(middleware=chain, **kwargs)  # type: ignore[call-arg]
            chain[-1].describe = describe_sdk_client(self)
        except BaseException:
            if binding.owns_pipeline:
                binding.pipeline.close()
            raise
        self._claudesec = binding

    @property
    def audit_pipeline(self) -> AuditPipeline:
        return self._claudesec.pipeline

    def copy(self, *args: Any, **kwargs: Any) -> Self:
        """The SDK's ``copy``/``with_options``, keeping this client's caller and pipeline."""
        extra = dict(kwargs.pop("_extra_kwargs", None) or {})
        shared = _Binding(self._claudesec.pipeline, self._claudesec.caller)
        extra.setdefault("_claudesec_binding", shared)
        sdk: Any = self
        if (
            not any(kwargs.get(name) is not None for name in _CREDENTIAL_ARGS)
            and sdk.credentials is not None
            and sdk.api_key is None
            and sdk.auth_token is None
            and "credentials" not in extra
        ):
            # The SDK hands its credentials provider (and its token cache) to copies of the
            # base class only; a copy of ours would come out with no credential at all. Same
            # deployment: share the cache, so a copy does not exchange (and burn a single-use
            # identity token) again.
            extra["credentials"] = sdk.credentials
            if kwargs.get("base_url") in (None, sdk.base_url):
                extra["_token_cache"] = getattr(sdk, "_token_cache", None)
        return super().copy(*args, _extra_kwargs=extra, **kwargs)  # type: ignore[misc, no-any-return]

    with_options = copy

    def for_user(
        self, user: str | None = None, *, identity_token: str | None = None, role: str | None = None
    ) -> Self:
        """A client for another caller that shares this one's pipeline and connection pool."""
        binding = _Binding(self._claudesec.pipeline, Caller(user, identity_token, role))
        return self.copy(_extra_kwargs={"_claudesec_binding": binding})


class AuditedAnthropic(_Audited, anthropic.Anthropic):
    """``anthropic.Anthropic`` that verifies the caller, enforces the role's policy, applies
    DLP and records every attempt. Denials raise :class:`CallDenied` before anything is sent.

    ``user=`` (trusted back-ends) or ``identity_token=`` (an OIDC JWT) says who calls;
    ``role=`` asks for one of their roles. ``policy=``, ``claudesec_config=`` and ``store=``
    override the configuration found from the current directory; ``pipeline=`` shares one
    pipeline (store, budgets, detectors) between clients. Every other argument is the SDK's.
    """

    def close(self) -> None:
        super().close()
        if self._claudesec.owns_pipeline:
            self._claudesec.pipeline.close()


class AsyncAuditedAnthropic(_Audited, anthropic.AsyncAnthropic):
    """The async twin of :class:`AuditedAnthropic` (same arguments, same guarantees).

    The admission and outcome records are committed off the event loop (a worker thread, or
    the queued writer's group commit when ``store=`` is a
    :class:`~claudesec.audit.writer.BackgroundWriter`) and awaited: a commit that stalls
    (a WAL checkpoint, a locked store) delays this call only, and a failed one still refuses
    the call or withholds its answer.
    """

    async def close(self) -> None:
        await super().close()
        if self._claudesec.owns_pipeline:
            self._claudesec.pipeline.close()
