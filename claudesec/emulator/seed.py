"""A month of realistic audit traffic for first runs and demos of ``claudesec report``.

``claudesec emulator seed-audit --days 30 --store PATH`` writes, through the real chained and
signed :class:`~claudesec.audit.store.AuditStore`, what a small team's month looks like:
several users in several roles on the models this emulator serves, with working-hours peaks
and a night owl, policy denials, DLP hits, a few oversized prompts, bursts of 401s from a
revoked CI key, key rotations and a revocation, a user and a model that first appear late in
the month, and a retention prune (so the integrity section has one to show).

The traffic is generated, not replayed: timestamps must span past days, which live calls
cannot have. A seeded :class:`random.Random` makes it reproducible (same ``seed``, same
events). No prompt text exists anywhere: ``prompt_hash`` holds random 64-hex values of the
HMAC's shape.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from claudesec.audit.events import AuditEvent, Decision, EventType
from claudesec.audit.store import NS_PER_DAY, AuditStore
from claudesec.emulator.models import default_models

_NS_PER_S = 1_000_000_000
_HISTORY_DAYS = 7


@dataclass(frozen=True, slots=True)
class _Persona:
    user: str
    role: str
    source: str
    models: tuple[tuple[str, int], ...]  # (model, weight)
    calls_per_day: tuple[int, int]
    night_owl: bool = False
    large_prompts: bool = False
    joins_on_day: int = 0  # 0 = from the first day; n = first seen n days before the end


_TEAM = (
    _Persona(
        "alice", "engineer", "key", (("claude-sonnet-5-5", 6), ("claude-haiku-5-5", 3)), (20, 45)
    ),
    _Persona(
        "bob", "engineer", "key", (("claude-sonnet-5-5", 4), ("claude-opus-4-8", 1)), (10, 30)
    ),
    _Persona(
        "carol",
        "analyst",
        "jwt",
        (("claude-opus-4-8", 3), ("claude-sonnet-5-5", 2)),
        (8, 20),
        large_prompts=True,
    ),
    _Persona(
        "dmitri",
        "engineer",
        "jwt",
        (("claude-haiku-5-5", 5), ("claude-sonnet-5-5", 1)),
        (5, 25),
        night_owl=True,
    ),
    _Persona("svc-support-bot", "service", "federation", (("claude-haiku-5-5", 1),), (40, 90)),
    _Persona(
        "eve-contractor", "contractor", "key", (("claude-sonnet-5-5", 1),), (3, 12), joins_on_day=6
    ),
    _Persona(
        "frank", "research", "federation", (("claude-mythos-5-2", 1),), (4, 10), joins_on_day=9
    ),
)
_DENIAL_REASONS = (
    "model not allowed for role",
    "daily token budget exceeded",
    "no verified identity",
    "outside allowed hours",
)
_DLP_KINDS = (
    ("pii.email",),
    ("pii.phone",),
    ("secret.anthropic-api-key",),
    ("pii.email", "pii.iban"),
)


@dataclass(frozen=True, slots=True)
class SeedResult:
    events: int
    first_ns: int
    last_ns: int
    pruned: int


def seed_audit(store: AuditStore, *, days: int = 30, now_ns: int, seed: int = 19) -> SeedResult:
    """Append ``days`` days (ending at ``now_ns``) of traffic, then prune what is older.

    A week before the period is written too, so "first seen" has history to compare with;
    its first two days are pruned away, so the store records a signed prune.
    """
    served = {m.id for m in default_models()}
    for persona in _TEAM:
        for model, _ in persona.models:
            assert model in served, f"{model} is not served by the emulator"  # a seeder bug
    rng = random.Random(seed)
    start_ns = (now_ns // NS_PER_DAY - days - _HISTORY_DAYS) * NS_PER_DAY
    events = sorted(
        _generate(rng, start_ns, days + _HISTORY_DAYS + 1, now_ns), key=lambda e: e.time_ns
    )
    cutoff_ns = start_ns + 2 * NS_PER_DAY
    older = [e for e in events if e.time_ns < cutoff_ns]
    # A checkpoint right after the older records is what lets the prune delete exactly them.
    for part in (older, events[len(older) :]):
        for i in range(0, len(part), 2000):
            store.append_many(part[i : i + 2000])
        store.checkpoint()
    pruned = store.prune(older_than_ns=cutoff_ns)
    return SeedResult(len(events), events[0].time_ns, events[-1].time_ns, pruned.deleted)


def _generate(rng: random.Random, start_ns: int, days: int, now_ns: int) -> Iterator[AuditEvent]:
    for day in range(days):
        day_ns = start_ns + day * NS_PER_DAY
        weekday = datetime.fromtimestamp(day_ns / _NS_PER_S, UTC).weekday()
        for persona in _TEAM:
            if persona.joins_on_day and day < days - persona.joins_on_day:
                continue
            low, high = persona.calls_per_day
            if weekday >= 5 and persona.role != "service":
                low, high = 0, max(1, high // 8)
            for _ in range(rng.randint(low, high)):
                when = day_ns + _time_of_day(rng, persona)
                if when < now_ns:
                    yield _call(rng, persona, when)
        if day % 9 == 4:
            yield from _auth_burst(rng, day_ns + rng.randint(1, 5) * 3600 * _NS_PER_S)
        if day % 10 == 7:
            yield from _rotation(rng, day_ns + 3 * 3600 * _NS_PER_S, revoke=day > days // 2)


def _time_of_day(rng: random.Random, persona: _Persona) -> int:
    if persona.role == "service":
        hour = rng.randint(0, 23)
    elif persona.night_owl and rng.random() < 0.35:
        hour = rng.choice((21, 22, 23, 0, 1, 2))
    else:
        hour = min(19, max(7, int(rng.gauss(13, 2.6))))
    return (hour * 3600 + rng.randint(0, 3599)) * _NS_PER_S + rng.randint(0, 999_999_999)


def _call(rng: random.Random, persona: _Persona, when: int) -> AuditEvent:
    models, weights = zip(*persona.models, strict=True)
    model = rng.choices(models, weights)[0]
    tokens_in = int(rng.lognormvariate(7.0, 0.9))
    if persona.large_prompts and rng.random() < 0.06:
        tokens_in = rng.randint(12_000, 60_000)
    common = {
        "time_ns": when,
        "user": persona.user,
        "role": persona.role,
        "identity_source": persona.source,
        "model": model,
        "prompt_hash": f"{rng.getrandbits(256):064x}",
        "request_id": f"req_{rng.getrandbits(64):016x}",
        "host": "app-01" if persona.role != "service" else "support-01",
        "app": "seed-audit",
    }
    roll = rng.random()
    if roll < 0.03 or (persona.role == "contractor" and roll < 0.15):
        return AuditEvent(
            type=EventType.DENIAL,
            decision=Decision.DENY,
            reason=rng.choice(_DENIAL_REASONS),
            input_tokens=tokens_in,
            **common,
        )
    if roll < 0.05:
        return AuditEvent(
            type=EventType.DLP_HIT,
            decision=Decision.REDACT,
            dlp_kinds=rng.choice(_DLP_KINDS),
            input_tokens=tokens_in,
            **common,
        )
    return AuditEvent(
        type=EventType.CALL,
        decision=Decision.ALLOW,
        input_tokens=tokens_in,
        output_tokens=int(rng.lognormvariate(6.2, 0.8)),
        latency_ms=round(rng.uniform(300, 9000), 1),
        stop_reason="end_turn",
        **common,
    )


def _auth_burst(rng: random.Random, when: int) -> Iterator[AuditEvent]:
    """A revoked CI key retried in a loop: 401s seconds apart."""
    for i in range(rng.randint(6, 14)):
        yield AuditEvent(
            type=EventType.CALL,
            time_ns=when + i * rng.randint(2, 20) * _NS_PER_S,
            user="ci-deploy",
            role="service",
            identity_source="key",
            model="claude-haiku-5-5",
            decision=Decision.ERROR,
            reason="authentication_error",
            host="ci-runner-7",
            app="seed-audit",
            extra={"http_status": 401},
        )


def _rotation(rng: random.Random, when: int, *, revoke: bool) -> Iterator[AuditEvent]:
    """One `keys rotate` run, as rotation records it; and a `keys revoke` when asked."""
    key_id = f"apikey_01{rng.getrandbits(40):010x}"
    steps = ["create_secret", "set_secret", "test_secret", "finish_secret"]
    if revoke:
        steps.append("revoke")
    for i, step in enumerate(steps):
        yield AuditEvent(
            type=EventType.KEY_ROTATION,
            time_ns=when + i * 2 * _NS_PER_S,
            reason=step,
            app="seed-audit",
            extra={
                "key_event": "key_rotation",
                "secret": "claude/prod-api-key",
                "store": "aws",
                "key_id": key_id,
                "outcome": "ok",
            },
        )
