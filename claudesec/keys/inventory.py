"""Which managed keys claudesec expects to find, so a wrong region or account is an alarm.

A ``keys rotate --all`` pointed at a region (or an AWS account) holding no managed secrets
finds nothing to do and would exit 0: every alarm silenced by one wrong setting. So the
names a run must find are remembered: the keys the configuration names
(``keys.scope_secret_readers``) and every managed key a run has seen before, kept in
``$CLAUDESEC_HOME/keys-seen.json`` per store kind and secret prefix (not per region: the
point is to notice when the region changes under them). A name that is expected and not
found is an error; ``keys forget NAME`` drops a key that was deleted on purpose.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from claudesec.errors import StoreError

SEEN_FILE = "keys-seen.json"


@dataclass(frozen=True)
class Missing:
    """An expected managed key that is not in the store."""

    name: str
    secret: str
    why: str  # "named in the configuration" or "seen in <where> at <time>"

    def message(self, where: str) -> str:
        return (
            f"{self.secret} not found in {where} ({self.why}): check keys.aws_region, "
            "keys.aws_endpoint_url and the AWS account (credentials); if it was deleted on "
            f"purpose run `claudesec keys forget {self.name}`"
        )


class SeenKeys:
    """The managed keys runs have seen, in one small JSON file (no secrets in it)."""

    def __init__(self, path: Path, scope: str) -> None:
        self.path = path
        self.scope = scope  # store kind and prefix: one file serves several configurations

    def _load(self) -> dict[str, dict[str, dict[str, str]]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise StoreError(
                f"{self.path} is unreadable or damaged",
                hint="delete it; the next run that finds the keys writes it again",
            ) from None
        return data if isinstance(data, dict) else {}

    def seen(self) -> Mapping[str, Mapping[str, str]]:
        """secret -> {"where", "at"} for this store and prefix."""
        scoped = self._load().get(self.scope)
        return scoped if isinstance(scoped, dict) else {}

    def remember(self, secrets: Iterable[str], where: str, at: str) -> None:
        data = self._load()
        scoped = dict(data.get(self.scope) or {})
        new = {s: {"where": where, "at": at} for s in secrets}
        if all(scoped.get(s, {}).get("where") == where for s in new):
            return  # nothing new: do not rewrite the file on every run
        scoped.update(new)
        data[self.scope] = scoped
        self._write(data)

    def forget(self, secret: str) -> bool:
        data = self._load()
        scoped = dict(data.get(self.scope) or {})
        if scoped.pop(secret, None) is None:
            return False
        data[self.scope] = scoped
        self._write(data)
        return True

    def _write(self, data: object) -> None:
        from claudesec.paths import create_private_file

        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        create_private_file(temporary)
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.path)  # a crash leaves the old file or the new, never half


def default_seen(kind: str, prefix: str) -> SeenKeys:
    from claudesec.paths import ensure_home

    return SeenKeys(ensure_home() / SEEN_FILE, f"{kind}:{prefix}")
