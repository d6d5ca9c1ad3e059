"""Baseline files: the findings a repository has accepted for now, stored as hashes only.

A baseline lets an old repository adopt claudesec before every historical secret is fixed.
It holds, per finding, the rule id, the path and a hash of the secret, never the secret.
That hash is PBKDF2-HMAC-SHA256 with a random salt kept in the file: the salt stops a
precomputed table from working across repositories, and the iteration count makes checking
guesses of a short secret (a password found by the generic rule) slow. A bare SHA-256 would
let anyone holding the baseline test millions of guesses a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from claudesec.errors import ConfigError, StoreError
from claudesec.scan.model import Finding

BASELINE_VERSION = 1
DEFAULT_ITERATIONS = 10_000
ALGORITHM = "pbkdf2-hmac-sha256"


@dataclass(frozen=True)
class Baseline:
    """Accepted findings, keyed by (rule id, path, salted secret hash)."""

    salt: bytes
    iterations: int
    entries: frozenset[tuple[str, str, str]]

    @classmethod
    def empty(cls) -> Baseline:
        return cls(salt=secrets.token_bytes(16), iterations=DEFAULT_ITERATIONS, entries=frozenset())

    def secret_hash(self, secret: str) -> str:
        return hashlib.pbkdf2_hmac(
            "sha256", secret.encode("utf-8", "surrogateescape"), self.salt, self.iterations
        ).hex()

    def contains(self, finding: Finding) -> bool:
        # Only findings whose rule and path appear at all pay for the slow hash.
        if (finding.rule_id, finding.path) not in self._rule_paths:
            return False
        key = (finding.rule_id, finding.path, self.secret_hash(finding.secret))
        return key in self.entries

    @property
    def _rule_paths(self) -> frozenset[tuple[str, str]]:
        cached: frozenset[tuple[str, str]] | None = self.__dict__.get("_rp")
        if cached is None:
            cached = frozenset((rule, path) for rule, path, _ in self.entries)
            object.__setattr__(self, "_rp", cached)
        return cached

    def with_findings(self, findings: Iterable[Finding]) -> Baseline:
        """A baseline with exactly these findings, keeping this one's salt (small diffs)."""
        entries = frozenset((f.rule_id, f.path, self.secret_hash(f.secret)) for f in findings)
        return Baseline(salt=self.salt, iterations=self.iterations, entries=entries)

    def to_json(self) -> str:
        document = {
            "version": BASELINE_VERSION,
            "tool": "claudesec",
            "hash": {
                "algorithm": ALGORITHM,
                "iterations": self.iterations,
                "salt": self.salt.hex(),
            },
            "findings": [
                {"rule": rule, "path": path, "secret_hash": digest}
                for rule, path, digest in sorted(self.entries)
            ],
        }
        return json.dumps(document, indent=2) + "\n"


def load_baseline(path: str) -> Baseline:
    """Read a baseline file; a missing or malformed file is a configuration error."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(
            "baseline file not found", path=path, hint="create it with --write-baseline"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read baseline: {exc}", path=path) from exc
    try:
        if document.get("version") != BASELINE_VERSION:
            raise ValueError(f"unsupported version {document.get('version')!r}")
        spec = document["hash"]
        if spec.get("algorithm") != ALGORITHM:
            raise ValueError(f"unsupported hash {spec.get('algorithm')!r}")
        salt = bytes.fromhex(spec["salt"])
        iterations = int(spec["iterations"])
        entries = frozenset(
            (str(e["rule"]), str(e["path"]), str(e["secret_hash"])) for e in document["findings"]
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"invalid baseline: {exc}", path=path, hint="regenerate it with --write-baseline"
        ) from exc
    return Baseline(salt=salt, iterations=iterations, entries=entries)


def write_baseline(
    path: str, findings: Sequence[Finding], previous: Baseline | None, *, merge: bool = False
) -> Baseline:
    """Write the baseline for ``findings`` atomically; returns what was written.

    ``merge`` keeps the previous entries too (a ``--staged`` scan sees only part of the tree);
    otherwise the file holds exactly these findings, so fixed ones drop out.
    """
    base = previous if previous is not None else Baseline.empty()
    baseline = base.with_findings(findings)
    if merge and previous is not None:
        baseline = Baseline(baseline.salt, baseline.iterations, baseline.entries | previous.entries)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(baseline.to_json())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write baseline {path}: {exc.strerror or exc}") from exc
    return baseline
