"""The one catalogue of secret detectors, shared by ``claudesec scan`` and the audit DLP.

Each rule is data: an id, the kind of credential it finds, the literal keyword(s) a fast
multi-literal prefilter looks for, the full pattern run only at those keyword hits, an optional
validator (checksum, charset, entropy, placeholder test), a severity and a fix hint.

Patterns are ``bytes`` regexes with a named group ``secret``. Most are *anchored*: the match
starts exactly where the keyword starts, so the engine runs one ``Pattern.match`` per keyword hit
instead of searching a window. The few rules whose keyword sits inside the match (OpenAI's
``T3BlbkFJ`` marker) declare how far before the keyword a match may start.

Use :func:`find_secrets` on a ``str`` or ``bytes`` for a one-off check (DLP);
:class:`claudesec.scan.engine.Engine` is the same thing tuned for many files.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:  # pragma: no cover
    from claudesec.scan.engine import Engine


class Severity(StrEnum):
    """How bad a leak of this kind is; ``critical`` keys grant organisation-wide power."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


# A validator sees the secret and the whole match (for context such as quotes or the line).
Validator = Callable[[bytes, "re.Match[bytes]"], bool]


@dataclass(frozen=True, slots=True)
class Detector:
    """One rule of the catalogue."""

    id: str
    kind: str
    keywords: tuple[str, ...]
    pattern: str
    severity: Severity
    fix: str
    validate: Validator | None = None
    # Keywords matched without regard to case (only for the generic assignment rule).
    caseless: bool = False
    # How many bytes before the keyword a match may start (0 = the match starts at it).
    before: int = 0
    # How many bytes a match may extend past the keyword's start.
    after: int = 256
    # Optional: a regex every match starts with, keyword first (a prefix of ``pattern``). A
    # prefilter that runs regexes (hyperscan) reports only keyword hits that go on to match it,
    # which spares Python most of the hits of common words ("token", "://"). The result is the
    # same with or without it; only anchored rules may have one. Not verbose: spaces count.
    gate: str = ""
    regex: re.Pattern[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern.encode("ascii"), re.VERBOSE))

    @property
    def anchored(self) -> bool:
        """Whether every match starts exactly at a keyword hit."""
        return self.before == 0

    def kind_of(self, match: re.Match[bytes]) -> str:
        """The kind label of one match (the Anthropic family names its token kind)."""
        if "kind" in self.regex.groupindex and match.group("kind"):
            return self.kind.format(kind=match.group("kind").decode("ascii", "replace"))
        return self.kind


@dataclass(frozen=True, slots=True)
class SecretMatch:
    """A secret found in a buffer: offsets are into that buffer (bytes, or str for str input)."""

    detector: Detector
    kind: str
    start: int
    end: int
    secret: str = field(repr=False)

    @property
    def rule_id(self) -> str:
        return self.detector.id


# --------------------------------------------------------------------------- validators

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


def _crc_token(prefix_len: int) -> Validator:
    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        body = secret[prefix_len:]
        return base62_crc32(body[:-6]) == body[-6:].decode("ascii")

    return check


def _random_body(prefix_len: int, min_entropy: float) -> Validator:
    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        return not is_placeholder(secret[prefix_len:], min_entropy=min_entropy)

    return check


def _mixed_case_random(prefix_len: int, min_entropy: float) -> Validator:
    """Random base62/base64 bodies have upper, lower and (almost always) digits."""

    def check(secret: bytes, match: re.Match[bytes]) -> bool:
        body = secret[prefix_len:]
        if not (re.search(rb"[a-z]", body) and re.search(rb"[A-Z]", body)):
            return False
        return not is_placeholder(body, min_entropy=min_entropy)

    return check


def _aws_secret(secret: bytes, match: re.Match[bytes]) -> bool:
    if not (re.search(rb"[a-z]", secret) and re.search(rb"[A-Z]", secret)):
        return False  # a 40-char hex digest (git SHA) is not an AWS secret key
    return not is_placeholder(secret, min_entropy=3.8)


