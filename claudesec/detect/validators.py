"""Validators: the checks a rule's match must pass before it is reported.

Checksums (GitHub/npm CRC32, Luhn, IBAN mod-97), entropy and placeholder tests, and per-format
checks. Each secret validator takes the secret and the whole match (for context such as quotes
or the line); each PII validator takes the matched bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import math
import re
import time
from collections import Counter
from typing import Any, cast
from urllib.parse import unquote_to_bytes

from claudesec.detect.rules import Validator


class _LazyPattern:
    """A module-level regex compiled on first use: most validators never run in a short scan
    (a pre-commit hook), and compiling every pattern cost each start ~20 ms."""

    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern: bytes, flags: int) -> None:
        self._args = (pattern, flags)
        self._compiled: re.Pattern[bytes] | None = None

    def __getattr__(self, name: str) -> Any:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(*self._args)
        return getattr(compiled, name)


def _lazy(pattern: bytes, flags: int = 0) -> re.Pattern[bytes]:
    return cast("re.Pattern[bytes]", _LazyPattern(pattern, flags))


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


# A random key body of n characters drawn from an alphabet of a symbols (a >= 32 for every
# format below; n <= 200) contains, with the probability noted (union bound, per key):
#   a run of 8 equal characters:            n * a**-7           <= 200 * 32**-7 = 5.8e-09
#   8 consecutive letters/digits of one of
#   the _SEQUENCES, forwards or backwards:   n * 5 * 2 * a**-7   <= 5.8e-08 (letters of 1 case)
# Each rule's entropy threshold is set so that P(Shannon entropy < threshold) for its shortest
# body stays below 1e-8, computed exactly over the count partitions of n draws from a symbols:
#   AWS key id (16 of 32) < 2.0: 2.3e-09     GitLab (20 of 64) < 2.8: 2.4e-09
#   Stripe (24 of 62) < 3.0: 3.0e-10          Google OAuth (28 of 64) < 3.2: 6.5e-11
#   Azure hex key (32 of 16) < 2.5: 1.9e-09   Google API key (35 of 64) < 3.5: 1.3e-11
#   Hugging Face (34 of 52) < 3.5: 1.9e-09    Entra secret (38 of 66) < 3.5: 1.2e-13
#   AWS secret (40 of 64) < 3.8: 3.0e-10      claudesec proxy (43 of 64) < 3.8: 1.0e-11
#   longer bodies (Anthropic 93 of 64 < 4.0, Azure 84/86, session tokens): far below these.
# tests/detect/test_placeholder_filters.py checks them on 100,000 generated keys per format.
# Words are no reason to reject a random-format key: "your" alone occurs in ~1 of 10,000
# random base64 bodies of 93 characters, so placeholder words judge only values a person types
# (passwords, assignments), never a key of a fixed random format.
_FILLER_RUN = _lazy(rb"(.)\1{7}")
_FILLER_SEQUENCE = _lazy(
    b"|".join(re.escape(seq[i : i + 8]) for seq in _SEQUENCES for i in range(len(seq) - 7))
)
# Every 8-character window of a sequence holds one of its 4-character blocks that start at a
# multiple of 4 ("abcd", "efgh", ...): a few substring tests rule most values out before the
# regex of every window runs.
_SEQUENCE_BLOCKS = tuple(seq[i : i + 4] for seq in _SEQUENCES for i in range(0, len(seq) - 3, 4))


def _has_filler_sequence(value: bytes) -> bool:
    if not any(block in value for block in _SEQUENCE_BLOCKS):
        return False
    return _FILLER_SEQUENCE.search(value) is not None


# Human-typed values: the old, looser tests (runs of 6, sequences of 6, placeholder words).
_TYPED_RUN = _lazy(rb"(.)\1{5}")
_TYPED_SEQUENCE = _lazy(
    b"|".join(re.escape(seq[i : i + 6]) for seq in _SEQUENCES for i in range(len(seq) - 5))
)


def is_placeholder(value: bytes, *, min_entropy: float = 3.0, typed: bool = True) -> bool:
    """Whether ``value`` is obviously not a real secret: a template, filler or a low-entropy run.

    ``typed`` values are written by people (passwords, assignments): placeholder words, runs of
    6 and alphabet sequences of 6 reject them. A key of a fixed random format (``typed=False``)
    is rejected only for what random material of that format cannot show (see the
    probabilities above): a run of 8, a sequence of 8, or an entropy below ``min_entropy``.
    """
    if typed:
        lowered = value.lower()
        if any(word in lowered for word in _PLACEHOLDER_WORDS):
            return True
        if _TYPED_RUN.search(value) or _TYPED_SEQUENCE.search(value):
            return True
    elif _FILLER_RUN.search(value) or _has_filler_sequence(value):
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
_WORD_TOKEN = _lazy(rb"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_LETTER = _lazy(rb"[A-Za-z]")
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


# Digits and symbols people put in place of letters (`P@ssW0rd`, `Sup3rS3cr3t`).
_LEET = bytes.maketrans(b"0134@$57!", b"oieaasstl")


def is_wordy(value: bytes) -> bool:
    """Whether ``value`` is mostly dictionary words (at least 3/4 of its letters, 2+ words),
    also when letters are written as digits or symbols (`N3wP@ssW0rd`)."""
    if _is_wordy(value):
        return True
    leet = value.translate(_LEET)
    return leet != value and _is_wordy(leet)


def _is_wordy(value: bytes) -> bool:
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
    """A key of a fixed random format: rejected only as filler (see :func:`is_placeholder`)."""

    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        return not is_placeholder(secret[prefix_len:], min_entropy=min_entropy, typed=False)

    return check


def anthropic_body(secret: bytes, match: re.Match[bytes]) -> bool:
    """The random body after ``sk-ant-<kind><version>-`` (the version may have 2-4 digits)."""
    body = secret.split(b"-", 3)[3]
    return not is_placeholder(body, min_entropy=4.0, typed=False)


def random_tail(min_entropy: float, separator: bytes = b"_") -> Validator:
    """A key whose random body follows the last ``separator`` of its prefix (``sk_live_``)."""

    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        body = secret.rsplit(separator, 1)[-1]
        return not is_placeholder(body, min_entropy=min_entropy, typed=False)

    return check


def prefixed_body(prefixes: tuple[bytes, ...], min_entropy: float) -> Validator:
    """A key made of one of ``prefixes`` and a random body."""

    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        prefix = next((p for p in prefixes if secret.startswith(p)), b"")
        body = secret[len(prefix) :]
        return not is_placeholder(body, min_entropy=min_entropy, typed=False)

    return check


def bedrock_key(secret: bytes, match: re.Match[bytes]) -> bool:
    """An Amazon Bedrock API key: ``ABSK`` + base64 of ``BedrockAPIKey-<id>:<secret>``
    (long-term), or ``bedrock-api-key-`` + base64 of a presigned bedrock URL (short-term)."""
    encoded = secret[4:] if secret.startswith(b"ABSK") else secret[len(b"bedrock-api-key-") :]
    try:
        decoded = base64.b64decode(encoded + b"=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    if decoded.startswith(b"BedrockAPIKey-"):
        _, sep, key = decoded.partition(b":")
        return bool(sep) and not is_placeholder(key, min_entropy=3.5, typed=False)
    if decoded.startswith(b"bedrock.amazonaws.com"):
        return b"X-Amz-Signature=" in decoded or b"X-Amz-Security-Token=" in decoded
    return False


def mixed_case_random(prefix_len: int, min_entropy: float) -> Validator:
    """Random base62/base64 bodies have upper, lower and (almost always) digits."""

    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        body = secret[prefix_len:]
        # P(no lower or no upper letter) for 24+ random base62 characters <= 2 * (36/62)**24
        # = 4.6e-06: a true format property only for bodies of 40+ characters (6.8e-10).
        if not (re.search(rb"[a-z]", body) and re.search(rb"[A-Z]", body)):
            return False
        return not is_placeholder(body, min_entropy=min_entropy, typed=False)

    return check


def aws_secret(secret: bytes, match: re.Match[bytes]) -> bool:
    if not (re.search(rb"[a-z]", secret) and re.search(rb"[A-Z]", secret)):
        # A 40-char hex digest (git SHA) is not an AWS secret key. P(a random 40-char base64
        # body lacks a lower or an upper letter) = 2 * (38/64)**40 = 1.8e-09.
        return False
    # AWS documentation marks its keys `...EXAMPLEKEY`: P(a random 40-char base64 secret
    # holds "EXAMPLE") = 34 * 64**-7 = 7.7e-12.
    if b"EXAMPLE" in secret:
        return False
    return not is_placeholder(secret, min_entropy=3.8, typed=False)


def aws_key_id(secret: bytes, match: re.Match[bytes]) -> bool:
    # Documentation ids end in EXAMPLE: P(in 16 random base32 characters) = 10 * 32**-7 = 2.9e-10.
    if b"EXAMPLE" in secret:
        return False
    return not is_placeholder(secret[4:], min_entropy=2.0, typed=False)


def _b64_json(part: bytes) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4)))
    except (ValueError, binascii.Error):
        return None


def jwt(secret: bytes, match: re.Match[bytes]) -> bool:
    """A signed token: its header names a real algorithm and its payload is a JSON object.

    Registered claims are not required: many issued tokens carry only custom claims (a user id,
    a role), and a replayable token is a credential whatever its claims are called.
    """
    header, payload, signature = secret.split(b".", 2)
    decoded = _b64_json(header)
    if not (isinstance(decoded, dict) and "alg" in decoded and decoded.get("alg") != "none"):
        return False
    claims = _b64_json(payload)
    if not (isinstance(claims, dict) and claims):
        return False
    alg = decoded["alg"]
    if isinstance(alg, str):
        # A signature of the wrong length for its algorithm is refused by every verifier: a
        # hand-edited string, not an issued token. Issued tokens always have the length
        # (RFC 7518 3.2, 3.4; RFC 8037): false rejections 0, by construction.
        lengths = _SIGNATURE_CHARS.get(alg)
        if lengths is not None and len(signature) not in lengths:
            return False
        if alg in _HMAC and _signed_with_published_key(header, payload, signature, _HMAC[alg]):
            return False
    # An expired token is refused by every verifier (RFC 7519 4.1.4): it can no longer be
    # replayed, so it is no credential. Test suites and docs are full of them. A token with no
    # `exp`, or one not yet past, is reported.
    expiry = claims.get("exp")
    return not (
        isinstance(expiry, int | float)
        and not isinstance(expiry, bool)
        and expiry < time.time() - _CLOCK_SKEW_S
    )


# Verifiers accept a token this long past its `exp` (clock skew), so it is still usable then.
_CLOCK_SKEW_S = 300

# Unpadded base64url length of the signature of each fixed-length algorithm (RSA's depends on
# the key, so RS*/PS* are not checked): HMAC-SHA2 32/48/64 bytes, ECDSA 2 x 32/48/66 bytes,
# EdDSA 64 (Ed25519) or 114 (Ed448) bytes.
_SIGNATURE_CHARS: dict[str, tuple[int, ...]] = {
    "HS256": (43,),
    "HS384": (64,),
    "HS512": (86,),
    "ES256": (86,),
    "ES256K": (86,),
    "ES384": (128,),
    "ES512": (176,),
    "EdDSA": (86, 152),
}
_HMAC = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}
# Signing keys printed in JWT libraries' READMEs and jwt.io (its default key, node-jsonwebtoken's
# `shhhhh`, python-jose's and PyJWT's `secret`), the first words a JWT cracker tries. A token
# signed with one can be minted by anyone, so finding it leaks nothing (the weak key is the
# service's flaw, not a leak). False rejection of a token signed with any other key: one HMAC
# collision, len(_PUBLISHED_KEYS) * 2**-256 per token.
_PUBLISHED_KEYS = (
    b"",
    b"secret",
    b"your-256-bit-secret",
    b"your-384-bit-secret",
    b"your-512-bit-secret",
    b"shhhhh",
    b"secretkey",
    b"secret_key",
    b"secret-key",
    b"mysecret",
    b"my-secret",
    b"supersecret",
    b"key",
    b"password",
    b"changeme",
    b"test",
    b"jwt",
    b"123456",
    b"1234567890",
)


def _signed_with_published_key(header: bytes, payload: bytes, signature: bytes, hash_: str) -> bool:
    try:
        wanted = base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
    except (ValueError, binascii.Error):
        return False
    message = header + b"." + payload
    return any(
        hmac.compare_digest(hmac.new(key, message, hash_).digest(), wanted)
        for key in _PUBLISHED_KEYS
    )


# ----------------------------------------------------------------- private keys
#
# A private key is recognised by its structure, not by how random its text looks: the base64
# body of a real key decodes to a DER SEQUENCE whose length field covers exactly the decoded
# bytes (PKCS#1, PKCS#8, SEC1, DSA, encrypted PKCS#8), to the `openssh-key-v1` record, or to an
# OpenPGP packet. Every key the tools write passes (false rejections: 0, by construction);
# filler ("AAAA...", "...", a truncated line) fails. An OpenSSH body always holds runs like
# `AAAAAA` (big-endian lengths), which is why no randomness test may judge it.

_PEM_LINE_BREAK = _lazy(rb"\\{1,3}[nr]|\s")
_PEM_HEADER_FIELD = _lazy(rb"(?m)^[ \t]*[A-Za-z-]{2,30}:[^\n\\]*")
_PEM_ARMOR = _lazy(rb"-----(?:BEGIN|END) ([A-Z0-9 ]*?)PRIVATE KEY(?: BLOCK)?-----")
_PGP_CHECKSUM = _lazy(rb"(?:\\{1,3}[nr]|\s)=[A-Za-z0-9+/]{4}\s*$")
_PPK_FIELD = _lazy(rb"(?m)^(Encryption|Private-Lines|Private-MAC):[ \t]*(\S+)")


def _der_sequence(data: bytes) -> bool:
    """Whether ``data`` is exactly one DER SEQUENCE (tag 0x30 with a length covering the rest)."""
    if len(data) < 16 or data[0] != 0x30:
        return False
    first = data[1]
    if first < 0x80:
        return 2 + first == len(data)
    width = first & 0x7F
    if not 1 <= width <= 3:
        return False
    return 2 + width + int.from_bytes(data[2 : 2 + width], "big") == len(data)


def _openssh_encrypted(data: bytes) -> bool | None:
    """None unless ``data`` is an openssh-key-v1 record; else whether its cipher is not none."""
    magic = b"openssh-key-v1\0"
    if not data.startswith(magic) or len(data) < len(magic) + 4:
        return None
    size = int.from_bytes(data[len(magic) : len(magic) + 4], "big")
    cipher = data[len(magic) + 4 : len(magic) + 4 + size]
    if not 1 <= size <= 64 or len(cipher) != size:
        return None
    return cipher != b"none"


def private_key_state(secret: bytes) -> bool | None:
    """None when ``secret`` is not a private key as a tool writes it; else whether it is
    encrypted (a passphrase protects it)."""
    if secret.startswith(b"PuTTY-User-Key-File-"):
        fields = {m.group(1): m.group(2) for m in _PPK_FIELD.finditer(secret)}
        mac = fields.get(b"Private-MAC", b"")
        if b"Private-Lines" not in fields or not re.fullmatch(rb"[0-9a-f]{40,64}", mac):
            return None
        return fields.get(b"Encryption", b"none") != b"none"
    armor = _PEM_ARMOR.match(secret)
    if armor is None:
        return None
    label = armor.group(1)
    inner = secret[armor.end() : secret.rfind(b"-----END")]
    encrypted_header = b"ENCRYPTED" in inner and b"Proc-Type" in inner
    if b"PGP" in label:
        inner = _PGP_CHECKSUM.sub(b"", inner)
    body = _PEM_LINE_BREAK.sub(b"", _PEM_HEADER_FIELD.sub(b"", _unescape_lines(inner)))
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    if b"OPENSSH" in label:
        return _openssh_encrypted(data)
    if b"PGP" in label:
        # An OpenPGP packet header has its top bit set (RFC 4880 4.2).
        return False if len(data) >= 64 and data[0] & 0x80 else None
    if encrypted_header:
        # Legacy OpenSSL encryption: the body is ciphertext in whole cipher blocks.
        return True if len(data) >= 64 and len(data) % 8 == 0 else None
    if not _der_sequence(data):
        return None
    return b"ENCRYPTED" in label


def _unescape_lines(inner: bytes) -> bytes:
    """Turn escaped line breaks (JSON, YAML, a string in a string) back into newlines."""
    return re.sub(rb"\\{1,3}[nr]", b"\n", inner)


def private_key(secret: bytes, match: re.Match[bytes]) -> bool:
    """A private key nobody protected with a passphrase."""
    return private_key_state(secret) is False


def encrypted_private_key(secret: bytes, match: re.Match[bytes]) -> bool:
    """A private key protected by a passphrase: still worth reporting, at lower severity."""
    return private_key_state(secret) is True


def kubeconfig_key(secret: bytes, match: re.Match[bytes]) -> bool:
    """``client-key-data``: base64 of a PEM private key."""
    try:
        decoded = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        return False
    return private_key_state(decoded.strip()) is not None


# ----------------------------------------------------------------- passwords people type

_TRIVIAL = frozenset(
    {b"password", b"passwd", b"pass", b"secret", b"pwd", b"token", b"none", b"null", b"changeme"}
)


_LANGUAGE_LITERALS = frozenset(
    {b"none", b"null", b"nil", b"true", b"false", b"undefined", b"empty", b"required"}
)


def typed_password(value: bytes, user: bytes = b"") -> bool:
    """Whether ``value`` could be a real password: not a template, filler, a bare word, a code
    literal or identifier, nor the user name again (`test:test`)."""
    if len(value) < 6 or value.lower() in _TRIVIAL or value.lower() in _LANGUAGE_LITERALS:
        return False
    if value.startswith((b"$", b"%", b"{", b"<", b"*", b":", b"@", b"#")):
        return False  # ${VAR}, %(name)s, {{ var }}, <password>, ****
    if user and value == user:
        return False
    if value.isalpha() and (len(value) <= 8 or value.islower()):
        return False  # a bare word, or a variable in code (`password=passwd`)
    if is_identifier(value) or not all(32 < c < 127 for c in value):
        return False
    if is_placeholder(value, min_entropy=1.5):
        return False
    return not is_wordy(value)


# A value made of identifier parts: snake/kebab/dotted groups that are each a word (perhaps
# versioned: `wafv2`, `ec2`) or a number (`subject_token_0`, `aws_wafv2_api_key`,
# `TEST_SLACK_API_KEY_SECRET_VERSION_2`, `_IMDSV2_SESSION_TOKEN_TTL`), or a
# CamelCase type name (`Ec2InstanceMetadata`). Random secrets mix letters and digits inside one
# group, so they do not take this shape.
_ID_GROUP = _lazy(rb"[A-Za-z]+[0-9]{0,2}|[0-9]+|[A-Za-z0-9]{1,3}")
_CAMEL = _lazy(rb"(?:[A-Z][a-z]+[0-9]*){2,}\Z")
# A lowerCamelCase name (`exchangeRecaptchaV3Token`, `getAccessToken2`): a lower-case word,
# then humps that are words, a letter with a version number, or a short acronym.
_LOWER_CAMEL = _lazy(
    rb"[a-z]{2,}(?:[A-Z][a-z]{2,}[0-9]{0,2}|[A-Z][0-9]{1,2}|[A-Z]{2,4}(?![a-z]))+\Z"
)
_CAMEL_WORD = _lazy(rb"[A-Z]?[a-z]+")


def is_identifier(value: bytes) -> bool:
    # CamelCase humps (at least 3/5 lower-case letters) or a lowerCamelCase name, one of whose
    # humps is a dictionary word of 4+ letters. The shapes alone fit random base62 values of
    # 12-40 characters 6 (CamelCase) and 12 (lowerCamel) times in 10,000; with the word, none
    # of 1,000,000 (tests/detect/test_placeholder_filters.py runs 100,000).
    camel = _CAMEL.match(value) and sum(97 <= c <= 122 for c in value) * 5 >= len(value) * 3
    if (camel or _LOWER_CAMEL.match(value)) and _names_a_thing(value):
        return True
    groups = re.split(rb"[_.-]", value)
    if len(groups) < 2:
        return False
    return all(not g or _ID_GROUP.fullmatch(g) for g in groups)


def _names_a_thing(value: bytes) -> bool:
    """Whether one camelCase word of ``value`` (4+ letters) is a dictionary word."""
    return any(len(word) >= 4 and word.lower() in _WORDS for word in _CAMEL_WORD.findall(value))


def _basic_pair(encoded: bytes) -> tuple[bytes, bytes] | None:
    """The user and password of a base64 ``user:password`` pair, or None."""
    try:
        decoded = base64.b64decode(encoded + b"=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep or not user or not password or not decoded.isascii():
        return None
    if not all(32 < c < 127 for c in decoded):
        return None
    return user, password


def basic_auth(secret: bytes, match: re.Match[bytes]) -> bool:
    """HTTP Basic credentials or a docker ``auth``: base64 of ``user:password``."""
    pair = _basic_pair(secret)
    if pair is None or _digest(secret) in _PUBLIC_EXAMPLES:
        return False
    return typed_password(pair[1], pair[0])


def bearer_token(secret: bytes, match: re.Match[bytes]) -> bool:
    """An opaque bearer token: long, mixed letters and digits, not a variable or a path."""
    if len(secret) < 20 or _CODE_VALUE.match(secret):
        return False
    if not (re.search(rb"[0-9]", secret) and re.search(rb"[A-Za-z]", secret)):
        return False
    return not (is_placeholder(secret, min_entropy=3.5) or is_wordy(secret))


def npmrc_auth(secret: bytes, match: re.Match[bytes]) -> bool:
    """``_authToken`` (an opaque token), ``_auth`` (base64 user:password) or ``_password``
    (base64 of the password) in an .npmrc."""
    field = match.group("field")
    if field == b"_auth":
        return basic_auth(secret, match)
    if field == b"_password":
        try:
            password = base64.b64decode(secret + b"=" * (-len(secret) % 4), validate=True)
        except (binascii.Error, ValueError):
            return False
        return password.isascii() and typed_password(password)
    return len(secret) >= 16 and not is_placeholder(secret, min_entropy=3.0)


def password_value(secret: bytes, match: re.Match[bytes]) -> bool:
    """A password field of a credential file (.netrc, .pypirc, curl -u, a connection string)."""
    return typed_password(secret)


# Words that make a line a database connection string (JDBC, ODBC, ADO.NET, libpq).
_CONNECTION_CONTEXT = _lazy(
    rb"(?i)jdbc:|odbc|driver\s*=|server\s*=|data source\s*=|host\s*=|user ?id\s*=|uid\s*="
    rb"|database\s*=|initial catalog\s*=|dbname\s*="
)


def connection_string_password(secret: bytes, match: re.Match[bytes]) -> bool:
    """``Password=...`` inside a connection string: the line must read as one."""
    data = match.string
    line_start = data.rfind(b"\n", 0, match.start()) + 1
    line_end = data.find(b"\n", match.end())
    line = data[line_start : line_end if line_end != -1 else len(data)]
    before = data[max(line_start, match.start() - 1) : match.start()]
    if (
        before not in (b";", b"?", b"&", b'"', b"'", b" ", b"\t", b"")
        and line_start != match.start()
    ):
        return False
    # A keyword argument in code (`f(host=None, password=None):`) runs up to the call's
    # closing punctuation: judge the value without it, so a literal or a name is seen as one.
    # A real password keeps its own characters and is judged as before.
    value = secret.rstrip(b"),]}:")
    return bool(_CONNECTION_CONTEXT.search(line)) and typed_password(value)


def kubernetes_secret(secret: bytes, match: re.Match[bytes]) -> bool:
    """A ``kind: Secret`` manifest's data: one value decodes (``data``) or reads (``stringData``)
    as a plausible secret."""
    string_data = match.group("field") == b"stringData"
    for line in secret.splitlines():
        _, sep, value = line.partition(b":")
        value = value.strip().strip(b"\"'")
        if not sep or not value:
            continue
        if not string_data:
            try:
                value = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
        if len(value) >= 8 and value.isascii() and typed_password(value.strip()):
            return True
    return False


# Public sample keys that documentation and SDKs ship (firebase-android-sdk examples, the
# same list other scanners allow). Kept as truncated SHA-256 digests so no key-shaped literal
# sits in this repository.
_GOOGLE_SAMPLE_KEYS = frozenset(
    {
        "f56e323494a6ffc2064e7a955908957d",
        "2037abcaffb2b77785da716cf7ccff4f",
        "3f370c9dd8225c63b5c77de1f785edc9",
        "e4a5542bb7fd7b67e943c71ad29c34b5",
        "a19f89ab3555eac10c40741f6df79ecf",
        "0b476bdf9acf2123d547b5ae76f1e598",
        "eb540d2b6ee2a0a47c5779bc8a014178",
        "37f8f09bdf12c2f2eae4ead7273a62dd",
        "8731261cb72d86267a32a532ebd3df42",
        "49f777db995e8260da7ca9ffdf0c08d6",
        "27a9a42931dff7eb2f8434e20a9bce97",
        "dc0fcf046c61640cbd1e8b999ada3262",
    }
)


# Credentials published as documentation or emulator defaults, usable by nobody: the Azurite /
# Azure Storage Emulator account key (Microsoft documents it for every developer), RFC 6749's
# example client credentials (section 2.3.1), access token and refresh token (section 5.1),
# and the TOTP secret of the Google Authenticator key-URI documentation. Truncated SHA-256.
_PUBLIC_EXAMPLES = frozenset(
    {
        "0011cc25eb4320717494d2703e8cba85",
        "ca7459e2b26776de081b9a07e40227fd",
        "6c96130f130ab0d6d158397e24d2bcc1",
        "00cf4c781dc37003f7c7dd7d4c9a6ef1",
        "8be5d113c0871ce1a122d68a7dff940a",
    }
)


def _digest(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:32]


def public_example_filtered(inner: Validator) -> Validator:
    """``inner``, except for documented public example credentials."""

    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        return _digest(secret) not in _PUBLIC_EXAMPLES and inner(secret, match)

    return check


def google_api_key(secret: bytes, match: re.Match[bytes]) -> bool:
    if _digest(secret) in _GOOGLE_SAMPLE_KEYS:
        return False
    return not is_placeholder(secret[4:], min_entropy=3.5, typed=False)


# Domains reserved for documentation (RFC 2606, RFC 6761): credentials for them cannot work.
_DOC_HOST = _lazy(
    rb"(?i)(?:[a-z0-9-]+\.)*(?:example(?:\.(?:com|net|org))?|[a-z0-9-]+\.(?:test|invalid))\.?$"
)


def url_password(secret: bytes, match: re.Match[bytes]) -> bool:
    if _DOC_HOST.match(match.group("host")):
        return False
    return typed_password(unquote_to_bytes(secret), unquote_to_bytes(match.group("user")))


_LINE_PREFIX = _lazy(
    rb"[ \t]*(?:-[ \t]+)?(?:export[ \t]+|ENV[ \t]+|ARG[ \t]+|set[ \t]+|setx[ \t]+)?[\"']?\Z"
)
_CODE_VALUE = _lazy(rb"^(?:[A-Za-z_][A-Za-z0-9_]*\.)+[A-Za-z_][A-Za-z0-9_]*$")
_NOT_SECRETS = frozenset(
    {b"true", b"false", b"null", b"none", b"undefined", b"required", b"optional", b"string"}
)


# Formats a specific rule recognises by their prefix: when that rule rejects a value (a public
# sample, a bad checksum, filler), the generic rule must not report it under another name.
_OWNED_PREFIXES = (
    b"sk-ant-",
    b"eyJ",
    b"AIza",
    b"ghp_",
    b"gho_",
    b"ghu_",
    b"ghs_",
    b"ghr_",
    b"github_pat_",
    b"glpat-",
    b"xox",
    b"xapp-",
    b"sk_live_",
    b"sk_test_",
    b"rk_live_",
    b"rk_test_",
    b"whsec_",
    b"npm_",
    b"hf_",
    b"pypi-",
    b"csp_",
    b"AKIA",
    b"ASIA",
    b"ya29.",
    b"GOCSPX-",
    b"ABSK",
    b"bedrock-api-key-",
)
# An account or principal (`svc@project.iam.gserviceaccount.com`, URL-encoded `%40` in a
# signed URL's credential scope): it names who, not the secret.
_IDENTITY = _lazy(rb"(?:@|%40)[A-Za-z0-9-]+\.[A-Za-z]{2,}")
_UUID = _lazy(rb"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TIMESTAMP = _lazy(rb"^\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d)?")
# Names that contain "token"/"secret"/"key" but hold no credential.
_NOT_CREDENTIAL_NAMES = _lazy(
    rb"(?i)(?:next|page|pagination|continuation|change|client|idempotency|sync|csrf|xsrf|"
    rb"cancel|refresh_?token_?expir|max_?|num_?|n_)_?tokens?$|tokeni[sz]er|token_?type"
    # Paging and concurrency tokens (`nextSequenceToken`, `PolicyUpdateToken`) are cursors.
    rb"|(?:next|sequence|update|continuation|cursor|marker|page)[A-Za-z]{0,20}token$"
    rb"|tokens?_?(?:count|limit|len|length|id|ids|type|url|uri|endpoint|path|file|name)$"
    rb"|secret_?(?:name|arn|id|ref|path|key_?ref)$|password_?(?:file|field|policy|hash|prompt)$"
    rb"|key_?(?:id|name|file|path|ref)$|_?(?:hash|hashed|digest|sha\d*|checksum|fingerprint)$"
    # What names a credential rather than holding it (`ServiceSpecificCredentialId`,
    # `api_key_name`, `secretVersion`).
    rb"|(?:credentials?|secret|token|api_?key|password)_?(?:ids?|arns?|names?|types?|status"
    rb"|versions?|labels?|aliases|alias|expir\w*|created\w*|ttl|kind|field|env|var)$"
    # Domain-ownership tokens (SES, IPAM, site verification) are published in DNS TXT records.
    rb"|verification_?token$"
)


def assignment(secret: bytes, match: re.Match[bytes]) -> bool:
    """Accept ``NAME = "value"``, ``NAME=value`` on its own line, or ``?name=value&`` in URLs."""
    # Cheap value checks first: most candidates in source code fail here.
    if len(secret) < 12 or not any(48 <= c <= 57 for c in secret):
        return False  # no digit: identifiers, header names, prose
    if secret.lower() in _NOT_SECRETS or _UUID.match(secret) or _TIMESTAMP.match(secret):
        return False
    if _CODE_VALUE.match(secret) or secret.startswith((b"/", b"./", b"~", b"http", b"arn:")):
        return False
    if secret.startswith(_OWNED_PREFIXES):
        return False  # a specific rule owns this format and already judged it
    if _digest(secret) in _PUBLIC_EXAMPLES:
        return False
    if secret.isdigit() or is_identifier(secret) or _IDENTITY.search(secret):
        return False  # a sequence number, an identifier or type name, an email or principal
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
    # A generated secret of 12+ characters has an entropy near log2 of its alphabet (3.6+ for
    # 12 hex digits); what falls below is a person's example value.
    return not (is_placeholder(secret, min_entropy=3.5) or is_wordy(secret))


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


_ANY = frozenset(range(13, 20))
# Issuer number ranges and the lengths each issues (ISO/IEC 7812 IINs as the networks publish
# them): (first digits from, to, lengths). A number outside them is not a card however its
# Luhn digit falls: "20160313023044" is a timestamp (no network issues 14 digits from 2016),
# "517091313866043" a constant (Mastercard issues 16).
_ISSUER_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (2014, 2014, frozenset({15})),  # enRoute
    (2131, 2131, frozenset({15})),  # JCB's 15-digit numbers
    (2149, 2149, frozenset({15})),  # enRoute
    (2200, 2204, frozenset({16, 17, 18, 19})),  # Mir
    (2221, 2720, frozenset({16})),  # Mastercard
    (300, 305, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club, Carte Blanche
    (3095, 3095, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club
    (34, 34, frozenset({15})),  # American Express
    (35, 35, frozenset({16, 17, 18, 19})),  # JCB (3528-3589; test generators use all of 35)
    (36, 36, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club International
    (37, 37, frozenset({15})),  # American Express
    (38, 39, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (50, 50, _ANY),  # Maestro, Verve, Dankort
    (51, 55, frozenset({16})),  # Mastercard
    (56, 59, _ANY),  # Maestro
    (60, 69, _ANY),  # Discover, UnionPay, Maestro, RuPay, InterPayment, Troy
)


def card_issued(digits: str) -> bool:
    """Whether some network issues card numbers of this length from this range."""
    length = len(digits)
    for low, high, lengths in _ISSUER_RANGES:
        if length in lengths and low <= int(digits[: len(str(low))]) <= high:
            return True
    return False


def card_valid(value: bytes) -> bool:
    digits = value.translate(None, b" -").decode("ascii")
    if not 13 <= len(digits) <= 19 or not card_issued(digits):
        return False
    if len(set(digits)) < 2:
        return False  # a run of one digit is filler
    if b" " in value and b"-" in value:
        return False  # "1234-5678 9012 3456" is a list of numbers, not a card
    if not _card_layout(value):
        return False
    return luhn_valid(digits)


# How issuers print grouped numbers: fours (the last group shorter on 13- and 19-digit cards),
# or Amex's and Diners' 4-6-5 and 4-6-4. Any other grouping is something else: "12345678-
# 1234-1234" is the head of a UUID, "672 4902271607" two numbers side by side.
_WIDE_LAYOUTS = frozenset({(4, 6, 5), (4, 6, 4)})


def _card_layout(value: bytes) -> bool:
    groups = [len(group) for group in value.replace(b"-", b" ").split(b" ")]
    if len(groups) == 1:
        return True
    if tuple(groups) in _WIDE_LAYOUTS:
        return True
    return all(size == 4 for size in groups[:-1]) and 1 <= groups[-1] <= 4


# Each country's IBAN length, from SWIFT's IBAN registry (as of 2025), and the national
# IBAN-format numbers of the countries that use them without being in it yet (Nordea's list).
# An IBAN has exactly its country's length: with the mod-97 check, this is what tells one from
# a run of upper-case hex digits (a "DE90..." inside a hash passes mod 97 one time in 97).
_IBAN_REGISTRY = """
AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24
DE22 DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27
GT28 HN28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20
LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24
PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25
SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30
"""
_IBAN_NATIONAL = """
AO25 BF28 BJ28 CF27 CG27 CI28 CM27 CV25 DZ26 GA27 GQ27 GW25 IR26 KM27 MA28 MG27
ML28 MZ25 NE28 SN28 TD27 TG28
"""  # not (yet) in the registry: IBAN-format numbers in use
IBAN_LENGTHS: dict[str, int] = {
    entry[:2]: int(entry[2:]) for entry in (_IBAN_REGISTRY + _IBAN_NATIONAL).split()
}


def iban_valid(value: str) -> bool:
    """ISO 13616: the country's length, then the first four characters moved to the end,
    letters to 10..35, mod 97 == 1."""
    compact = value.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def iban_bytes_valid(value: bytes) -> bool:
    return iban_valid(value.decode("ascii"))


_DECIMAL = re.compile(rb"\+\d{1,3}\.\d{5}")
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_HEX_GROUP_WIDTHS = (2, 4, 8)
# How far along its line a value's neighbours are looked at (a hex dump line is under 100).
_LINE_REACH = 160


# A dump row: an offset (xxd's "00000010:", od's octal "0000020", WinDbg's "00000000`00401000"),
# then four or more hex groups of 2, 4 or 8 digits (group 1); the ASCII column, if any, follows.
_DUMP_ROW = re.compile(
    rb"[ \t]*(?:[0-9A-Fa-f]{8}`)?[0-9A-Fa-f]{4,16}:?[ \t]+"
    rb"((?:(?:[0-9A-Fa-f]{2}|[0-9A-Fa-f]{4}|[0-9A-Fa-f]{8})[ \t]+){4,})"
)


def _line_around(data: bytes, start: int, end: int) -> tuple[int, int]:
    """Where the line holding ``data[start:end]`` starts and ends, within :data:`_LINE_REACH`.

    A line ends at a newline or at a JSON-escaped one (the two characters ``\\n``): a dump
    pasted into a tool's JSON input is scanned as that text too.
    """
    low = max(0, start - _LINE_REACH)
    escaped = data.rfind(b"\\n", low, start)
    line_start = max(data.rfind(b"\n", low, start) + 1, escaped + 2 if escaped != -1 else 0, low)
    high = min(len(data), end + _LINE_REACH)
    ends = [at for at in (data.find(b"\n", end, high), data.find(b"\\n", end, high)) if at != -1]
    return line_start, min(ends, default=high)


def in_hex_dump(data: bytes, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` is part of a hex dump (``xxd``, ``hexdump -C``, ``od -x``, a
    debugger's memory view) rather than a value someone wrote.

    Random bytes shown as hex hold, per MB of dump, 5 to 20 all-decimal stretches shaped like a
    phone or card number, and their ASCII column the odd "J@hx.VRK" or "94.7.4.0": a developer
    pasting a dump into a prompt was refused for "personal data". Either test suffices:

    * the value is on a dump row (an offset, then four or more hex groups with a letter among
      them), in the groups or in the ASCII column after them;
    * the value's own digit groups stand in a row of same-width hex groups, at least three
      besides its own and one with a letter (a dump pasted without offsets).

    A row of 16 random bytes is all decimal digits with probability (10/16)**32, about 3e-7:
    the share of real dump rows this cannot tell. The cost on real values: one written among
    three same-width groups, one of them a hex word ("0958 cafe babe beef").
    """
    line_start, line_end = _line_around(data, start, end)
    row = _DUMP_ROW.match(data, line_start, line_end)
    if (
        row is not None
        and start >= row.start(1)
        and not row.group(1).replace(b" ", b"").replace(b"\t", b"").isdigit()
    ):
        return True
    groups = data[start:end].replace(b"-", b" ").split()
    width = len(groups[-1]) if groups else 0
    if width not in _HEX_GROUP_WIDTHS or any(len(g) != width for g in groups):
        return False
    neighbours = 0
    lettered = False
    for side in (reversed(data[line_start:start].split()), data[end:line_end].split()):
        for token in side:
            if len(token) != width or token.strip(_HEX_DIGITS):
                break
            neighbours += 1
            lettered = lettered or not token.isdigit()
    return lettered and neighbours >= 3


