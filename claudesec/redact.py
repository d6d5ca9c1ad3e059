"""The one function that turns a secret into something safe to display.

Hints follow the style of Anthropic's ``partial_key_hint`` (``sk-ant-api03-R2D...igAA``): the
kind prefix, a few leading characters of the body, ``...``, and the last four. Short secrets
reveal less, down to nothing at all, so a hint never narrows a weak secret down to a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ELLIPSIS = "..."

# Prefixes that name a credential's kind rather than being part of its entropy. Keeping them
# visible tells the reader what leaked without revealing anything secret.
_KIND_PREFIX = re.compile(
    r"""^(?:
        sk-ant-[a-z]+\d{2}-            # Anthropic: api03, admin01, oat01, ...
      | sk-(?:proj|svcacct|admin)-     # OpenAI project / service-account / admin keys
      | sk_(?:live|test)_ | rk_(?:live|test)_ | pk_(?:live|test)_   # Stripe
      | github_pat_ | gh[pousr]_        # GitHub
      | glpat- | glptt- | gldt- | glrt- # GitLab
      | xox[abpsero]- | xapp-          # Slack
      | hf_ | npm_ | pypi- | AIza       # Hugging Face, npm, PyPI, Google
      | A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA)   # AWS key ids
      | sk-                            # generic "sk-" keys (OpenAI legacy, others)
    )""",
    re.VERBOSE,
)
_PEM_HEADER = re.compile(r"^-----BEGIN [A-Z0-9 ]+-----")


def _visible_counts(body_length: int) -> tuple[int, int]:
    """How many leading and trailing characters of a body of this length may be shown.

    Never more than a quarter of the body in total, and never more than 3 + 4, so a hint
    can never hold 8 consecutive characters of the body.
    """
    if body_length >= 28:
        return 3, 4
    if body_length >= 16:
        return 2, 2
    if body_length >= 12:
        return 0, 2
    return 0, 0


def redact(secret: str) -> str:
    """Return a display hint for ``secret``: deterministic, and never the secret itself."""
    if not secret:
        return ELLIPSIS
    pem = _PEM_HEADER.match(secret)
    if pem:
        return f"{pem.group(0)}{ELLIPSIS}({len(secret)} chars)"
    match = _KIND_PREFIX.match(secret)
    prefix = match.group(0) if match else ""
    body = secret[len(prefix) :]
    head, tail = _visible_counts(len(body))
    shown_head = _printable(body[:head])
    shown_tail = _printable(body[len(body) - tail :]) if tail else ""
    return f"{prefix}{shown_head}{ELLIPSIS}{shown_tail}"


def _printable(text: str) -> str:
    # A control character in a hint would let a secret corrupt the terminal or a log line.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` by its hint.

    For messages built from untrusted text (an SDK's exception, a server's reply) that may
    echo a secret back.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, redact(secret))
    return text


def looks_like_secret(value: str) -> bool:
    """Cheap check for values that carry a known credential prefix (``sk-ant-…``, ``ghp_…``).

    For redacting configuration values that should never have held a secret; the scanner's
    detector catalogue is the thorough check.
    """
    return len(value) >= 20 and (
        _KIND_PREFIX.match(value) is not None or _PEM_HEADER.match(value) is not None
    )
