"""Validators: the checks a rule's match must pass before it is reported.

Checksums (GitHub/npm CRC32, Luhn, IBAN mod-97), entropy and placeholder tests, and per-format
checks. Each secret validator takes the secret and the whole match (for context such as quotes
or the line); each PII validator takes the matched bytes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections import Counter
from urllib.parse import unquote_to_bytes

from claudesec.detect.rules import Validator

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PLACEHOLDER_WORDS = (
    b"xxxx",
    b"your",
    b"example",
    b"placeholder",
    b"changeme",
    b"change_me",
    b"change-me",
    b"dummy",
    b"redacted",
    b"sample",
    b"insert",
    b"replace",
    b"****",
    b"....",
    b"<",
    b">",
    b"${",
    b"{{",
    b"%s",
    b"%(",
)
_SEQUENCES = (
    b"abcdefghijklmnopqrstuvwxyz",
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    b"0123456789",
    b"zyxwvutsrqponmlkjihgfedcba",
    b"9876543210",
)


def shannon_entropy(data: bytes) -> float:
    """Bits per character of ``data`` (0 for empty input)."""
    if not data:
        return 0.0
    total = len(data)
    return -sum(c / total * math.log2(c / total) for c in Counter(data).values())


def is_placeholder(value: bytes, *, min_entropy: float = 3.0) -> bool:
    """Whether ``value`` is obviously not a real secret: a template, filler or a low-entropy run."""
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return True
    if re.search(rb"(.)\1{5}", value):  # a real random token almost never repeats 6 times
        return True
    for seq in _SEQUENCES:
        for i in range(len(seq) - 5):
            if seq[i : i + 6] in value:
                return True
    return shannon_entropy(value) < min_entropy


# Words people type into example values, annotations and docs. Values made of them
# ("SomeKindOfPassword123!@#", "PassWordMustBeAtLeast6Chars.", `Ed25519PrivateKey`) are
# written by a human to illustrate; generated secrets are not made of words.
_WORDS = frozenset(
    b"""
    an as at be by do go if in is it me my no of on or so to up us we
    all and any are but can for get has her his how its let new not now one our out own put
    see set she the too two use was way who why yes you about after again also always another
    back because been before being best better both call came come could does done down each
    even every find first from give good great have here high into just keep kind know last
    least like line little long look made make many more most much must name need never next
    number only other over part place right same should show small some such sure take than
    that their them then there these they thing think this those three through time very want
    well were what when where which while will with word work would write year your yours
    access account admin administrator api app application auth authentication authorization
    bearer change char character client code config configuration connection console create
    credential data database default demo dev development dummy enter example fake field file
    generate generated hello internal invalid key local localhost login master mock none pass
    passphrase password phrase private prod production public random real replace root sample
    secret secure server service session signing stage staging string strong super system temp
    test testing token type user username value verify weak welcome world letmein qwerty foo
    bar baz admin guest changeme here goes insert put long short min max chars digits letters
    symbol symbols special upper lower case at least contain contains characters text my our
    """.split()
)
_WORD_TOKEN = re.compile(rb"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_LETTER = re.compile(rb"[A-Za-z]")
_LONGEST_WORD = max(len(w) for w in _WORDS)


def _word_letters(token: bytes) -> tuple[int, int]:
    """(letters covered, words of 3+ letters) of the best split of ``token`` into _WORDS."""
    n = len(token)
    # best[i] = (covered, long words) for token[:i]; letters outside any word cover nothing.
    best: list[tuple[int, int]] = [(0, 0)] * (n + 1)
    for i in range(1, n + 1):
        covered, longs = best[i - 1]
        for j in range(max(0, i - _LONGEST_WORD), i - 1):
            word = token[j:i]
            if word in _WORDS or (len(word) > 3 and word.endswith(b"s") and word[:-1] in _WORDS):
                prev = best[j]
                candidate = (prev[0] + i - j, prev[1] + (i - j >= 3))
                covered, longs = max((covered, longs), candidate)
        best[i] = (covered, longs)
    return best[n]


def is_wordy(value: bytes) -> bool:
    """Whether ``value`` is mostly dictionary words (at least 3/4 of its letters, 2+ words)."""
    letters = len(_LETTER.findall(value))
    if letters < 8:
        return False
    covered = longs = 0
    for token in _WORD_TOKEN.findall(value):
        c, w = _word_letters(token.lower())
        covered += c
        longs += w
    return longs >= 2 and covered * 4 >= letters * 3


def base62_crc32(body: bytes) -> str:
    """GitHub/npm token checksum: CRC32 of the random part, base62, left-padded to 6."""
    number = binascii.crc32(body)
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return digits.rjust(6, "0")


def crc_token(prefix_len: int) -> Validator:
    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        body = secret[prefix_len:]
        return base62_crc32(body[:-6]) == body[-6:].decode("ascii")

    return check


def random_body(prefix_len: int, min_entropy: float) -> Validator:
    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        return not is_placeholder(secret[prefix_len:], min_entropy=min_entropy)

    return check


def mixed_case_random(prefix_len: int, min_entropy: float) -> Validator:
    """Random base62/base64 bodies have upper, lower and (almost always) digits."""

    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        body = secret[prefix_len:]
        if not (re.search(rb"[a-z]", body) and re.search(rb"[A-Z]", body)):
            return False
        return not is_placeholder(body, min_entropy=min_entropy)

    return check


def aws_secret(secret: bytes, match: re.Match[bytes]) -> bool:
    if not (re.search(rb"[a-z]", secret) and re.search(rb"[A-Z]", secret)):
        return False  # a 40-char hex digest (git SHA) is not an AWS secret key
    return not is_placeholder(secret, min_entropy=3.8)


def aws_key_id(secret: bytes, match: re.Match[bytes]) -> bool:
    return not is_placeholder(secret[4:], min_entropy=2.5)


def _b64_json(part: bytes) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4)))
    except (ValueError, binascii.Error):
        return None


# RFC 7519 registered claims. A token that grants access says who (sub), for whom (aud), by
# whom (iss) or until when (exp, iat, nbf): one with none of them, such as `{"some": "payload"}`,
# is a README demonstration of the encoding, not a session anyone could replay.
_JWT_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})


def jwt(secret: bytes, match: re.Match[bytes]) -> bool:
    header, payload, _ = secret.split(b".", 2)
    decoded = _b64_json(header)
    if not (isinstance(decoded, dict) and "alg" in decoded and decoded.get("alg") != "none"):
        return False
    claims = _b64_json(payload)
    return not isinstance(claims, dict) or not _JWT_CLAIMS.isdisjoint(claims)


def pem(secret: bytes, match: re.Match[bytes]) -> bool:
    body = re.sub(rb"\\[nr]|\s|-----[A-Z0-9 ]+-----|[A-Za-z-]+:[^\n\\]*", b"", secret)
    if len(body) < 64:
        return False
    return not is_placeholder(body, min_entropy=4.0)


# Domains reserved for documentation (RFC 2606, RFC 6761): credentials for them cannot work.
_DOC_HOST = re.compile(
    rb"(?i)(?:[a-z0-9-]+\.)*(?:example(?:\.(?:com|net|org))?|[a-z0-9-]+\.(?:test|invalid))\.?$"
)


def url_password(secret: bytes, match: re.Match[bytes]) -> bool:
    lowered = secret.lower()
    if lowered in (b"password", b"passwd", b"pass", b"secret", b"pwd", b"token", b"none"):
        return False
    if secret.startswith((b"$", b"%", b"{", b"<", b"*", b":")):
        return False
    if _DOC_HOST.match(match.group("host")):
        return False
    if is_placeholder(secret, min_entropy=1.5):
        return False
    return not is_wordy(unquote_to_bytes(secret))


_LINE_PREFIX = re.compile(
    rb"[ \t]*(?:-[ \t]+)?(?:export[ \t]+|ENV[ \t]+|ARG[ \t]+|set[ \t]+|setx[ \t]+)?[\"']?\Z"
)
_CODE_VALUE = re.compile(rb"^(?:[A-Za-z_][A-Za-z0-9_]*\.)+[A-Za-z_][A-Za-z0-9_]*$")
_NOT_SECRETS = frozenset(
    {b"true", b"false", b"null", b"none", b"undefined", b"required", b"optional", b"string"}
)


_UUID = re.compile(
    rb"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_TIMESTAMP = re.compile(rb"^\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d)?")
# Names that contain "token"/"secret"/"key" but hold no credential.
_NOT_CREDENTIAL_NAMES = re.compile(
    rb"(?i)(?:next|page|pagination|continuation|change|client|idempotency|sync|csrf|xsrf|"
    rb"cancel|refresh_?token_?expir|max_?|num_?|n_)_?tokens?$|tokeni[sz]er|token_?type"
    rb"|tokens?_?(?:count|limit|len|length|id|ids|type|url|uri|endpoint|path|file|name)$"
    rb"|secret_?(?:name|arn|id|ref|path|key_?ref)$|password_?(?:file|field|policy|hash|prompt)$"
    rb"|key_?(?:id|name|file|path|ref)$|_?(?:hash|hashed|digest|sha\d*|checksum|fingerprint)$"
    # Domain-ownership tokens (SES, IPAM, site verification) are published in DNS TXT records.
    rb"|verification_?token$"
)


def assignment(secret: bytes, match: re.Match[bytes]) -> bool:
    """Accept ``NAME = "value"``, ``NAME=value`` on its own line, or ``?name=value&`` in URLs."""
    # Cheap value checks first: most candidates in source code fail here.
    if len(secret) < 10 or not any(48 <= c <= 57 for c in secret):
        return False  # no digit: identifiers, header names, prose
    if secret.lower() in _NOT_SECRETS or _UUID.match(secret) or _TIMESTAMP.match(secret):
        return False
    if _CODE_VALUE.match(secret) or secret.startswith(
        (b"/", b"./", b"~", b"http", b"sk-ant-", b"arn:", b"eyJ")
    ):
        return False
    data = match.string
    quote = match.group("q")
    end = match.end()
    follow = data[end : end + 1]
    name_end = match.end("name")
    name_start = match.start()
    # Extend the name backwards over identifier characters (MY_SERVICE_API_KEY). The bound
    # depends on where the name ends, not where the keyword was seen, so every keyword inside
    # one name (`secret_token`) gives the same verdict.
    while name_start > 0 and name_start > name_end - 72:
        ch = data[name_start - 1 : name_start]
        if not (ch.isalnum() or ch in b"_.-"):
            break
        name_start -= 1
    if _NOT_CREDENTIAL_NAMES.search(data[name_start:name_end]):
        return False
    if data[max(0, name_start - 2) : name_start] == b"::":
        # `AWS::SecretsManager::Secret`, `Foo::TOKEN`: a qualified type or schema name. Data
        # files map those to schema hashes and descriptors; a credential goes in a variable.
        return False
    if quote:
        if data[end : end + len(quote)] != quote:
            return False  # not a complete string literal (an f-string, a concatenation)
    else:
        line_start = data.rfind(b"\n", 0, name_start) + 1
        prefix = data[line_start:name_start]
        before = data[name_start - 1 : name_start] if name_start else b""
        if _LINE_PREFIX.match(prefix) is not None:
            if follow not in (b"", b"\n", b"\r", b" ", b"\t", b"#"):
                return False
        elif before in (b"?", b"&"):
            if follow not in (b"", b"&", b"#", b" ", b"\n", b"\r", b'"', b"'"):
                return False
        else:
            return False
    return not (is_placeholder(secret, min_entropy=3.2) or is_wordy(secret))


# --------------------------------------------------------------------------- PII


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by every payment card number."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_valid(value: bytes) -> bool:
    digits = value.translate(None, b" -").decode("ascii")
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456":
        return False  # issuers: 2/5 Mastercard, 3 Amex/Diners/JCB, 4 Visa, 6 Discover/UnionPay
    if len(set(digits)) < 2:
        return False  # a run of one digit is filler
    if b" " in value and b"-" in value:
        return False  # "1234-5678 9012 3456" is a list of numbers, not a card
    return luhn_valid(digits)


def iban_valid(value: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 == 1."""
    compact = value.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def iban_bytes_valid(value: bytes) -> bool:
    return iban_valid(value.decode("ascii"))


def phone_valid(value: bytes) -> bool:
    digits = sum(48 <= c <= 57 for c in value)
    return 8 <= digits <= 15


def ipv4_valid(value: bytes) -> bool:
    parts = value.split(b".")
    return len(parts) == 4 and all(int(p) <= 255 and (p == b"0" or p[:1] != b"0") for p in parts)


def ipv6_valid(value: bytes) -> bool:
    try:
        ipaddress.IPv6Address(value.decode("ascii"))
    except ValueError:
        return False
    groups = [g for g in value.split(b":") if g]
    # "d::" (from C++'s std::vector) and "a::b" parse as addresses; real ones carry more.
    return len(groups) >= 2 and sum(len(g) for g in groups) >= 5


def ssn_valid(value: bytes) -> bool:
    area, group, serial = value.split(b"-")
    return (
        area not in (b"000", b"666") and area[:1] != b"9" and group != b"00" and serial != b"0000"
    )
