"""Placeholder filters never reject real keys: 100,000 keys of each random format, generated
in that format (seeded), all pass their rule's validator; filler in the same shape does not.

Each key is drawn uniformly from the format's alphabet at the format's length, wrapped in its
prefix, matched by the rule's own regex and judged by the rule's own validator, exactly as a
scan does. The stated false-rejection probabilities (``claudesec/detect/validators.py``) are
all below 1e-7 per key, so one rejection in 100,000 draws would already contradict them.
CPU: see SAMPLE below for which formats are sampled; GitHub and npm keys stay validated by
their CRC checksum.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from claudesec.detect.catalogue import DETECTORS_BY_ID
from claudesec.detect.validators import base62_crc32
from tests.fixtures.keys import ANT, AWS_ID_PREFIX

_B62 = string.ascii_letters + string.digits
_B64 = _B62 + "+/"
_B64URL = _B62 + "-_"
_B32 = string.ascii_uppercase + "234567"
_HEX = "0123456789abcdef"
KEYS_PER_FORMAT = 100_000
# Formats that share a validator and a body alphabet with one tested at 100,000 (the four
# Anthropic rules share `anthropic_body`), or that no Claude call accepts, are sampled at
# 10,000 to keep this file near 35 s of CPU here; the thresholds' exact tail probabilities are
# stated in claudesec/detect/validators.py.
SAMPLE = 10_000


@dataclass(frozen=True)
class Format:
    rule: str
    make: Callable[[random.Random], str]


def _draw(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _crc_token(rng: random.Random, prefix: str) -> str:
    body = _draw(rng, _B62, 30)
    return prefix + body + base62_crc32(body.encode())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(rng: random.Random, alg: str) -> str:
    """A token as an issuer signs it: random claims, HMAC under a random 32-byte key for HS*,
    a signature of the algorithm's size otherwise (its bytes are random either way)."""
    claims = {"sub": _draw(rng, _B62, 12), "iat": rng.randrange(1_600_000_000, 1_800_000_000)}
    signing_input = (
        _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        + "."
        + _b64url(json.dumps(claims).encode())
    )
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg)
    if digest is not None:
        signature = hmac.new(rng.randbytes(32), signing_input.encode(), digest).digest()
    else:
        signature = rng.randbytes({"ES256": 64, "ES384": 96, "ES512": 132, "EdDSA": 64}[alg])
    return signing_input + "." + _b64url(signature)


# Checked on 100,000 keys each: every format a Claude call accepts, one per shared validator,
# and HMAC-signed JWTs (the signature-length and published-key filters; ~15 s of CPU here).
FULL = {
    "jwt-hs256",
    "anthropic-api",
    "claudesec-proxy",
    "aws-key-id",
    "aws-secret",
    "aws-session",
    "azure-foundry",
    "google-oauth",
}


