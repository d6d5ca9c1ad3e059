"""Audit drills: the audited client refuses what policy, identity and DLP forbid before a
byte leaves, fails closed without its log, and the log itself gives tampering away.

Every drill builds its own policy, store and keys in its sandbox and passes them to the
client explicitly, so nothing is read from or written to the user's claudesec home.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claudesec.drill import canary
from claudesec.drill.drills._servers import start_emulator
from claudesec.drill.interface import Drill
from claudesec.drill.model import DrillFailed, DrillInfraError

if TYPE_CHECKING:
    from claudesec.audit.store import AuditStore
    from claudesec.config import Config
    from claudesec.drill.context import DrillContext
    from claudesec.emulator import Emulator
    from claudesec.guard.client import AuditedAnthropic
    from claudesec.guard.pipeline import AuditPipeline

ALLOWED = "claude-haiku-*"


def _config(**audit: Any) -> Config:
    from claudesec.config import AuditConfig, Config, PolicyConfig, RoleConfig

    roles = {
        "analyst": RoleConfig(models=(ALLOWED,), max_tokens=256, dlp="block"),
        "redactor": RoleConfig(models=(ALLOWED,), max_tokens=256, dlp="redact"),
    }
    return Config(
        policy=PolicyConfig(users={"alice": "analyst", "bob": "redactor"}, roles=roles),
        audit=AuditConfig(sample_rates={}, **audit),
    )


def open_store(ctx: DrillContext, name: str = "audit.db", every: int = 0) -> AuditStore:
    from claudesec.audit.secrets import AuditKeys
    from claudesec.audit.store import AuditStore

    store = AuditStore.open(
        ctx.workdir / name, keys=AuditKeys(ctx.workdir / "keys"), checkpoint_every=every
    )
    ctx.resources.callback(store.close)
    return store


def open_pipeline(
    ctx: DrillContext, store: AuditStore, config: Config, **kwargs: Any
) -> AuditPipeline:
    from claudesec.audit.secrets import AuditKeys
    from claudesec.guard.pipeline import AuditPipeline

    return AuditPipeline.from_config(
        config, store=store, keys=AuditKeys(ctx.workdir / "keys"), **kwargs
    )


def _models(emulator: Emulator) -> tuple[str, str]:
    """A model the drill role may call and one it may not."""
    ids = [m.id for m in emulator.state.models]
    allowed = next(m for m in ids if m.startswith(ALLOWED.rstrip("*")))
    forbidden = next(m for m in ids if "opus" in m)
    return allowed, forbidden


class _ClientDrill(Drill):
    """The audited client (the real SDK) against a loopback emulator."""

    exclusive = ("scan-engine",)
    weight = 2

    def setup(self, ctx: DrillContext) -> None:
        self.emulator = start_emulator(ctx)
        upstream = ctx.canary(canary.anthropic_key("api"))
        self.upstream = self.emulator.state.add_key("api", secret=upstream)
        self.store = open_store(ctx)
        self.pipeline = open_pipeline(ctx, self.store, _config())
        self.allowed, self.forbidden = _models(self.emulator)

    def client(
        self, ctx: DrillContext, user: str | None = "alice", **kwargs: Any
    ) -> AuditedAnthropic:
        from claudesec.guard.client import AuditedAnthropic

        kwargs.setdefault("pipeline", self.pipeline)
        client = AuditedAnthropic(
            user=user,
            api_key=self.upstream.secret,
            base_url=self.emulator.base_url,
            max_retries=0,
            **kwargs,
        )
        ctx.resources.callback(client.close)
        return client

    def ask(self, client: AuditedAnthropic, text: str, model: str | None = None) -> Any:
        return client.messages.create(
            model=model or self.allowed,
            max_tokens=32,
            messages=[{"role": "user", "content": text}],
        )

    def records(self) -> list[str]:
        head = self.store.head().seq
        found = [self.store.get(seq) for seq in range(1, head + 1)]
        return [f.event.canonical_json() for f in found if f is not None]


class ForbiddenModel(_ClientDrill):
    name = "policy-forbidden-model"
    title = (
        "a role asking for a forbidden model, or an unknown user, is denied and nothing "
        "reaches the API"
    )
    fix = "Check [policy.roles] model globs and [policy.users]; unknown callers must be denied."

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.guard.pipeline import CallDenied

        self.ask(self.client(ctx), "control call")  # the allowed path works
        self.emulator.state.clear_requests()
        self.outcomes: dict[str, str] = {}
        for label, user, model in (
            ("forbidden model", "alice", self.forbidden),
            ("unknown user", "mallory", self.allowed),
        ):
            client = self.client(ctx, user)
            with ctx.attempt():
                try:
                    self.ask(client, "hello", model)
                    self.outcomes[label] = "allowed"
                except CallDenied as exc:
                    ctx.capture(f"{label} denial", str(exc))
                    self.outcomes[label] = exc.reason

    def verify(self, ctx: DrillContext) -> None:
        sent = self.emulator.state.requests()
        allowed = [label for label, reason in self.outcomes.items() if reason == "allowed"]
        if allowed or sent:
            raise DrillFailed(
                "a call the policy forbids was let through",
                *(f"{label}: allowed" for label in allowed),
                f"{len(sent)} request(s) reached the API: {[r.body.get('model') for r in sent]}",
            )
        for label, reason in self.outcomes.items():
            ctx.note(f"{label}: denied ({reason}); 0 requests reached the API")


class DlpPrompt(_ClientDrill):
    name = "dlp-prompt-secrets"
    title = "a prompt carrying a key or PII is blocked or redacted, and the value is in no record"
    fix = "Set dlp = 'block' or 'redact' on every role and keep dlp.disabled empty."

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.guard.pipeline import CallDenied

        self.key = ctx.canary(canary.anthropic_key("admin"))
        self.email = ctx.canary(canary.email())
        prompt = f"Debug this: ANTHROPIC_ADMIN_KEY={self.key} and mail {self.email} the result"
        blocker, redactor = self.client(ctx, "alice"), self.client(ctx, "bob")
        with ctx.attempt():
            try:
                self.ask(blocker, prompt)
                self.blocked = "allowed"
            except CallDenied as exc:
                ctx.capture("dlp denial", str(exc))
                self.blocked = exc.reason
        with ctx.attempt():
            try:
                reply = self.ask(redactor, prompt)
                self.reply = json.dumps(reply.model_dump(mode="json"))
            except CallDenied as exc:
                ctx.capture("dlp denial (redact role)", str(exc))
                self.reply = ""

    def verify(self, ctx: DrillContext) -> None:
        problems: list[str] = []
        if self.blocked != "dlp.blocked":
            problems.append(f"blocking role: call ended {self.blocked!r}, not dlp.blocked")
        for record in self.emulator.state.requests():
            body = json.dumps(record.body)
            for label, value in (("the key", self.key), ("the e-mail address", self.email)):
                if value in body:
                    problems.append(f"{label} reached the API in {record.path}")
        if any(v in self.reply for v in (self.key, self.email)):
            problems.append("the value came back to the caller in the reply")
        stored = "\n".join(self.records())
        if any(v in stored for v in (self.key, self.email)):
            problems.append("the value is in an audit record")
        if problems:
            raise DrillFailed("a secret or PII in a prompt got through", *problems)
        sent = len(self.emulator.state.requests())
        ctx.note(f"blocking role: dlp.blocked; redacting role: {sent} request(s), value redacted")


class FailClosed(_ClientDrill):
    name = "audit-fail-closed"
    title = "an unwritable audit store makes the client fail closed"
    fix = "Keep audit.fail_closed = true and alert on AuditUnavailable; fix the disk or path."

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.errors import StoreError
        from claudesec.guard.pipeline import AuditUnavailable, CallDenied

        client = self.client(ctx)
        self.ask(client, "control call")
        self.outcomes: dict[str, str] = {}
        self.store.close()  # every write now fails, as with a lost or full disk
        sent = len(self.emulator.state.requests())
        for label in ("first call after the break", "next call"):
            with ctx.attempt():
                try:
                    self.ask(client, "are you recording this?")
                    self.outcomes[label] = "answered"
                except AuditUnavailable:
                    self.outcomes[label] = "withheld"
                except CallDenied as exc:
                    self.outcomes[label] = exc.reason
        self.leaked_after = len(self.emulator.state.requests()) - sent
        # A store that cannot even be opened stops the pipeline (and so the client) at birth.
        blocked = ctx.workdir / "not-a-store"
        blocked.mkdir()
        with ctx.attempt():
            try:
                open_store(ctx, blocked.name)
                self.outcomes["client on an unopenable store"] = "built"
            except StoreError:
                self.outcomes["client on an unopenable store"] = "refused"

    def verify(self, ctx: DrillContext) -> None:
        # Write ahead: a call whose admission record cannot be committed is refused before
        # anything is sent, the first one after the break included.
        expected = {
            "first call after the break": "audit.unavailable",
            "next call": "audit.unavailable",
            "client on an unopenable store": "refused",
        }
        wrong = [
            f"{label}: {self.outcomes.get(label)!r}, expected {want!r}"
            for label, want in expected.items()
            if self.outcomes.get(label) != want
        ]
        if self.leaked_after:
            wrong.append(f"{self.leaked_after} calls reached the API with no audit record")
        if wrong:
            raise DrillFailed("the client kept working without its audit log", *wrong)
        ctx.note("every call refused before sending (no admission record); no client built")


# --------------------------------------------------------------------------- identity


class BadTokens(Drill):
    exclusive = ("scan-engine",)
    name = "identity-bad-tokens"
    title = "a forged, expired or alg:none identity token is denied before any call"
    fix = "Keep identity.algorithms to asymmetric algorithms and check issuer/audience/JWKS."

    def setup(self, ctx: DrillContext) -> None:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        from claudesec.config import IdentityConfig
        from claudesec.guard.identity import OidcVerifier

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "drill-1", "alg": "RS256", "use": "sig"})
        document = json.dumps({"keys": [jwk]}).encode()
        self.issuer = "https://idp.drill.invalid"
        identity = IdentityConfig(
            issuer=self.issuer,
            audience="claudesec-drill",
            jwks_url=self.issuer + "/keys",
            group_roles={"drill-analysts": "analyst"},
        )
        # The JWKS is served from memory: the verifier's checks are what is under test.
        verifier = OidcVerifier(identity, fetch=lambda _url: document)
        store = open_store(ctx)
        self.pipeline = open_pipeline(ctx, store, _config(), verifier=verifier)

    def _token(self, *, key: Any = None, alg: str = "RS256", **claims: Any) -> str:
        import jwt

        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": "claudesec-drill",
            "sub": "alice@drill",
            "groups": ["drill-analysts"],
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return jwt.encode(payload, key or self.key, algorithm=alg, headers={"kid": "drill-1"})

    def _unsigned(self) -> str:
        import base64

        def part(data: dict[str, Any]) -> str:
            raw = json.dumps(data).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": "claudesec-drill",
            "sub": "alice@drill",
            "groups": ["drill-analysts"],
            "exp": now + 300,
        }
        return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'drill-1'})}.{part(claims)}."

    def _admit(self, token: str) -> str:
        from claudesec.guard.pipeline import ApiRequest, CallDenied, Caller

        body = {
            "model": "claude-haiku-5-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        }
        try:
            self.pipeline.admit(Caller(token=token), ApiRequest("POST", "/v1/messages", body))
        except CallDenied as exc:
            return exc.reason
        return "admitted"

    def inject(self, ctx: DrillContext) -> None:
        from cryptography.hazmat.primitives import serialization

        control = ctx.canary(self._token())
        if self._admit(control) != "admitted":
            raise DrillInfraError("a valid token was refused, so the drill proves nothing")
        public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        now = int(time.time())
        tokens = {
            "forged signature": self._token(key=self.other),
            "expired": self._token(iat=now - 7200, exp=now - 3600),
            "alg none": self._unsigned(),
            "wrong audience": self._token(aud="someone-else"),
            "HS256 signed with the public key": _hs256(self._token_claims(), public_pem),
        }
        self.outcomes: dict[str, str] = {}
        for label, token in tokens.items():
            ctx.canary(token)
            with ctx.attempt():
                self.outcomes[label] = self._admit(token)

    def _token_claims(self) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": "claudesec-drill",
            "sub": "alice@drill",
            "groups": ["drill-analysts"],
            "exp": now + 300,
        }

    def verify(self, ctx: DrillContext) -> None:
        admitted = [label for label, reason in self.outcomes.items() if reason == "admitted"]
        if admitted:
            raise DrillFailed(
                "a bad identity token was accepted", *(f"accepted: {a}" for a in admitted)
            )
        for label, reason in self.outcomes.items():
            ctx.note(f"{label}: {reason}")


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """The key-confusion attack: an HMAC token keyed with the issuer's public key."""
    import base64
    import hashlib
    import hmac

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "drill-1"}).encode())
    payload = part(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{part(signature)}"


# --------------------------------------------------------------------------- tamper


def _copy_db(source: Path, target: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        origin = Path(str(source) + suffix)
        if origin.exists():
            shutil.copyfile(origin, Path(str(target) + suffix))
    return target


def _move(conn: sqlite3.Connection, where: str, delta: int) -> None:
    conn.execute(f"UPDATE events SET seq = -(seq + ?) WHERE {where}", (delta,))  # noqa: S608
    conn.execute("UPDATE events SET seq = -seq WHERE seq < 0")


def _modify(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE events SET body = replace(body, 'drill-user-2', 'forged') WHERE seq = 14")


def _modify_rehashed(conn: sqlite3.Connection) -> None:
    from claudesec.audit.store import record_hash

    _modify(conn)
    body, prev = conn.execute("SELECT body, prev_hash FROM events WHERE seq = 14").fetchone()
    conn.execute(
        "UPDATE events SET rec_hash = ? WHERE seq = 14", (record_hash(prev, 14, body.encode()),)
    )


def _delete(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM events WHERE seq = 14")


def _insert(conn: sqlite3.Connection) -> None:
    from claudesec.audit.store import record_hash

    _move(conn, "seq >= 14", 1)
    body = conn.execute("SELECT body FROM events WHERE seq = 1").fetchone()[0]
    body = body.replace("drill-user-1", "ghost")
    prev = conn.execute("SELECT rec_hash FROM events WHERE seq = 13").fetchone()[0]
    conn.execute(
        "INSERT INTO events (seq, prev_hash, rec_hash, body) VALUES (?, ?, ?, ?)",
        (14, prev, record_hash(prev, 14, body.encode()), body),
    )


def _reorder(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE events SET seq = -1 WHERE seq = 14")
    conn.execute("UPDATE events SET seq = 14 WHERE seq = 15")
    conn.execute("UPDATE events SET seq = 15 WHERE seq = -1")


def _truncate(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM events WHERE seq > 25")


def _truncate_with_checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM events WHERE seq > 20")
    conn.execute("DELETE FROM checkpoints WHERE number = 3")


def _bad_signature(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE checkpoints SET signature = zeroblob(64) WHERE number = 2")


_TAMPERS = {
    "modified": (_modify, {"modified"}),
    "modified with recomputed hash": (_modify_rehashed, {"modified"}),
    "deleted": (_delete, {"deleted"}),
    "inserted": (_insert, {"inserted"}),
    "reordered": (_reorder, {"reordered"}),
    "tail truncated": (_truncate, {"truncated"}),
    "tail and its checkpoint cut (exported anchor)": (_truncate_with_checkpoint, {"truncated"}),
    "checkpoint signature forged": (_bad_signature, {"bad_signature"}),
}


class AuditTamper(Drill):
    name = "audit-tamper"
    title = "each kind of tampering with the audit log is detected by verify"
    fix = "Export checkpoints off the host (`claudesec logs export-anchor`) and run `logs verify`."

    def setup(self, ctx: DrillContext) -> None:
        from claudesec.audit.checkpoint import Checkpoint
        from claudesec.audit.events import AuditEvent

        store = open_store(ctx, "pristine.db", every=10)
        for i in range(1, 31):
            store.append(
                AuditEvent(
                    type="call",
                    user=f"drill-user-{i % 3}",
                    role="analyst",
                    model="claude-haiku-5-5",
                    input_tokens=100 + i,
                    output_tokens=10 + i,
                    decision="allow",
                    request_id=f"req_drill_{i}",
                )
            )
        last = store.last_checkpoint()
        if last is None:
            raise DrillInfraError("the store wrote no checkpoint")
        self.anchor = Checkpoint.from_export(last.to_export())
        store.close()
        self.pristine = ctx.workdir / "pristine.db"

    def _check(self, path: Path) -> tuple[bool, str]:
        from claudesec.audit import verify
        from claudesec.audit.store import AuditStore

        with AuditStore.open(path, readonly=True) as store:
            report = verify.verify_store(store, anchor=self.anchor)
        return report.ok, str(report.problems[0].kind) if report.problems else ""

    def inject(self, ctx: DrillContext) -> None:
        ok, _ = self._check(self.pristine)
        if not ok:
            raise DrillInfraError(
                "the untouched store does not verify, so the drill proves nothing"
            )
        self.outcomes: dict[str, tuple[str, set[str]]] = {}
        for index, (label, (tamper, expected)) in enumerate(_TAMPERS.items()):
            path = _copy_db(self.pristine, ctx.workdir / f"tampered-{index}.db")
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                tamper(conn)
            finally:
                conn.close()
            with ctx.attempt():
                ok, kind = self._check(path)
            self.outcomes[label] = ("" if ok else kind, expected)

    def verify(self, ctx: DrillContext) -> None:
        missed = [
            f"{label}: verify said {kind or 'ok'}, expected {' or '.join(sorted(want))}"
            for label, (kind, want) in self.outcomes.items()
            if kind not in want
        ]
        if missed:
            raise DrillFailed("audit log tampering went unnoticed or misnamed", *missed)
        ctx.note(f"{len(self.outcomes)} tamper kinds detected and named")


__all__ = ["AuditTamper", "BadTokens", "DlpPrompt", "FailClosed", "ForbiddenModel"]
