"""What a gateway (``claudesec proxy``) needs of the pipeline: identities it established,
refusals before anyone is identified, its context in the record, the HTTP status its caller
got, count_tokens, per-request batch decisions, records written off the caller's thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.events import AuditEvent
from claudesec.audit.store import AuditStore, StoredRecord
from claudesec.audit.writer import BackgroundWriter
from claudesec.errors import StoreError
from claudesec.guard.dlp import placeholder
from claudesec.guard.identity import Identity
from claudesec.guard.pipeline import (
    ApiRequest,
    AuditPipeline,
    AuditUnavailable,
    CallDenied,
    Caller,
    Origin,
    Outcome,
    denial_status,
)
from tests.fixtures.keys import KeyFactory
from tests.guard.test_pipeline import MODEL, audit_config, message_body, open_store, records

ORIGIN = Origin(via="proxy", client="10.0.0.7", token_id="pt_0123456789ab", request_id="csreq_1")


def token_caller(user: str = "erin", role: str = "analyst") -> Caller:
    identity = Identity(user=user, roles=(role,), source="proxy_token", subject="pt_0123456789ab")
    return Caller(identity=identity, role=role)


def via_proxy(path: str = "/v1/messages", body: Any = None, **kwargs: Any) -> ApiRequest:
    method = kwargs.pop("method", "POST" if body is not None else "GET")
    return ApiRequest(method, path, body, origin=ORIGIN, **kwargs)


def batch(*items: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"requests": [{"custom_id": cid, "params": params} for cid, params in items]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    with open_store(tmp_path / "audit.db") as opened:
        yield opened


@pytest.fixture
def pipeline(store: AuditStore) -> AuditPipeline:
    return AuditPipeline.from_config(audit_config(), store=store)


# --------------------------------------------------------------------------- identities


def test_a_proxy_token_grants_its_role_without_policy_users(
    pipeline: AuditPipeline, store: AuditStore
) -> None:
    admission = pipeline.admit(token_caller(), via_proxy(body=message_body("hi")))
    pipeline.finish(admission, Outcome(status=200, request_id="req_up"))
    [event] = records(store)
    assert (event.user, event.role, event.identity_source) == ("erin", "analyst", "proxy_token")
    assert event.request_id == "req_up"
    assert event.extra["http_status"] == 200
    assert {k: event.extra[k] for k in ("via", "client", "token_id", "claudesec_request_id")} == {
        "via": "proxy",
        "client": "10.0.0.7",
        "token_id": "pt_0123456789ab",
        "claudesec_request_id": "csreq_1",
    }


def test_policy_users_still_win_over_a_token_for_another_role(pipeline: AuditPipeline) -> None:
    # dave is assigned "haiku": a token naming "analyst" cannot lift him out of it.
    with pytest.raises(CallDenied) as denied:
        pipeline.admit(token_caller("dave", "analyst"), via_proxy(body=message_body("hi")))
    assert denied.value.reason == "policy.role_not_assigned"
    assert (denied.value.status, denied.value.error_type) == (400, "invalid_request_error")


def test_a_plain_user_id_is_still_unknown_without_policy_users(pipeline: AuditPipeline) -> None:
    with pytest.raises(CallDenied, match=r"policy\.unknown_user"):
        pipeline.admit(Caller("erin", role="analyst"), ApiRequest("POST", "/v1/messages", {}))


# --------------------------------------------------------------------------- refusals


def test_reject_records_a_refusal_before_anyone_is_identified(
    pipeline: AuditPipeline, store: AuditStore
) -> None:
    origin = Origin(via="proxy", client="10.0.0.9", credential="anthropic_key", credential_hint="h")
    with pytest.raises(CallDenied) as denied:
        pipeline.reject(
            ApiRequest("POST", "/v1/messages", origin=origin),
            "identity.anthropic_key_presented",
            "Anthropic API keys are not accepted here",
        )
    assert (denied.value.status, denied.value.error_type) == (401, "authentication_error")
    [event] = records(store)
    assert (event.type, event.decision, event.reason) == (
        "denial",
        "deny",
        "identity.anthropic_key_presented",
    )
    assert event.extra["http_status"] == 401
    assert (event.extra["credential"], event.extra["client"]) == ("anthropic_key", "10.0.0.9")


def test_in_process_denials_carry_no_http_status(
    pipeline: AuditPipeline, store: AuditStore
) -> None:
    # The SDK adapter raises before any request exists: nothing was answered over HTTP.
    with pytest.raises(CallDenied):
        pipeline.admit(Caller("dave"), ApiRequest("POST", "/v1/messages", message_body("hi")))
    assert "http_status" not in records(store)[0].extra


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("identity.expired", 401),
        ("identity.token_revoked", 401),
        ("identity.idp_unavailable", 503),
        ("identity.token_store_unavailable", 503),
        ("policy.model_not_allowed", 400),
        ("policy.malformed_request", 400),
        ("policy.day_budget_exceeded", 400),
        ("policy.minute_budget_exceeded", 429),
        ("dlp.blocked", 400),
        ("dlp.uninspectable", 400),
        ("audit.unavailable", 503),
    ],
)
def test_each_denial_has_the_status_anthropic_clients_expect(reason: str, status: int) -> None:
    assert denial_status(reason)[0] == status


# --------------------------------------------------------------------------- endpoints


def test_count_tokens_needs_no_max_tokens(pipeline: AuditPipeline, store: AuditStore) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "how long is this"}]}
    request = via_proxy("/v1/messages/count_tokens", body)
    admission = pipeline.admit(token_caller(), request)
    outcome, rewritten = pipeline.response_outcome(
        admission, 200, "req_c", json.dumps({"input_tokens": 5}).encode()
    )
    assert rewritten is None
    pipeline.finish(admission, outcome)
    assert records(store)[0].extra["counted_tokens"] == 5
    with pytest.raises(CallDenied, match="model_not_allowed"):
        pipeline.admit(token_caller("dave", "haiku"), request)


def test_each_batch_request_is_judged_and_the_refused_one_named(pipeline: AuditPipeline) -> None:
    body = batch(("ok", message_body("hi")), ("greedy", message_body("hi", max_tokens=4096)))
    with pytest.raises(CallDenied) as denied:
        pipeline.admit(token_caller(), via_proxy("/v1/messages/batches", body))
    assert denied.value.reason == "policy.max_tokens_exceeded"
    assert "batch request 'greedy'" in denied.value.message


def test_an_empty_batch_is_malformed_not_a_read(pipeline: AuditPipeline) -> None:
    with pytest.raises(CallDenied) as denied:
        pipeline.admit(token_caller(), via_proxy("/v1/messages/batches", {"requests": []}))
    assert denied.value.reason == "policy.malformed_request" and denied.value.status == 400


def test_batch_dlp_names_the_items_and_redacts_only_them(
    pipeline: AuditPipeline, store: AuditStore, fake_keys: KeyFactory
) -> None:
    key = fake_keys.anthropic_api().value
    body = batch(("clean", message_body("hello")), ("leaky", message_body(f"use {key}")))
    with pytest.raises(CallDenied) as denied:
        pipeline.admit(token_caller(), via_proxy("/v1/messages/batches", body))
    assert "batch requests 'leaky'" in denied.value.message and key not in str(denied.value)

    admission = pipeline.admit(
        token_caller("rita", "redactor"), via_proxy("/v1/messages/batches", body)
    )
    sent = admission.body["requests"]
    assert sent[0]["params"] == message_body("hello")
    assert sent[1]["params"]["messages"][0]["content"] == f"use {placeholder('anthropic-api-key')}"
    pipeline.finish(admission, Outcome(status=200))
    event = records(store)[-1]
    assert (event.extra["batch_requests"], event.extra["batch_models"]) == (2, (MODEL,))


# --------------------------------------------------------------------------- the record writer


class SlowFlakyStore:
    """A real store that can be slowed down or made to fail, as a busy or full disk would."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.failing = False
        self.delay_s = 0.0
        self.thread: str = ""

    def append_many(self, events: Any) -> list[StoredRecord]:
        self.thread = threading.current_thread().name
        time.sleep(self.delay_s)
        if self.failing:
            raise StoreError("cannot write the audit store: the disk is full")
        return self.store.append_many(events)

    def close(self) -> None:
        self.store.close()


