"""The OS keyring as a :class:`~claudesec.stores.interface.KeyStore`, for local developers.

The keyring has no versions, labels or listing, so each secret is one keyring entry holding a
JSON document ``{"versions": {id: {"text", "stages"}}, "tags": {...}}`` and an index entry
lists the names. Every change is a read-modify-write under an exclusive file lock in
``$CLAUDESEC_HOME``, so two processes on one machine never interleave; versions left without a
label are dropped at once to keep the entry small (some keyrings cap an entry's size).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from claudesec.errors import StoreError
from claudesec.stores.interface import (
    CURRENT,
    PREVIOUS,
    SecretExists,
    SecretNotFound,
    SecretState,
    SecretValue,
    StageConflict,
)

if TYPE_CHECKING:
    from claudesec.config import KeysConfig

SERVICE = "claudesec-keys"
INDEX = "__index__"
LOCK_NAME = "keys-keyring.lock"


class KeyringStore:
    """Managed keys and the pool in the OS keyring (one process at a time per machine)."""

    kind = "keyring"

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service

    @classmethod
    def from_config(cls, keys: KeysConfig) -> KeyringStore:
        """The keyring store (``keys`` has no setting for it: one service name per machine)."""
        return cls()

    # ----------------------------------------------------------------- KeyStore

    def list_secrets(self, prefix: str) -> list[SecretState]:
        with self._locked():
            names = self._index()
            return [
                _state(name, doc)
                for name in sorted(names)
                if name.startswith(prefix) and (doc := self._load(name)) is not None
            ]

    def describe(self, name: str) -> SecretState:
        with self._locked():
            return _state(name, self._require(name))

    def read(
        self, name: str, *, stage: str = CURRENT, version_id: str | None = None
    ) -> SecretValue:
        with self._locked():
            doc = self._require(name)
        versions: dict[str, Any] = doc["versions"]
        if version_id is None:
            version_id = next((vid for vid, v in versions.items() if stage in v["stages"]), None)
        if version_id is None or version_id not in versions:
            raise SecretNotFound(f"secret {name} has no version {version_id or stage}")
        return SecretValue(version_id=version_id, text=str(versions[version_id]["text"]))

    def create(self, name: str, text: str, *, tags: Mapping[str, str], token: str) -> str:
        with self._locked():
            if self._load(name) is not None:
                raise SecretExists(f"secret {name} already exists in the keyring")
            doc = {"versions": {token: {"text": text, "stages": [CURRENT]}}, "tags": dict(tags)}
            self._save(name, doc)
            index = self._index()
            if name not in index:
                self._set(INDEX, json.dumps(sorted({*index, name})))
        return token

    def put_version(self, name: str, text: str, *, token: str, stages: Sequence[str]) -> None:
        with self._locked():
            doc = self._require(name)
            versions: dict[str, Any] = doc["versions"]
            if token in versions:
                if versions[token]["text"] != text:
                    raise StoreError(f"version {token} of {name} already holds another value")
                return
            for version in versions.values():
                version["stages"] = [s for s in version["stages"] if s not in stages]
            versions[token] = {"text": text, "stages": list(stages)}
            self._save(name, doc)

    def move_stage(
        self, name: str, stage: str, *, to_version: str | None, from_version: str | None
    ) -> None:
        with self._locked():
            doc = self._require(name)
            versions: dict[str, Any] = doc["versions"]
            holder = next((vid for vid, v in versions.items() if stage in v["stages"]), None)
            if from_version is not None and holder != from_version:
                raise StageConflict(f"{stage} of {name} is not on version {from_version}")
            if from_version is None and holder is not None and holder != to_version:
                raise StageConflict(f"{stage} of {name} is on {holder}; name it to move it")
            if to_version is not None and to_version not in versions:
                raise StageConflict(f"{name} has no version {to_version}")
            if holder is not None:
                versions[holder]["stages"].remove(stage)
            if to_version is not None and stage not in versions[to_version]["stages"]:
                versions[to_version]["stages"].append(stage)
            if stage == CURRENT and holder is not None and holder != to_version:
                for version in versions.values():
                    version["stages"] = [s for s in version["stages"] if s != PREVIOUS]
                versions[holder]["stages"].append(PREVIOUS)
            self._save(name, doc)

    def set_tags(self, name: str, tags: Mapping[str, str]) -> None:
        with self._locked():
            doc = self._require(name)
            doc["tags"].update(tags)
            self._save(name, doc)

    # ----------------------------------------------------------------- storage

    @contextmanager
    def _locked(self) -> Iterator[None]:
        from claudesec.paths import create_private_file, ensure_home

        path = ensure_home() / LOCK_NAME
        create_private_file(path)
        try:
            import fcntl
        except ImportError:  # Windows: the keyring serialises writes itself; no file lock
            yield
            return
        with path.open("r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _get(self, user: str) -> str | None:
        import keyring
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(self.service, user)
        except KeyringError as exc:
            raise StoreError(f"the OS keyring could not be read: {exc}") from None

    def _set(self, user: str, value: str) -> None:
        import keyring
        from keyring.errors import KeyringError

        try:
            keyring.set_password(self.service, user, value)
        except KeyringError as exc:
            raise StoreError(f"the OS keyring could not be written: {exc}") from None

    def _index(self) -> list[str]:
        raw = self._get(INDEX)
        if not raw:
            return []
        try:
            names = json.loads(raw)
        except ValueError:
            raise StoreError(f"the keyring index {self.service}/{INDEX} is damaged") from None
        return [str(n) for n in names] if isinstance(names, list) else []

    def _load(self, name: str) -> dict[str, Any] | None:
        raw = self._get(name)
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            raise StoreError(f"the keyring entry {self.service}/{name} is damaged") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("versions"), dict):
            raise StoreError(f"the keyring entry {self.service}/{name} is damaged")
        doc.setdefault("tags", {})
        return doc

    def _require(self, name: str) -> dict[str, Any]:
        doc = self._load(name)
        if doc is None:
            raise SecretNotFound(
                f"secret {name} not found in the keyring",
                hint="add it with `claudesec keys add`",
            )
        return doc

    def _save(self, name: str, doc: dict[str, Any]) -> None:
        doc["versions"] = {vid: v for vid, v in doc["versions"].items() if v["stages"]}
        self._set(name, json.dumps(doc, separators=(",", ":")))


def _state(name: str, doc: Mapping[str, Any]) -> SecretState:
    return SecretState(
        name=name,
        versions={vid: tuple(v["stages"]) for vid, v in doc["versions"].items()},
        tags=dict(doc.get("tags", {})),
    )
