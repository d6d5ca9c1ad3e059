"""Canaries: secrets made for one drill run, in the real formats, never stored anywhere.

Anthropic keys come from the emulator's generator (the real 108-character shape); the other
kinds follow the formats the detector catalogue documents. Prefixes are assembled from pieces
so this file itself never looks like it holds a key.

A random draw can, very rarely, look like filler (a run of one character, an alphabet
sequence, a word such as "your"): those are redrawn, because the drill must stage a leak a
real scanner has to catch, not a test of the placeholder filter.
"""

from __future__ import annotations

import re
import secrets
import string

from claudesec.detect.validators import base62_crc32
from claudesec.emulator.keys import generate_secret

_B62 = string.digits + string.ascii_letters
_B32 = string.ascii_uppercase + "234567"
_B64 = string.ascii_letters + string.digits + "+/"
_FILLER = re.compile(r"(.)\1{4}")
_WORDS = ("xxx", "your", "example", "placeholder", "change", "dummy", "redact", "sample")
_SEQUENCES = (
    string.ascii_lowercase,
    string.ascii_uppercase,
    string.digits,
    string.ascii_lowercase[::-1],
    string.digits[::-1],
)


def _filler(value: str) -> bool:
    lowered = value.lower()
    if _FILLER.search(value) or any(w in lowered for w in _WORDS):
        return True
    return any(seq[i : i + 5] in value for seq in _SEQUENCES for i in range(len(seq) - 4))


def _draw(alphabet: str, length: int) -> str:
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        if not _filler(value):
            return value


def anthropic_key(kind: str = "api") -> str:
    """A fresh Anthropic key of ``kind`` (api, admin, oauth...)."""
    while True:
        value = generate_secret(kind)  # type: ignore[arg-type]
        if not _filler(value.split("-", 3)[-1]):
            return value


def aws_key_pair() -> tuple[str, str]:
    """An AWS access key id and secret access key."""
    key_id = "AK" + "IA" + _draw(_B32, 16)
    while True:
        secret = _draw(_B64, 40)
        if re.search(r"[a-z]", secret) and re.search(r"[A-Z]", secret) and "+" not in secret[:1]:
            return key_id, secret


def github_token() -> str:
    """A classic GitHub token with a valid checksum."""
    body = _draw(_B62, 30)
    return "gh" + "p_" + body + base62_crc32(body.encode())


def password(length: int = 24) -> str:
    """A random password with letters and digits (as a connection URL would carry)."""
    while True:
        value = _draw(string.ascii_letters + string.digits, length)
        if re.search(r"\d", value) and re.search(r"[A-Za-z]", value):
            return value


def email() -> str:
    """A unique e-mail address: PII a prompt must not carry to the API."""
    return f"drill.{_draw(string.ascii_lowercase + string.digits, 12)}@example-corp.com"