FORMATS: dict[str, Format] = {
    "anthropic-api": Format(
        "anthropic-api-key", lambda r: ANT + "api03-" + _draw(r, _B64URL, 93) + "AA"
    ),
    "anthropic-admin": Format(
        "anthropic-admin-key", lambda r: ANT + "admin01-" + _draw(r, _B64URL, 93) + "AA"
    ),
    "anthropic-oauth": Format(
        "anthropic-oauth-token", lambda r: ANT + "oat01-" + _draw(r, _B64URL, 93) + "AA"
    ),
    "anthropic-other": Format("anthropic-token", lambda r: ANT + "ort104-" + _draw(r, _B64URL, 93)),
    "claudesec-proxy": Format(
        "claudesec-proxy-token", lambda r: "cs" + "p_" + _draw(r, _B64URL, 43)
    ),
    "aws-key-id": Format("aws-access-key-id", lambda r: AWS_ID_PREFIX + _draw(r, _B32, 16)),
    "aws-session": Format(
        "aws-session-token", lambda r: "IQoJb3JpZ2lu" + "X2Vj" + _draw(r, _B64, 400)
    ),
    "azure-foundry": Format(
        "azure-openai-key", lambda r: _draw(r, _B62, 52) + "JQQJ99" + _draw(r, _B62, 26)
    ),
    "azure-storage": Format(
        "azure-storage-key", lambda r: "AccountKey=" + _draw(r, _B64, 86) + "=="
    ),
    "entra-secret": Format(
        "azure-entra-client-secret",
        lambda r: (
            _draw(r, _B62, 3) + _draw(r, string.digits, 1) + "Q~" + _draw(r, _B62 + "_~.-", 34)
        ),
    ),
    "google-api": Format("google-api-key", lambda r: "AI" + "za" + _draw(r, _B64URL, 35)),
    "google-oauth": Format("google-oauth-token", lambda r: "ya" + "29." + _draw(r, _B64URL, 150)),
    "google-client-secret": Format(
        "google-oauth-token", lambda r: "GOC" + "SPX-" + _draw(r, _B64URL, 28)
    ),
    "github-fine-grained": Format(
        "github-fine-grained-token",
        lambda r: "github" + "_pat_" + _draw(r, _B62, 22) + "_" + _draw(r, _B62, 59),
    ),
    "gitlab": Format("gitlab-token", lambda r: "gl" + "pat-" + _draw(r, _B62 + "_-", 20)),
    "slack-bot": Format(
        "slack-token",
        lambda r: (
            "xo"
            + "xb-"
            + _draw(r, string.digits, 12)
            + "-"
            + _draw(r, string.digits, 13)
            + "-"
            + _draw(r, _B62, 24)
        ),
    ),
    "stripe": Format("stripe-key", lambda r: "sk" + "_live_" + _draw(r, _B62, 99)),
    "stripe-legacy": Format("stripe-key", lambda r: "sk" + "_live_" + _draw(r, _B62, 24)),
    "huggingface": Format(
        "huggingface-token", lambda r: "hf" + "_" + _draw(r, string.ascii_letters, 34)
    ),
    "pypi": Format("pypi-token", lambda r: "pypi-" + "AgEIcHlwaS5vcmc" + _draw(r, _B64URL, 70)),
    "openai": Format(
        "openai-api-key",
        lambda r: "sk-" + "proj-" + _draw(r, _B64URL, 74) + "T3Blbk" + "FJ" + _draw(r, _B64URL, 74),
    ),
    "github-classic": Format("github-token", lambda r: _crc_token(r, "gh" + "p_")),
    "npm": Format("npm-token", lambda r: _crc_token(r, "np" + "m_")),
    "jwt-hs256": Format("jwt", lambda r: _jwt(r, "HS256")),
    "jwt-hs384": Format("jwt", lambda r: _jwt(r, "HS384")),
    "jwt-hs512": Format("jwt", lambda r: _jwt(r, "HS512")),
    "jwt-es256": Format("jwt", lambda r: _jwt(r, "ES256")),
    "jwt-es512": Format("jwt", lambda r: _jwt(r, "ES512")),
    "jwt-eddsa": Format("jwt", lambda r: _jwt(r, "EdDSA")),
    "aws-secret": Format(
        "aws-secret-access-key", lambda r: "aws_secret_access_key = " + _draw(r, _B64, 40)
    ),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_no_real_format_key_is_rejected_as_a_placeholder(name: str) -> None:
    fmt = FORMATS[name]
    detector = DETECTORS_BY_ID[fmt.rule]
    rng = random.Random(f"placeholder-filters/{name}")
    rejected = 0
    count = KEYS_PER_FORMAT if name in FULL else SAMPLE
    for _ in range(count):
        key = fmt.make(rng).encode()
        match = detector.regex.search(key)
        assert match is not None and match.group(0) == key, (name, "format does not match")
        assert detector.validate is not None
        if not detector.validate(match.group("secret"), match):
            rejected += 1
    assert rejected == 0, f"{rejected} of {count} real-format {name} keys rejected"


@pytest.mark.parametrize("name", ["anthropic-api", "aws-session", "azure-foundry", "stripe"])
def test_filler_of_the_same_format_is_rejected(name: str) -> None:
    fmt = FORMATS[name]
    detector = DETECTORS_BY_ID[fmt.rule]
    key = fmt.make(random.Random(1))
    body_start = len(key) // 3
    fillers = [
        key[:body_start] + "X" * 8 + key[body_start + 8 :],  # a run of 8
        key[:body_start] + "abcdefgh" + key[body_start + 8 :],  # a sequence of 8
    ]
    if name != "azure-foundry":  # its marker sits mid-body: low entropy tested on the others
        tail = len(key) - body_start - 2  # keep the format's last two characters (`AA`)
        fillers.append(key[:body_start] + ("ab" * tail)[:tail] + key[-2:])
    for filler in fillers:
        match = detector.regex.search(filler.encode())
        assert match is not None
        assert detector.validate is not None
        assert not detector.validate(match.group("secret"), match), filler[:20]


def test_no_random_value_is_taken_for_a_camel_case_name() -> None:
    """The lowerCamelCase identifier test (``exchangeRecaptchaV3Token``) on 100,000 random
    base62 values of 12-40 characters, the generic rule's lengths: none is taken for a name."""
    from claudesec.detect.validators import is_identifier

    rng = random.Random("camel-identifiers")
    alphabet = string.ascii_letters + string.digits
    taken = [
        value
        for value in (_draw(rng, alphabet, rng.randint(12, 40)) for _ in range(KEYS_PER_FORMAT))
        if is_identifier(value.encode())
    ]
    assert taken == []
