"""DLP: secrets from the shared catalogue, PII with checksums, custom patterns, request bodies."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claudesec.detect.validators import iban_valid, luhn_valid
from claudesec.errors import ConfigError
from claudesec.guard.dlp import (
    DlpScanner,
    placeholder,
    replace_texts,
    request_text_slots,
)
from tests.fixtures.keys import KeyFactory

BACKENDS = ["hyperscan", "python"]


@pytest.fixture(scope="module", params=BACKENDS)
def scanner(request: pytest.FixtureRequest) -> DlpScanner:
    return DlpScanner(backend=request.param)


# Test values assembled from parts so no PII-shaped literal sits in the source either.
CARD = "4111 " + "1111 " + "1111 " + "1111"
CARD_BAD_LUHN = "4111 " + "1111 " + "1111 " + "1112"
IBAN = "GB82 " + "WEST " + "1234 " + "5698 " + "7654 " + "32"
IBAN_BAD = "GB82 " + "WEST " + "1234 " + "5698 " + "7654 " + "33"
SSN = "123-" + "45-" + "6789"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to alice.smith+news@example.co.uk today", "email"),
        ("call +44 20 7946 0958 now", "phone"),
        ("call (415) 555-0132 now", "phone"),
        ("call 415-555-0132 now", "phone"),
        (f"card {CARD} exp 12/29", "payment-card"),
        ("card " + CARD.replace(" ", "") + ".", "payment-card"),
        (f"ssn {SSN}.", "us-ssn"),
        (f"iban {IBAN} ok", "iban"),
        ("host 10.20.30.40 is down", "ip-address"),
        ("v6 2001:db8:85a3::8a2e:370:7334 up", "ip-address"),
        ("link fe80::1ff:fe23:4567:890a", "ip-address"),
    ],
)
def test_pii_is_found_and_redacted(scanner: DlpScanner, text: str, kind: str) -> None:
    report = scanner.scan(text)
    assert report.counts == {kind: 1}
    redacted, found = scanner.redact(text)
    assert placeholder(kind) in redacted
    assert found == report


@pytest.mark.parametrize(
    "text",
    [
        f"card {CARD_BAD_LUHN}",
        f"iban {IBAN_BAD}",
        "version 999.1.2.3 released",
        "at 12:30:45 the std::vector grew",
        "ssn 000-12-3456 is not issued",
        "the year 2024 and 17 regions, order 12345",
        "1234-5678 9012 3456 mixed separators",
    ],
)
def test_lookalikes_are_not_pii(scanner: DlpScanner, text: str) -> None:
    assert not scanner.scan(text)


def test_card_inside_a_longer_number_list_is_still_found(scanner: DlpScanner) -> None:
    assert scanner.scan(f"order 12 {CARD} shipped").counts == {"payment-card": 1}


def test_every_catalogue_secret_is_redacted_with_its_rule_id(
    scanner: DlpScanner, fake_keys: KeyFactory
) -> None:
    for key in fake_keys.every_kind():
        text = f"please use {key.value} for the deploy"
        redacted, report = scanner.redact(text)
        assert key.value not in redacted, key
        assert placeholder(key.rule) in redacted, key
        assert report.counts == {key.rule: 1}, key


def test_secret_assignment_keeps_the_name_and_hides_the_value(scanner: DlpScanner) -> None:
    value = "Zq8" + "vK2mP9xR4tW7"
    redacted, _ = scanner.redact(f'db_password = "{value}"\n')
    assert redacted == f'db_password = "{placeholder("generic-secret-assignment")}"\n'


def test_backends_agree(fake_keys: KeyFactory) -> None:
    text = (
        f"key {fake_keys.anthropic_api().value} mail bob@example.org card {CARD} "
        f"ip 192.168.1.20 iban {IBAN} ssn {SSN} tel +1 415 555 0132 " * 3
    )
    fast = DlpScanner(backend="hyperscan").scan_bytes(text.encode())
    slow = DlpScanner(backend="python").scan_bytes(text.encode())
    assert fast == slow
    assert len(fast) == 21


def test_non_ascii_text_keeps_its_characters(scanner: DlpScanner) -> None:
    text = "Grüße an jürgen@example.de — 日本語 ok"
    redacted, report = scanner.redact(text)
    assert redacted == f"Grüße an {placeholder('email')} — 日本語 ok"
    assert report.counts == {"email": 1}


def test_custom_patterns_and_disabled_detectors() -> None:
    scanner = DlpScanner(custom_patterns={"employee-id": r"EMP-\d{6}"}, disabled=("email",))
    redacted, report = scanner.redact("ticket EMP-123456 from bob@example.org")
    assert redacted == f"ticket {placeholder('employee-id')} from bob@example.org"
    assert report.counts == {"employee-id": 1}


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ({"Bad Kind": "x"}, "kind must be"),
        ({"ok": "("}, "invalid regular expression"),
        ({"ok": "a*"}, "matches the empty string"),
    ],
)
def test_bad_custom_patterns_are_one_line_config_errors(
    patterns: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        DlpScanner(custom_patterns=patterns)
    assert "dlp.custom_patterns." in str(info.value)
    assert "\n" not in str(info.value)


def test_checksums() -> None:
    assert luhn_valid(CARD.replace(" ", ""))
    assert not luhn_valid(CARD_BAD_LUHN.replace(" ", ""))
    assert iban_valid(IBAN)
    assert iban_valid("DE89" + "370400440532013000")
    assert not iban_valid(IBAN_BAD)


def test_report_never_holds_values(scanner: DlpScanner, fake_keys: KeyFactory) -> None:
    key = fake_keys.anthropic_api().value
    report = scanner.scan(f"{key} and {SSN}")
    assert key not in repr(report) and SSN not in repr(report)
    assert report.describe() == "1 anthropic-api-key, 1 us-ssn"


# --------------------------------------------------------------------------- request bodies


def _body(secret: str) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "system": [{"type": "text", "text": f"sys {secret}"}],
        "messages": [
            {"role": "user", "content": f"plain {secret}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "ok"},
                    {"type": "tool_use", "id": "t1", "name": "sh", "input": {"cmd": secret}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": f"out {secret}"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": [{"type": "text", "text": f"block {secret}"}],
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": secret},
                    },
                    {"type": "thinking", "thinking": "signed, left alone", "signature": "x"},
                ],
            },
        ],
    }


def test_every_text_part_of_a_messages_body_is_inspected(
    scanner: DlpScanner, fake_keys: KeyFactory
) -> None:
    key = fake_keys.anthropic_api().value
    body = _body(key)
    original = copy.deepcopy(body)
    slots = request_text_slots("/v1/messages", body)
    per_slot = scanner.scan_parts([s.text for s in slots])
    hit_paths = {slot.path for slot, found in zip(slots, per_slot, strict=True) if found}
    assert len(hit_paths) == 6
    from claudesec.guard.dlp import redact_findings

    new = replace_texts(
        body,
        {s.path: redact_findings(s.text, f) for s, f in zip(slots, per_slot, strict=True) if f},
    )
    assert key not in repr(new)
    assert body == original  # the caller's body is never modified
    assert new["messages"][2]["content"][3] is body["messages"][2]["content"][3]


def test_batches_inspect_each_requests_params(fake_keys: KeyFactory) -> None:
    key = fake_keys.github_classic().value
    body = {"requests": [{"custom_id": "a", "params": _body(key)}]}
    slots = request_text_slots("/v1/messages/batches", body)
    assert all(slot.path[:2] == ("requests", 0) for slot in slots)
    assert any(key in slot.text and slot.path[:3] == ("requests", 0, "params") for slot in slots)


@settings(max_examples=60, deadline=None)
@given(
    before=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    after=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    seed=st.integers(0, 10_000),
)
def test_a_key_never_survives_redaction(before: str, after: str, seed: int) -> None:
    key = KeyFactory(seed).anthropic_api().value
    redacted, report = _SCANNER.redact(f"{before} {key} {after}")
    assert key not in redacted
    assert report.counts.get("anthropic-api-key") == 1


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(st.text(max_size=30), min_size=1, max_size=5), seed=st.integers(0, 999))
def test_joined_scan_matches_per_part_scans(parts: list[str], seed: int) -> None:
    parts = [*parts, f"x {KeyFactory(seed).github_classic().value} y"]
    joined = _SCANNER.scan_parts(parts)
    alone = [_SCANNER.scan_bytes(p.encode("utf-8", "surrogatepass")) for p in parts]
    assert joined == alone


_SCANNER = DlpScanner()


def test_threads_scanning_at_once_each_get_their_findings(fake_keys: KeyFactory) -> None:
    # The audited client is shared between threads: the PII shapes' hyperscan pass once used
    # the database's single scratch and failed with ScratchInUseError under concurrency.
    import threading

    scanner = DlpScanner(backend="hyperscan")
    text = (f"mail bob@example.org card {CARD} ip 192.168.1.20 ssn {SSN} " + "x " * 4000) * 20
    data = text.encode()
    expected = scanner.scan_bytes(data)
    results: list[Any] = []
    start = threading.Barrier(4)

    def scan() -> None:
        start.wait()
        try:
            results.extend(scanner.scan_bytes(data) == expected for _ in range(30))
        except Exception as exc:  # the failure is what the test looks for
            results.append(exc)

    threads = [threading.Thread(target=scan) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(expected) == 80
    assert results == [True] * 120


def test_a_remembered_large_part_gives_the_same_findings_every_time(
    fake_keys: KeyFactory,
) -> None:
    # Large parts are remembered by digest (a client resends its system prompt and history
    # on every call): the second, remembered inspection must find exactly what the first did,
    # and a different allowlist must not reuse the first one's verdict.
    key = fake_keys.anthropic_api().value
    big = "context line\n" * 100 + f"mail ops@example.org key {key}\n"
    body = {"model": "m", "system": big, "messages": [{"role": "user", "content": big}]}
    scanner = DlpScanner()
    first = scanner.inspect_request("/v1/messages", body)
    again = scanner.inspect_request("/v1/messages", body)
    assert first.per_slot == again.per_slot
    assert again.report.counts == {"anthropic-api-key": 2, "email": 2}
    assert key not in json.dumps(again.redacted(body))
    allowing = scanner.allowlist(["ops@example.org"])
    allowed = scanner.inspect_request("/v1/messages", body, allow=allowing)
    assert allowed.report.counts == {"anthropic-api-key": 2}
    assert allowed.allowed.counts == {"email": 2}
    assert scanner.inspect_request("/v1/messages", body).report == first.report
