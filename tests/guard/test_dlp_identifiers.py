"""Random machine identifiers are not personal data.

Clients put random identifiers in every request: Claude Code sends a 64-hex-digit device id and
a session UUID in ``metadata.user_id`` of each call, tools carry ids and content hashes. A
digit run inside one of them can pass a card number's Luhn check: 1 device id in 440 did (226
of 100,000), and Claude Code behind a ``dlp = "block"`` role was then refused on every call
from that machine. Others look like an IBAN. These tests make the identifiers the way their
tools do (``uuid``, ``secrets``, ``hashlib``, ``base64``) from a fixed seed, many thousands
per shape, and require no finding (personal data or secret) in any of them, in both backends.
Real values next to them are still found, and so is every card number and IBAN Faker makes
(an outside source of real formats), compact and grouped as issuers and banks print them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable

import pytest
from faker import Faker

from claudesec.detect.validators import IBAN_LENGTHS
from claudesec.guard.dlp import DlpScanner

BACKENDS = ["hyperscan", "python"]
PER_SHAPE = 20_000

# Built from parts: no PII-shaped literal in the source.
CARD = "4111" + "1111" + "1111" + "1111"


@pytest.fixture(scope="module", params=BACKENDS)
def scanner(request: pytest.FixtureRequest) -> DlpScanner:
    return DlpScanner(backend=request.param)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(length: int) -> Callable[[random.Random], str]:
    return lambda rng: (
        rng.getrandbits(length * 4).to_bytes(length * 4 // 8 + 1, "big").hex()[-length:]
    )


def _device_metadata(rng: random.Random) -> str:
    # Claude Code's metadata.user_id, as it serialises it.
    return json.dumps(
        {"device_id": _hex(64)(rng), "account_uuid": "", "session_id": _uuid(rng)},
        separators=(",", ":"),
    )


SHAPES: dict[str, Callable[[random.Random], str]] = {
    "uuid4": _uuid,
    "uuid4 upper": lambda rng: _uuid(rng).upper(),
    "uuid without dashes": lambda rng: _uuid(rng).replace("-", ""),
    "hex 12": _hex(12),
    "hex 24": _hex(24),
    "git sha-1": lambda rng: hashlib.sha1(rng.randbytes(16)).hexdigest(),
    "sha-256": lambda rng: "sha256:" + hashlib.sha256(rng.randbytes(16)).hexdigest(),
    "sha-256 upper": lambda rng: hashlib.sha256(rng.randbytes(16)).hexdigest().upper(),
    "md5": lambda rng: hashlib.md5(rng.randbytes(16)).hexdigest(),
    "base64": lambda rng: base64.b64encode(rng.randbytes(48)).decode(),
    "base64url": lambda rng: base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("="),
    "claude code metadata.user_id": _device_metadata,
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_random_identifiers_hold_no_personal_data(scanner: DlpScanner, shape: str) -> None:
    rng = random.Random(f"claudesec-dlp-{shape}")
    made = [SHAPES[shape](rng) for _ in range(PER_SHAPE)]
    # As a client sends them: JSON strings, and the same values in prose and in a path.
    text = json.dumps(made) + "\n" + " ".join(made) + "\n" + "/".join(made)
    findings = scanner.scan_bytes(text.encode())
    data = text.encode()
    assert [(f.kind, data[f.start : f.end].decode()) for f in findings][:5] == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f'{{"card":"{CARD}","device_id":"{"ab" * 32}"}}', "payment-card"),
        (f"card {CARD[:4]}-{CARD[4:8]}-{CARD[8:12]}-{CARD[12:]} id {_uuid(random.Random(1))}",
         "payment-card"),
        ("call 415-555-0132, session " + _uuid(random.Random(2)), "phone"),
        ("host 10.20.30.40 request " + "0f" * 20, "ip-address"),
    ],
)  # fmt: skip
def test_real_values_next_to_identifiers_are_still_found(
    scanner: DlpScanner, text: str, kind: str
) -> None:
    assert scanner.scan(text).counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        f"id a{CARD}b",  # glued to letters: part of an identifier
        f"id {CARD}f00d",
        f"build v{CARD}",
        # A UUID whose first three groups are digits: 8-4-4 is not a card layout.
        f"session {CARD[:8]}-{CARD[8:12]}-{CARD[12:]}-a000-000000000000",
        f"ticket {CARD[:4]}-{CARD[4:8]}-{CARD[8:12]}-{CARD[12:]}-2",  # a longer dashed number
        "release v10.20.30.40",
        "file_415-555-0132.txt",
    ],
)
def test_digits_that_are_part_of_a_longer_identifier_are_not_personal_data(
    scanner: DlpScanner, text: str
) -> None:
    assert not scanner.scan(text), text


# ------------------------------------------------------------------ recall: real formats

# Faker's issuers with the grouping each prints on the card. Not covered, by design: 12-digit
# Maestro (the shortest card taken is 13 digits) and JCB's legacy 1800 range (a 13-19 digit
# number starting with 1 is far more often a millisecond timestamp or a snowflake id).
CARD_LAYOUTS: dict[str, tuple[int, ...]] = {
    "visa13": (4, 4, 4, 1),
    "visa16": (4, 4, 4, 4),
    "visa19": (4, 4, 4, 4, 3),
    "mastercard": (4, 4, 4, 4),
    "discover": (4, 4, 4, 4),
    "jcb16": (4, 4, 4, 4),
    "amex": (4, 6, 5),
    "diners": (4, 6, 4),
}


def _grouped(number: str, layout: tuple[int, ...], separator: str) -> str:
    groups, at = [], 0
    for size in layout:
        groups.append(number[at : at + size])
        at += size
    assert at == len(number), (number, layout)
    return separator.join(groups)


def _found(scanner: DlpScanner, values: list[str], kind: str) -> list[str]:
    """The values not found as ``kind``, each alone in a sentence and in a JSON string."""
    missed = []
    for value in values:
        for text in (f"please charge {value} today", json.dumps({"value": value})):
            if scanner.scan(text).counts != {kind: 1}:
                missed.append(text)
    return missed


@pytest.mark.parametrize("issuer", sorted(CARD_LAYOUTS))
def test_every_card_faker_makes_is_found_compact_and_grouped(
    scanner: DlpScanner, issuer: str
) -> None:
    fake = Faker()
    fake.seed_instance(f"cards-{issuer}")
    numbers = [fake.credit_card_number(issuer) for _ in range(300)]
    layout = CARD_LAYOUTS[issuer]
    written = numbers + [_grouped(n, layout, " ") for n in numbers]
    written += [_grouped(n, layout, "-") for n in numbers]
    assert _found(scanner, written, "payment-card") == []


BANK_LOCALES = [
    "az_AZ", "cs_CZ", "da_DK", "de_AT", "de_CH", "de_DE", "el_GR", "en_GB", "en_IE", "es_ES",
    "fa_IR", "fi_FI", "fr_FR", "it_IT", "mk_MK", "nl_BE", "nl_NL", "no_NO", "pl_PL", "pt_BR",
    "pt_PT", "ro_RO", "ru_RU", "sk_SK", "tr_TR", "uk_UA",
]  # fmt: skip


@pytest.mark.parametrize("locale", BANK_LOCALES)
def test_every_iban_faker_makes_is_found_compact_and_in_fours(
    scanner: DlpScanner, locale: str
) -> None:
    fake = Faker(locale)
    fake.seed_instance(f"iban-{locale}")
    ibans = [fake.iban() for _ in range(200)]
    assert {len(iban) for iban in ibans} == {IBAN_LENGTHS[ibans[0][:2]]}
    written = ibans + [" ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) for iban in ibans]
    assert _found(scanner, written, "iban") == []


# Faker's phone formats per country, unlabelled. Not covered there, by design: digits with no
# separator ("0232781286", "9127157314"), which are any other number too unless a label says
# otherwise (test_every_labelled_phone_number_is_found...), so these are floors, not 100%.
PHONE_FLOORS = {
    "en_US": 0.90, "en_CA": 0.88, "en_GB": 0.90, "de_DE": 0.75, "fr_FR": 0.72, "nl_NL": 0.80,
    "es_ES": 0.99, "en_AU": 0.55,
}  # fmt: skip


@pytest.mark.parametrize("locale", sorted(PHONE_FLOORS))
def test_phone_numbers_in_each_countrys_own_format_are_found(
    scanner: DlpScanner, locale: str
) -> None:
    fake = Faker(locale)
    fake.seed_instance(f"phones-{locale}")
    numbers = [fake.phone_number() for _ in range(500)]
    found = [n for n in numbers if scanner.scan(f"call {n} now").counts == {"phone": 1}]
    assert len(found) >= PHONE_FLOORS[locale] * len(numbers), sorted(set(numbers) - set(found))


@pytest.mark.parametrize(
    "text",
    [
        "call (0161) 496 0066 now",
        "call (03449) 78690 now",
        "call 0191 4960657 now",
        "call 020 7946 0958 now",
        "call 0134-626802 now",
        "ring (08) 5632 1223 today",  # Australia: area code, then 4-4
        "ring 02 9482 1993 today",
        "ring 02-7034-2366 today",
        "ring 0430 166 131 today",  # Australian mobiles: 04XX XXX XXX
        "ring 0460-913-909 today",
        "appelez le 01 23 45 67 89",
        "appelez le 01.23.45.67.89",
        "numéro de 01 23 45 67 89 de 9h à 18h",
    ],
)
def test_national_formats_with_the_trunk_prefix_are_found(scanner: DlpScanner, text: str) -> None:
    assert scanner.scan(text).counts == {"phone": 1}


@pytest.mark.parametrize(
    "text",
    [
        "x = 1304 01303 021302 03130 0412",  # a list of numbers
        "0412 1204 1302 0130 03120",
        "assert abs(x + 1.4142135623731*I) <= 1e-9",  # +1.41421...: a fraction
        "Math. Monthly 77, 259-264 1970.",  # a page range and a year
        "00000010: 4c 01 23 45 67 89 ab cd  L.#Eg...",  # a hex dump's pairs
    ],
)
def test_numbers_among_numbers_are_not_phone_numbers(scanner: DlpScanner, text: str) -> None:
    assert not scanner.scan(text), text


# Dumps made by the tools people paste them from. Random bytes shown as hex hold, per MB, some
# 5 to 20 all-decimal stretches shaped like a phone or card number, and their ASCII column the
# odd email or IPv4 address (measured before this rule: 274 phones, 26 cards, 228 emails and 1
# address in 32 MB of xxd, xxd -g4, hexdump -C and od -x output of 2 MB of random bytes).
DUMPS = {
    "xxd": ["xxd"],
    "xxd -g4": ["xxd", "-g4"],
    "hexdump -C": ["hexdump", "-C"],
    "hexdump": ["hexdump"],
    "od -x": ["od", "-x"],
    "od -A x -t x1z": ["od", "-A", "x", "-t", "x1z"],
}


@pytest.mark.parametrize("tool", sorted(DUMPS))
def test_hex_dumps_hold_no_personal_data(scanner: DlpScanner, tool: str) -> None:
    import shutil
    import subprocess

    argv = DUMPS[tool]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    data = random.Random(f"dump-{tool}").randbytes(256 * 1024)
    dump = subprocess.run(argv, input=data, capture_output=True, check=True).stdout
    assert len(dump) > 512 * 1024
    counts = scanner.scan(dump.decode("latin-1")).counts
    assert not counts, counts


@pytest.mark.parametrize(
    "text",
    [
        "ring 020 7946 0958 cafe",  # a hex word, but no row of groups
        "ring 0430 166 131 abc def 123 ace",  # groups of another width
        "card " + " ".join([CARD[i : i + 4] for i in range(0, 16, 4)]) + " dead beef",
    ],
)
def test_a_number_beside_a_hex_word_is_still_found(scanner: DlpScanner, text: str) -> None:
    assert scanner.scan(text), text


LABELLED = ["Tel.: {}", '{{"phone": "{}"}}', "<fax>{}</fax>", "Telefono {}", "phone_number = '{}'"]


@pytest.mark.parametrize("locale", sorted({*PHONE_FLOORS, "it_IT"}))
def test_every_labelled_phone_number_is_found_whatever_its_form(
    scanner: DlpScanner, locale: str
) -> None:
    """A label says what digits are, so forms with no separator ("0232781286", Italy's
    "3715260189") or local ones ("9487.5749") count there, and only the number is redacted."""
    fake = Faker(locale)
    fake.seed_instance(f"labelled-{locale}")
    for template in LABELLED:
        numbers = [fake.phone_number() for _ in range(100)]
        for number in numbers:
            text = template.format(number)
            redacted, report = scanner.redact(text)
            assert report.counts == {"phone": 1}, text
            # The label stays; an extension ("x256") may too, as it does unlabelled.
            head, tail = template.format("\0").split("\0")
            left = redacted.removeprefix(head).removesuffix(tail)
            assert redacted.startswith(head) and left.startswith("[REDACTED:phone]"), redacted
            assert re.fullmatch(r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?", left[16:]), redacted


@pytest.mark.parametrize(
    "text",
    [
        "call 1234567890 times",  # "call" is not a label
        "hotel 0232781286",  # a label inside a word is not one
        "telemetry 1234567890",
        "SMS_TIMEOUT = 1000000000",
        "phone: 12345",  # too short for a number
        "cell: 0.5772156649",  # a decimal
        "GSM 850/900/1800/1900 MHz",  # frequency bands: GSM is not a label
        "GSM 900 1800 1900",
    ],
)
def test_digits_without_a_label_are_not_phone_numbers(scanner: DlpScanner, text: str) -> None:
    assert not scanner.scan(text), text


@pytest.mark.parametrize(
    "text",
    [
        "h = 120352542776360960*x + 1",  # an operand (found in sympy's tests)
        "x**30 - 1749695026860*x**29",
        "2**4111111111111111",
        "assert ae(v.real, 287512180321448.45408)",  # a decimal's integer part
        "archived at https://web.archive.org/web/20160313023044/",  # a timestamp: no issuer
        "S(517091313866043)/11",  # 15 digits from Mastercard's range, which issues 16
        "6098 6135 6171 6208 6245 6282 6319",  # a run of number groups (PostScript widths)
        "widths 1983 2002 " + " ".join([CARD[i : i + 4] for i in range(0, 16, 4)]),
        f"Fixes https://oss-fuzz.com/testcase-detail/{CARD}.",  # a record's id in a URL path
        f"([feature](https://chromestatus.com/feature/{CARD}))",
    ],
)
def test_numbers_that_are_not_card_numbers(scanner: DlpScanner, text: str) -> None:
    assert "payment-card" not in scanner.scan(text).counts, text


@pytest.mark.parametrize(
    "text",
    [
        "card " + " ".join([CARD[i : i + 4] for i in range(0, 16, 4)]) + " 1225 123",
        "Order 12 " + " ".join([CARD[i : i + 4] for i in range(0, 16, 4)]),
        CARD + " 1225 123",
        "(" + " ".join([CARD[i : i + 4] for i in range(0, 16, 4)]) + ")",
        f"GET https://shop.example/pay?card={CARD}",  # a URL's query, not its path
        f"saved to /tmp/{CARD}",  # a file path, not a URL
    ],
)
def test_a_card_number_beside_other_numbers_is_still_found(scanner: DlpScanner, text: str) -> None:
    assert scanner.scan(text).counts.get("payment-card") == 1, text


def test_a_hex_dump_inside_json_holds_no_personal_data(scanner: DlpScanner) -> None:
    """A dump in a tool's JSON input is scanned as JSON text too: its lines end at \\n escapes."""
    import shutil
    import subprocess

    if shutil.which("xxd") is None:
        pytest.skip("xxd is not installed")
    data = random.Random("dump-in-json").randbytes(256 * 1024)
    dump = subprocess.run(["xxd"], input=data, capture_output=True, check=True).stdout
    assert not scanner.scan(json.dumps({"dump": dump.decode("latin-1")})).counts


def test_a_value_at_the_very_start_is_judged_on_its_own_line(scanner: DlpScanner) -> None:
    assert scanner.scan("0430 166 131 is my number").counts == {"phone": 1}
    assert scanner.scan("bob@example.com wrote").counts == {"email": 1}