_GROUP_SEPARATORS = re.compile(rb"[ -]")


def in_number_run(data: bytes, start: int, end: int) -> bool:
    """Whether the grouped number at ``data[start:end]`` is a stretch of a longer run of number
    groups of its width (a table, a PostScript font's glyph widths: "6098 6135 6171 6208 6245
    6282"), two or more groups beyond its own on its line: a card number is written alone.

    One same-width group beside it still counts as a card (a leaked "4111 1111 1111 1111 1225
    123": number, expiry, code). Compact numbers are left alone. Measured on /usr/share/doc:
    1,127 card numbers found in one PostScript manual's number runs before this rule.
    """
    groups = _GROUP_SEPARATORS.split(data[start:end])
    if len(groups) < 2:
        return False
    width = len(groups[0])
    line_start, line_end = _line_around(data, start, end)
    before = _GROUP_SEPARATORS.split(data[line_start:start])
    after = _GROUP_SEPARATORS.split(data[end:line_end])
    beyond = 0
    # A side counts only when a separator touches the value (an empty piece next to it).
    for side in (
        reversed(before[:-1]) if before[-1] == b"" else (),
        after[1:] if after[0] == b"" else (),
    ):
        for token in side:
            if len(token) != width or not token.isdigit():
                break
            beyond += 1
    return beyond >= 2