def _aws_key_id(secret: bytes, match: re.Match[bytes]) -> bool:
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


def _jwt(secret: bytes, match: re.Match[bytes]) -> bool:
    header, payload, _ = secret.split(b".", 2)
    decoded = _b64_json(header)
    if not (isinstance(decoded, dict) and "alg" in decoded and decoded.get("alg") != "none"):
        return False
    claims = _b64_json(payload)
    return not isinstance(claims, dict) or not _JWT_CLAIMS.isdisjoint(claims)


def _pem(secret: bytes, match: re.Match[bytes]) -> bool:
    body = re.sub(rb"\\[nr]|\s|-----[A-Z0-9 ]+-----|[A-Za-z-]+:[^\n\\]*", b"", secret)
    if len(body) < 64:
        return False
    return not is_placeholder(body, min_entropy=4.0)


# Domains reserved for documentation (RFC 2606, RFC 6761): credentials for them cannot work.
_DOC_HOST = re.compile(
    rb"(?i)(?:[a-z0-9-]+\.)*(?:example(?:\.(?:com|net|org))?|[a-z0-9-]+\.(?:test|invalid))\.?$"
)


def _url_password(secret: bytes, match: re.Match[bytes]) -> bool:
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


def _assignment(secret: bytes, match: re.Match[bytes]) -> bool:
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


# --------------------------------------------------------------------------- the catalogue

_B64URL = "A-Za-z0-9_-"
_END = "(?![A-Za-z0-9_-])"
_START = "(?<![A-Za-z0-9_-])"
_ROTATE = "Revoke it at the issuer, rotate it, and load it from a secret store or environment"