def test_records_are_written_off_the_callers_thread_in_order(store: AuditStore) -> None:
    backing = SlowFlakyStore(store)
    writer = BackgroundWriter(backing, owns_store=False)
    pipeline = AuditPipeline.from_config(audit_config(), store=writer)
    for index in range(50):
        admission = pipeline.admit(token_caller(), via_proxy(body=message_body(f"n{index}")))
        pipeline.finish(admission, Outcome(status=200, request_id=f"req_{index}"))
    assert writer.flush(5)
    assert [e.request_id for e in records(store)] == [f"req_{i}" for i in range(50)]
    assert backing.thread == "claudesec-audit-writer"
    writer.close()


def test_a_failing_store_refuses_new_calls_with_503_and_loses_no_record(
    store: AuditStore,
) -> None:
    backing = SlowFlakyStore(store)
    writer = BackgroundWriter(backing, owns_store=False, retry_s=0.01)
    pipeline = AuditPipeline.from_config(audit_config(), store=writer)
    first = pipeline.admit(token_caller(), via_proxy(body=message_body("before")))
    backing.failing = True
    pipeline.finish(first, Outcome(status=200, request_id="req_before"))  # queued, not lost
    deadline = time.monotonic() + 5
    while not writer.problem and time.monotonic() < deadline:
        time.sleep(0.005)
    assert "the disk is full" in writer.problem

    with pytest.raises(CallDenied) as denied:
        pipeline.admit(token_caller(), via_proxy(body=message_body("during")))
    assert denied.value.reason == "audit.unavailable"
    assert (denied.value.status, denied.value.error_type) == (503, "api_error")
    assert "the disk is full" in denied.value.message

    backing.failing = False
    assert writer.flush(5) and writer.problem == ""
    after = pipeline.admit(token_caller(), via_proxy(body=message_body("after")))
    pipeline.finish(after, Outcome(status=200, request_id="req_after"))
    writer.close()
    recorded = records(store)
    assert [(e.reason, e.request_id) for e in recorded] == [
        ("allowed", "req_before"),
        ("audit.unavailable", ""),
        ("allowed", "req_after"),
    ]