# What ends a URL in running text, looked for backwards from a value (one rfind each: a
# backwards regex search would cost quadratic time on a long run without any).
_URL_DELIMITERS = (b" ", b"\t", b"\n", b"\r", b'"', b"'", b"<", b">", b"(", b")", b"[", b"]")


def in_url_path(data: bytes, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` is a whole segment of a URL's path
    ("https://oss-fuzz.com/testcase-detail/5390364397928448", ".../feature/5068609911521280"):
    a record's id. On /usr/share/doc all 25 card-shaped numbers left after the issuer table
    were such ids. The price: a card number put in a URL path is not reported.
    """
    if start == 0 or data[start - 1] != 0x2F:  # "/"
        return False
    if end < len(data) and data[end] not in b"/?#.,;:)]>\"' \t\r\n":
        return False
    low = max(0, start - 2048)
    token_start = max(data.rfind(mark, low, start) for mark in _URL_DELIMITERS) + 1
    return data.find(b"://", max(low, token_start), start) != -1


def phone_valid(value: bytes) -> bool:
    digits = sum(48 <= c <= 57 for c in value)
    if _DECIMAL.match(value):
        return False  # "+1.4142135623731" is a number with a fraction, not +1 414 213 5623
    return 8 <= digits <= 15


_LONE_FRACTION = re.compile(rb"\+?\d{1,4}\.\d{5,}")


def labelled_phone_valid(value: bytes) -> bool:
    """A labelled number in any form, but not a decimal ("cell: 0.5772156649")."""
    return phone_valid(value) and _LONE_FRACTION.fullmatch(value) is None


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
