"""LangChain: ``ChatAnthropic`` runs through the same identity, policy, DLP and audit store.

Two ways in, for two situations (``pip install claudesec[langchain]``):

``audited_chat_anthropic(user=..., model=..., **chat_kwargs)`` — preferred. A ``ChatAnthropic``
whose Anthropic clients carry the audit middleware, so enforcement happens on the request
that is really sent, after LangChain has built it: a denied model, a token cap or a DLP block
raises :class:`~claudesec.guard.pipeline.CallDenied` before any byte leaves, a ``redact`` role
sends the redacted body, and every HTTP attempt (each SDK retry, streams included) is one
record with tokens, latency and decision, tagged with the LangChain run id.

``AuditCallbackHandler(user=...)`` — for a ``ChatAnthropic`` you cannot build yourself (made
inside a framework). A callback sees what LangChain was asked, not the wire, and cannot change
it, so it does only what it can do reliably: it sets ``raise_error = True`` and judges the run
in ``on_chat_model_start``, where raising stops LangChain before it calls the model; a role
with ``dlp = "redact"`` is refused rather than let through unredacted (a callback cannot
rewrite the request); the run is recorded once, from ``on_llm_end`` / ``on_llm_error``. On a
model made by ``audited_chat_anthropic`` the handler stands aside: the wire already enforces
and records, and a second record would count the tokens twice.

Neither records prompt text: records hold the keyed prompt hash, DLP kinds and counts.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import anthropic
from langchain_anthropic import ChatAnthropic
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from pydantic import PrivateAttr

from claudesec.guard.client import AuditMiddleware, _Binding
from claudesec.guard.pipeline import (
    Admission,
    ApiRequest,
    AuditPipeline,
    CallDenied,
    Caller,
    Outcome,
)

if TYPE_CHECKING:
    from anthropic._request import APIRequest
    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models.base import LangSmithParams
    from langchain_core.outputs import ChatGenerationChunk, ChatResult, LLMResult

    from claudesec.config import Config, PolicyConfig
    from claudesec.guard.pipeline import RecordSink
    from claudesec.guard.policy import Policy

__all__ = ["AuditCallbackHandler", "AuditedChatAnthropic", "CallDenied", "audited_chat_anthropic"]

# Set in a run's metadata by AuditedChatAnthropic, so the callback handler knows the wire is
# already audited.
ENFORCED_FLAG = "claudesec_enforced"
_MESSAGES_PATH = "/v1/messages"


@dataclass(frozen=True, slots=True)
class _Run:
    run_id: UUID
    parent_run_id: UUID | None

    def extra(self) -> dict[str, str]:
        extra = {"langchain_run_id": str(self.run_id)}
        if self.parent_run_id is not None:
            extra["langchain_parent_run_id"] = str(self.parent_run_id)
        return extra


# The LangChain run an HTTP attempt belongs to. A context variable, because the SDK calls our
# middleware deep below the model's _generate/_stream with no way to pass it along; it follows
# the call into the SDK on the same thread or asyncio task.
_CURRENT_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar(
    "claudesec_langchain_run", default=None
)


def _run_of(run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None) -> _Run:
    if run_manager is None:
        return _Run(UUID(int=0), None)
    return _Run(run_manager.run_id, run_manager.parent_run_id)


class _RunAuditMiddleware(AuditMiddleware):
    """The audit middleware, adding the current LangChain run to each admitted attempt."""

    def _admit(self, request: APIRequest) -> tuple[Admission, APIRequest]:
        admission, request = super()._admit(request)
        return _with_run(admission), request

    async def _admit_async(self, request: APIRequest) -> tuple[Admission, APIRequest]:
        admission, request = await super()._admit_async(request)
        return _with_run(admission), request


def _with_run(admission: Admission) -> Admission:
    run = _CURRENT_RUN.get()
    if run is None:
        return admission
    return replace(admission, extra={**admission.extra, **run.extra()})


def _pipeline_for(
    pipeline: AuditPipeline | None,
    *,
    policy: Policy | PolicyConfig | None,
    claudesec_config: Config | None,
    store: RecordSink | None,
    environment: str | None,
) -> tuple[AuditPipeline, bool]:
    if pipeline is not None:
        return pipeline, False
    built = AuditPipeline.from_config(
        claudesec_config, store=store, policy=policy, environment=environment
    )
    return built, True


class AuditedChatAnthropic(ChatAnthropic):
    """``ChatAnthropic`` whose sync and async Anthropic clients carry the audit middleware.

    Build it with :func:`audited_chat_anthropic`. Everything LangChain does (invoke, stream,
    batch, tools, structured output, ``get_num_tokens_from_messages``) goes through clients
    made here, so none of it can skip the pipeline.
    """

    _claudesec: _Binding | None = PrivateAttr(default=None)

    def bind_audit(self, binding: _Binding) -> None:
        """Attach the pipeline and caller (before the first call builds the clients)."""
        if "_client" in self.__dict__ or "_async_client" in self.__dict__:
            raise RuntimeError("bind_audit must come before the model's first call")
        self._claudesec = binding

    @property
    def audit_pipeline(self) -> AuditPipeline:
        return self._binding().pipeline

    def _binding(self) -> _Binding:
        if self._claudesec is None:
            # Fail closed: an unbound model would otherwise call Claude unaudited.
            raise RuntimeError(
                "AuditedChatAnthropic has no audit pipeline: build it with "
                "claudesec.integrations.langchain.audited_chat_anthropic()"
            )
        return self._claudesec

    # The parent's own client factory (its proxy, timeout and shared connection pool), called
    # directly so the parent's cache never holds an unaudited client.

    @cached_property
    def _client(self) -> anthropic.Client:
        factory = cast("cached_property[anthropic.Client]", ChatAnthropic.__dict__["_client"])
        base = factory.func(self)
        return base.with_options(
            middleware=[*base.middleware, _RunAuditMiddleware(self._binding())]
        )

    @cached_property
    def _async_client(self) -> anthropic.AsyncClient:
        factory = cast(
            "cached_property[anthropic.AsyncClient]", ChatAnthropic.__dict__["_async_client"]
        )
        base = factory.func(self)
        return base.with_options(
            middleware=[*base.middleware, _RunAuditMiddleware(self._binding())]
        )

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        cast(dict[str, Any], params)[ENFORCED_FLAG] = True
        return params

    # The run id reaches the middleware through _CURRENT_RUN, set around each model call.

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        token = _CURRENT_RUN.set(_run_of(run_manager))
        try:
            return super()._generate(messages, stop, run_manager, **kwargs)
        finally:
            _CURRENT_RUN.reset(token)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        token = _CURRENT_RUN.set(_run_of(run_manager))
        try:
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        finally:
            _CURRENT_RUN.reset(token)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # Set only while the inner generator runs, so the value never leaks into the
        # consumer's code between chunks.
        inner = super()._stream(messages, stop, run_manager, **kwargs)
        run = _run_of(run_manager)
        try:
            while True:
                token = _CURRENT_RUN.set(run)
                try:
                    chunk = next(inner)
                except StopIteration:
                    return
                finally:
                    _CURRENT_RUN.reset(token)
                yield chunk
        finally:
            close = getattr(inner, "close", None)
            if callable(close):
                close()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        inner = super()._astream(messages, stop, run_manager, **kwargs)
        run = _run_of(run_manager)
        try:
            while True:
                token = _CURRENT_RUN.set(run)
                try:
                    chunk = await anext(inner)
                except StopAsyncIteration:
                    return
                finally:
                    _CURRENT_RUN.reset(token)
                yield chunk
        finally:
            aclose = getattr(inner, "aclose", None)
            if callable(aclose):
                await aclose()


def audited_chat_anthropic(
    *,
    user: str | None = None,
    identity_token: str | None = None,
    role: str | None = None,
    pipeline: AuditPipeline | None = None,
    policy: Policy | PolicyConfig | None = None,
    claudesec_config: Config | None = None,
    store: RecordSink | None = None,
    environment: str | None = None,
    **chat_kwargs: Any,
) -> AuditedChatAnthropic:
    """A ``ChatAnthropic`` (``chat_kwargs`` are its arguments) audited as ``user`` / ``role``.

    ``pipeline=`` shares one pipeline (store, budgets, detectors) between models and
    :class:`~claudesec.guard.client.AuditedAnthropic` clients; without it one is built from the
    configuration (``claudesec_config``, ``policy``, ``store`` override it) and closed when the
    model is garbage-collected.
    """
    chosen, owned = _pipeline_for(
        pipeline,
        policy=policy,
        claudesec_config=claudesec_config,
        store=store,
        environment=environment,
    )
    try:
        model = AuditedChatAnthropic(**chat_kwargs)
    except BaseException:
        if owned:
            chosen.close()
        raise
    model.bind_audit(_Binding(chosen, Caller(user, identity_token, role), owns_pipeline=owned))
    if owned:
        weakref.finalize(model, chosen.close)
    return model


# --------------------------------------------------------------------------- callback handler


class AuditCallbackHandler(BaseCallbackHandler):
    """Judges and records LangChain chat-model runs through the audit pipeline.

    Add it to a model's or a run's ``callbacks``. A denial raises :class:`CallDenied` out of
    ``invoke``/``stream`` before the model is called; the run's record is written when it ends.
    Prefer :func:`audited_chat_anthropic` where you can build the model: see the module
    documentation for what a callback cannot do.
    """

    # Without raise_error LangChain logs and swallows a callback's exception, and the call
    # would go ahead after a denial.
    raise_error: bool = True
    # Judged on the caller's thread/task, not handed to an executor: the decision must be
    # taken before LangChain moves on to the call.
    run_inline: bool = True

    def __init__(
        self,
        *,
        user: str | None = None,
        identity_token: str | None = None,
        role: str | None = None,
        pipeline: AuditPipeline | None = None,
        policy: Policy | PolicyConfig | None = None,
        claudesec_config: Config | None = None,
        store: RecordSink | None = None,
        environment: str | None = None,
    ) -> None:
        self.pipeline, self._owns_pipeline = _pipeline_for(
            pipeline,
            policy=policy,
            claudesec_config=claudesec_config,
            store=store,
            environment=environment,
        )
        self.caller = Caller(user, identity_token, role)
        self._runs: dict[UUID, Admission] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the pipeline if this handler built it."""
        if self._owns_pipeline:
            self.pipeline.close()

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if metadata and metadata.get(ENFORCED_FLAG):
            return
        params = kwargs.get("invocation_params")
        params = params if isinstance(params, Mapping) else {}
        body = _request_body(messages[0] if messages else [], params)
        request = ApiRequest("POST", _MESSAGES_PATH, body, stream=bool(params.get("stream")))
        admission = self.pipeline.admit(self.caller, request)
        run = _Run(run_id, parent_run_id)
        extra = {**admission.extra, **run.extra(), "via": "langchain-callback"}
        admission = replace(admission, extra=extra)
        if admission.redacted:
            # Redaction means sending a changed body, which a callback cannot do: refuse, and
            # record the refusal (the record names DLP kinds, never values).
            self.pipeline.finish(admission, Outcome(error="dlp.redact_unavailable"))
            raise CallDenied(
                "dlp.redact_unavailable",
                f"the request holds {admission.dlp.describe()}; role {admission.role!r} "
                "redacts, and a LangChain callback cannot change the request",
                user=admission.identity.user,
                role=admission.role,
                dlp=admission.dlp,
                hint="build the model with claudesec.integrations.langchain."
                "audited_chat_anthropic(), which redacts on the wire",
            )
        with self._lock:
            self._runs[run_id] = admission

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            admission = self._runs.pop(run_id, None)
        if admission is not None:
            self.pipeline.finish(admission, _outcome(response))

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            admission = self._runs.pop(run_id, None)
        if admission is not None:
            code = _error_code(error)
            # The model's own error is what the caller must see; a failed audit write beside
            # it is logged by the pipeline.
            with contextlib.suppress(Exception):
                self.pipeline.finish(admission, Outcome(error=code))