def test_a_full_queue_withholds_the_answer_and_refuses_new_calls(store: AuditStore) -> None:
    backing = SlowFlakyStore(store)
    backing.delay_s = 0.3
    writer = BackgroundWriter(backing, owns_store=False, max_pending=1, batch=1)
    pipeline = AuditPipeline.from_config(audit_config(), store=writer)
    admissions = [
        pipeline.admit(token_caller(), via_proxy(body=message_body("x"))) for _ in range(2)
    ]
    pipeline.finish(admissions[0], Outcome(status=200))  # taken by the writer, now busy
    with pytest.raises(AuditUnavailable, match="queue is full"):
        pipeline.finish(admissions[1], Outcome(status=200))
    with pytest.raises(CallDenied) as denied:
        pipeline.admit(token_caller(), via_proxy(body=message_body("x")))
    assert denied.value.status == 503 and "queue is full" in denied.value.message
    writer.close()


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    store = open_store(tmp_path / "audit.db")
    backing = SlowFlakyStore(store)
    backing.delay_s = 0.01
    writer = BackgroundWriter(backing, batch=1)
    for index in range(20):
        writer.append(AuditEvent(type="call", request_id=f"r{index}"))
    writer.close()
    with AuditStore.open(tmp_path / "audit.db", readonly=True) as reopened:
        assert reopened.head().seq == 20
    with pytest.raises(StoreError, match="closed"):
        writer.append(AuditEvent(type="call"))


class _GatedStore:
    """A real store whose first transaction waits for a gate: what arrives meanwhile queues."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.transactions: list[int] = []
        self.failing = False

    def append_many(self, events: Any) -> list[StoredRecord]:
        events = list(events)
        if not self.transactions:
            self.entered.set()
            assert self.gate.wait(60)
        self.transactions.append(len(events))
        if self.failing:
            raise StoreError("cannot write the audit store: the disk is full")
        return self.store.append_many(events)

    def close(self) -> None:
        self.store.close()


def test_submitted_admissions_share_one_commit_and_are_acknowledged_after_it(
    store: AuditStore,
) -> None:
    backing = _GatedStore(store)
    # A linger far beyond the wait below: a submitted record must not wait for it.
    writer = BackgroundWriter(backing, owns_store=False, linger_s=3600)
    try:
        first = writer.submit(AuditEvent(type="admission", user="u0"))
        assert backing.entered.wait(60)
        rest = [writer.submit(AuditEvent(type="admission", user=f"u{i}")) for i in range(1, 20)]
        writer.append(AuditEvent(type="call", user="queued"))  # rides along, not waited for
        assert not any(f.done() for f in rest)  # not acknowledged before their commit
        backing.gate.set()
        seqs = [f.result(timeout=60).seq for f in [first, *rest]]
        assert seqs == list(range(1, 21))
        assert backing.transactions == [1, 20]  # the 19 that queued + the call: one commit
        # A submitted record the store refuses fails at once and is not retried later: the
        # call it would admit is refused, so it must not appear afterwards.
        backing.failing = True
        with pytest.raises(StoreError, match="disk is full"):
            writer.submit(AuditEvent(type="admission", user="refused")).result(timeout=60)
        backing.failing = False
        assert writer.flush(60)
    finally:
        writer.close()
    users = [e.user for e in records(store, admissions=True)]
    assert "refused" not in users and len(users) == 21