DETECTORS: tuple[Detector, ...] = (
    Detector(
        id="anthropic-admin-key",
        kind="Anthropic Admin API key",
        keywords=("sk-ant-admin",),
        pattern=rf"{_START}(?P<secret>sk-ant-admin01-[{_B64URL}]{{93}}AA){_END}",
        severity=Severity.CRITICAL,
        fix="Archive it in the Anthropic Console (Settings > Admin keys) now, then create a new "
        "one and keep it in a secret store; `claudesec keys` can manage it.",
        validate=_random_body(15, 4.0),
        after=120,
    ),
    Detector(
        id="anthropic-api-key",
        kind="Anthropic API key",
        keywords=("sk-ant-api",),
        pattern=rf"{_START}(?P<secret>sk-ant-api03-[{_B64URL}]{{93}}AA){_END}",
        severity=Severity.HIGH,
        fix="Deactivate it in the Anthropic Console (or `claudesec keys revoke`), rotate with "
        "`claudesec keys rotate`, and read the key from a secret store or ANTHROPIC_API_KEY.",
        validate=_random_body(13, 4.0),
        after=120,
    ),
    Detector(
        id="anthropic-oauth-token",
        kind="Anthropic OAuth token",
        keywords=("sk-ant-oat",),
        pattern=rf"{_START}(?P<secret>sk-ant-oat\d\d-[{_B64URL}]{{40,200}}){_END}",
        severity=Severity.HIGH,
        fix="Log out of the Claude client that issued it (this revokes the token) and keep "
        "tokens out of files; use the client's own credential store.",
        validate=_random_body(13, 4.0),
        after=230,
    ),
    Detector(
        id="anthropic-token",
        kind="Anthropic {kind} token",
        keywords=("sk-ant-",),
        pattern=rf"{_START}(?P<secret>sk-ant-(?P<kind>[a-z]{{2,12}}\d\d)-[{_B64URL}]{{32,200}}){_END}",
        severity=Severity.HIGH,
        fix=f"{_ROTATE}; check the Anthropic Console for the credential of this kind.",
        validate=_random_body(16, 4.0),
        after=240,
    ),
    Detector(
        id="aws-credentials",
        kind="AWS access key pair",
        keywords=("AKIA", "ASIA"),
        pattern=r"""(?<![A-Z0-9])(?P<keyid>(?:AKIA|ASIA)[A-Z2-7]{16})(?![A-Z0-9])
            [\s\S]{1,200}?
            (?<![A-Za-z0-9/+=])(?!eyJ)(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])""",
        severity=Severity.CRITICAL,
        fix="Deactivate and delete the access key in IAM, review CloudTrail for its use, and use "
        "IAM roles or the AWS credential chain instead of static keys.",
        validate=_aws_secret,
        after=300,
    ),
    Detector(
        id="aws-secret-access-key",
        kind="AWS secret access key",
        keywords=("aws_secret", "AWS_SECRET", "SecretAccessKey", "secret_access_key"),
        pattern=r"""(?:aws_secret|AWS_SECRET|SecretAccessKey|secret_access_key)[A-Za-z_]{0,20}
            \\?["']?\s{0,4}(?:=|:|=>|\s)\s{0,4}\\?["']?
            (?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])""",
        severity=Severity.CRITICAL,
        fix="Deactivate and delete the access key in IAM and use IAM roles or the AWS "
        "credential chain instead of static keys.",
        validate=_aws_secret,
        after=120,
    ),
    Detector(
        id="aws-access-key-id",
        kind="AWS access key ID",
        keywords=("AKIA", "ASIA", "ABIA", "ACCA"),
        pattern=r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Z0-9])",
        severity=Severity.MEDIUM,
        fix="An access key ID alone is not a credential, but its secret is usually nearby: "
        "check, deactivate the key in IAM if the secret leaked, and prefer IAM roles.",
        validate=_aws_key_id,
        after=24,
    ),
    Detector(
        id="github-token",
        kind="GitHub token",
        keywords=("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36})(?![A-Za-z0-9_])",
        severity=Severity.HIGH,
        fix="Revoke it in GitHub (Settings > Developer settings), and use a fine-grained token "
        "or the GITHUB_TOKEN of your CI kept in its secret store.",
        validate=_crc_token(4),
        after=48,
    ),
    Detector(
        id="github-fine-grained-token",
        kind="GitHub fine-grained token",
        keywords=("github_pat_",),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])",
        severity=Severity.HIGH,
        fix="Revoke it in GitHub (Settings > Developer settings > Fine-grained tokens) and keep "
        "tokens in a secret store.",
        validate=_mixed_case_random(11, 3.5),
        after=100,
    ),
    Detector(
        id="gitlab-token",
        kind="GitLab token",
        keywords=("glpat-", "glptt-", "gldt-", "glrt-", "glcbt-", "glsoat-", "glffct-"),
        pattern=r"""(?<![A-Za-z0-9_-])(?P<secret>gl(?:pat|ptt|dt|rt|cbt|soat|ffct)-
            [A-Za-z0-9_-]{20,64}(?:\.[0-9a-z]{2}\.[0-9a-z]{9})?)(?![A-Za-z0-9_-])""",
        severity=Severity.HIGH,
        fix="Revoke it in GitLab (User settings > Access tokens) and keep tokens in CI "
        "variables or a secret store.",
        validate=_random_body(6, 3.5),
        after=100,
    ),
    Detector(
        id="slack-token",
        kind="Slack token",
        keywords=("xoxb-", "xoxp-", "xoxa-", "xoxo-", "xoxs-", "xoxr-", "xoxe-", "xapp-"),
        pattern=r"""(?<![A-Za-z0-9_-])(?P<secret>(?:xox[bpaosre](?:\.xox[bpaosre])?-[0-9]{6,}-
            [0-9A-Za-z-]{8,}|xapp-\d-[A-Z0-9]{9,}-\d{9,}-[a-f0-9]{32,}))(?![A-Za-z0-9_])""",
        severity=Severity.HIGH,
        fix="Revoke it at api.slack.com/apps (or `auth.revoke`) and keep it in a secret store.",
        validate=_random_body(5, 3.0),
        after=200,
    ),
    Detector(
        id="slack-webhook",
        kind="Slack webhook URL",
        keywords=("hooks.slack.com/",),
        pattern=r"""hooks\.slack\.com/(?:services|workflows|triggers)/
            (?P<secret>T[A-Z0-9]{6,}/[A-Z0-9]{6,}/[A-Za-z0-9]{20,})(?![A-Za-z0-9])""",
        severity=Severity.MEDIUM,
        fix="Regenerate the webhook in the Slack app's Incoming Webhooks page and keep the URL "
        "in a secret store.",
        validate=_random_body(0, 3.0),
        after=160,
    ),
    Detector(
        id="stripe-key",
        kind="Stripe secret key",
        keywords=("sk_live_", "rk_live_", "sk_test_", "rk_test_"),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>[sr]k_(?:live|test)_[A-Za-z0-9]{24,99})(?![A-Za-z0-9])",
        severity=Severity.HIGH,
        fix="Roll the key in the Stripe Dashboard (Developers > API keys) and use a restricted "
        "key from a secret store.",
        validate=_mixed_case_random(8, 3.5),
        after=120,
    ),
    Detector(
        id="google-api-key",
        kind="Google API key",
        keywords=("AIza",),
        pattern=r"(?<![A-Za-z0-9_-])(?P<secret>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])",
        severity=Severity.HIGH,
        fix="Delete or regenerate it in Google Cloud Console (APIs & Services > Credentials) and "
        "add API and referrer restrictions.",
        validate=_random_body(4, 3.5),
        after=48,
    ),
    Detector(
        id="openai-api-key",
        kind="OpenAI API key",
        keywords=("T3BlbkFJ",),
        pattern=r"""(?<![A-Za-z0-9_-])(?P<secret>sk-(?:(?:proj|svcacct|admin)-)?
            [A-Za-z0-9_-]{16,160}T3BlbkFJ[A-Za-z0-9_-]{16,160})(?![A-Za-z0-9_-])""",
        severity=Severity.HIGH,
        fix="Revoke it at platform.openai.com/api-keys and keep keys in a secret store.",
        validate=_random_body(3, 3.5),
        before=180,
        after=180,
    ),
    Detector(
        id="huggingface-token",
        kind="Hugging Face token",
        keywords=("hf_",),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>hf_[A-Za-z]{34})(?![A-Za-z0-9_])",
        severity=Severity.MEDIUM,
        fix="Invalidate it at huggingface.co/settings/tokens and use HF_TOKEN from a secret store.",
        validate=_mixed_case_random(3, 3.5),
        after=48,
    ),
    Detector(
        id="pypi-token",
        kind="PyPI API token",
        keywords=("pypi-AgEIcHlwaS5vcmc",),
        pattern=r"(?<![A-Za-z0-9_-])(?P<secret>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,250})(?![A-Za-z0-9_-])",
        severity=Severity.HIGH,
        fix="Remove it at pypi.org/manage/account/token and publish with Trusted Publishing.",
        validate=_random_body(24, 3.5),
        after=300,
    ),
    Detector(
        id="npm-token",
        kind="npm access token",
        keywords=("npm_",),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9_])",
        severity=Severity.HIGH,
        fix="Revoke it with `npm token revoke` (or on npmjs.com) and use granular tokens kept "
        "in CI secrets.",
        validate=_crc_token(4),
        after=48,
    ),
    Detector(
        id="private-key",
        kind="private key",
        keywords=("-----BEGIN",),
        pattern=r"""(?P<secret>-----BEGIN[ ](?:[A-Z0-9]+[ ]){0,3}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----
            (?:[A-Za-z0-9+/=\s]|\\[nr]|[A-Za-z-]{2,30}:[^\n\\]{0,200}){64,16384}?
            -----END[ ](?:[A-Z0-9]+[ ]){0,3}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----)""",
        severity=Severity.CRITICAL,
        fix="Treat the key pair as compromised: revoke any certificate, replace the key, "
        "remove it from history, and keep keys in a secret store or an agent.",
        validate=_pem,
        after=20000,
    ),
    Detector(
        id="jwt",
        kind="JSON Web Token",
        keywords=("eyJ",),
        pattern=r"""(?<![A-Za-z0-9_-])(?P<secret>eyJ[A-Za-z0-9_-]{10,800}\.eyJ[A-Za-z0-9_-]{10,4000}
            \.[A-Za-z0-9_-]{16,1000})(?![A-Za-z0-9_-])""",
        severity=Severity.MEDIUM,
        fix="If it has not expired, revoke the session or rotate the signing key; do not commit "
        "tokens, load them at run time.",
        validate=_jwt,
        after=5900,
    ),
    Detector(
        id="connection-url-password",
        kind="password in a connection URL",
        keywords=("://",),
        gate=r"""://[^\s:/@"'<>`\\]{0,64}:[^\s:/@"'<>`\\]{3}""",
        pattern=r"""://(?P<user>[^\s:/@"'<>`\\]{0,64}):(?P<secret>[^\s:/@"'<>`\\]{3,128})@
            (?P<host>[A-Za-z0-9._-]{2,})""",
        severity=Severity.HIGH,
        fix="Change the password, and pass credentials through environment variables or a "
        "secret store instead of the URL.",
        validate=_url_password,
        after=300,
    ),
    Detector(
        id="claudesec-proxy-token",
        kind="claudesec proxy token",
        keywords=("csp_",),
        pattern=rf"{_START}(?P<secret>csp_[{_B64URL}]{{43}}){_END}",
        severity=Severity.HIGH,
        fix="Revoke it with `claudesec proxy token revoke ID` (`claudesec proxy token list` "
        "shows its hint) and issue a new one kept in the client's secret store.",
        validate=_random_body(4, 4.0),
        after=60,
    ),
    Detector(
        id="generic-secret-assignment",
        kind="secret assigned in code or config",
        keywords=(
            "api_key",
            "api-key",
            "apikey",
            "secret",
            "password",
            "passwd",
            "pwd",
            "token",
            "access_key",
            "auth_key",
            "private_key",
            "credential",
        ),
        caseless=True,
        gate=r"(?:api[_-]?key|secret|passw(?:or)?d|pwd|token|access_key|auth_key|private_key"
        r"|credential)[A-Za-z0-9_.-]{0,24}\\?[\"']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}"
        r"(?:\\?[\"'`])?[^\s\"'`;,&<>(){}\[\]$\\]{8}",
        pattern=r"""(?P<name>(?i:api[_-]?key|secret|passw(?:or)?d|pwd|token|access_key|auth_key
            |private_key|credentials?)[A-Za-z0-9_.-]{0,24})
            \\?["']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}(?P<q>\\?["'`])?
            (?P<secret>[^\s"'`;,&<>(){}\[\]$\\]{8,200})""",
        severity=Severity.MEDIUM,
        fix="Move the value to a secret store or an environment variable, rotate it if it is "
        "real, or mark a test value with `claudesec:allow`.",
        validate=_assignment,
        after=300,
    ),
)

DETECTORS_BY_ID: dict[str, Detector] = {d.id: d for d in DETECTORS}


def detector_ids() -> tuple[str, ...]:
    """Every rule id, in catalogue (priority) order."""
    return tuple(d.id for d in DETECTORS)


def find_secrets(
    data: str | bytes, detectors: Sequence[Detector] | None = None
) -> list[SecretMatch]:
    """Every secret in ``data``, in order of position; offsets index ``data`` as given."""
    from claudesec.scan.engine import default_engine

    engine: Engine = default_engine(tuple(detectors) if detectors is not None else DETECTORS)
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    found = engine.find(raw)
    results: list[SecretMatch] = []
    for hit in found:
        start, end = hit.start, hit.end
        if isinstance(data, str):
            start = len(raw[:start].decode("utf-8", "surrogateescape"))
            end = start + len(raw[hit.start : hit.end].decode("utf-8", "surrogateescape"))
        results.append(
            SecretMatch(
                detector=hit.detector,
                kind=hit.kind,
                start=start,
                end=end,
                secret=hit.secret.decode("utf-8", "replace"),
            )
        )
    return results