def _error_code(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return f"http.{status}"
    return "error." + type(error).__name__


def _request_body(messages: Sequence[BaseMessage], params: Mapping[str, Any]) -> dict[str, Any]:
    """The Messages request LangChain is about to make, as near as a callback can see it.

    The messages are formatted by langchain-anthropic's own formatter (so system prompts,
    content blocks, tool calls and results are where DLP looks for them on the wire); tools
    come from the invocation parameters.
    """
    system, formatted = _format(messages, str(params.get("model") or ""))
    body: dict[str, Any] = {"model": str(params.get("model") or params.get("model_name") or "")}
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, int):
        body["max_tokens"] = max_tokens
    body["messages"] = formatted
    if system:
        body["system"] = system
    tools = params.get("tools")
    if isinstance(tools, list) and tools:
        body["tools"] = tools
    return body


def _format(messages: Sequence[BaseMessage], model: str) -> tuple[Any, list[dict[str, Any]]]:
    try:
        from langchain_anthropic.chat_models import _format_messages

        return _format_messages(list(messages), model=model or None)
    except Exception:
        # A message this langchain-anthropic cannot format will fail the real call too; judge
        # the plain contents meanwhile so DLP still sees every text.
        plain = [
            {
                "role": "assistant" if message.type == "ai" else "user",
                "content": message.content,
            }
            for message in messages
        ]
        return None, plain


def _outcome(response: LLMResult) -> Outcome:
    llm_output = response.llm_output if isinstance(response.llm_output, Mapping) else {}
    message: Any = None
    if response.generations and response.generations[0]:
        message = getattr(response.generations[0][0], "message", None)
    metadata: Mapping[str, Any] = getattr(message, "response_metadata", None) or {}
    usage_metadata: Mapping[str, Any] = getattr(message, "usage_metadata", None) or {}
    usage = llm_output.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}
    input_tokens = _count(usage.get("input_tokens")) or _count(usage_metadata.get("input_tokens"))
    output_tokens = _count(usage.get("output_tokens")) or _count(
        usage_metadata.get("output_tokens")
    )
    model = llm_output.get("model") or metadata.get("model_name") or metadata.get("model") or ""
    stop = llm_output.get("stop_reason") or metadata.get("stop_reason") or ""
    message_id = llm_output.get("id") or metadata.get("id") or getattr(message, "id", "") or ""
    extra = {"message_id": message_id[:200]} if isinstance(message_id, str) and message_id else {}
    return Outcome(
        model=model[:200] if isinstance(model, str) else "",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        stop_reason=stop[:200] if isinstance(stop, str) else "",
        extra=extra,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
