"""Alerts: rules over the audit log, sent to Slack or a webhook, de-duplicated and rate-limited.

Rules (thresholds in ``[alerts]``): a prompt over N tokens, any denial, any DLP hit, a user's
tokens over a budget within a window, calls outside the allowed UTC hours, and a burst of
401s (a leaked or revoked key being tried). Per-event rules look at the events in the window;
the windowed rules (budget, 401 burst) are SQL aggregates over the store.

A message holds rule, user, counts, model and DLP kinds (detector ids): never prompt text
(the store has none), never a secret, never a policy ``reason`` (free text a writer could
fill with anything).

401s are events whose ``extra`` carries ``http_status`` (or ``status``) 401, as the audited
client and the proxy record failed upstream calls.

De-duplication: an alert with the same rule and subject is sent once per ``dedup_s``; each
target gets at most ``max_per_minute`` messages. Both are remembered in a sidecar SQLite file
(``alerts.db``) so cron runs and ``logs watch`` restarts do not repeat themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from claudesec.audit.events import Decision, EventType
from claudesec.audit.store import AuditStore, StoredEvent
from claudesec.config import AlertsConfig, AlertTargetConfig
from claudesec.errors import ConfigError, ExternalServiceError
from claudesec.timeparse import format_ns, parse_duration_ns

RULES = ("large_prompt", "denial", "dlp", "token_budget", "off_hours", "auth_burst")
_SEVERITY = {
    "large_prompt": "warning",
    "denial": "warning",
    "dlp": "high",
    "token_budget": "warning",
    "off_hours": "warning",
    "auth_burst": "high",
    "leaked_key": "high",  # a live key found by `scan --verify` (claudesec.scan.respond)
}
_401_SQL = "(json_extract(body, '$.http_status') = 401 OR json_extract(body, '$.status') = 401)"


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    subject: str  # the user (or "*" for store-wide rules)
    count: int
    first_ns: int
    last_ns: int
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}"

    @property
    def severity(self) -> str:
        return _SEVERITY.get(self.rule, "warning")

    def text(self) -> str:
        """One line for humans (Slack): identifiers and numbers only."""
        extra = ", ".join(f"{k}={_short(v)}" for k, v in sorted(self.detail.items()))
        when = f"{format_ns(self.first_ns)}..{format_ns(self.last_ns)}"
        line = (
            f"[claudesec {self.severity}] {self.rule}: user {self.subject}, {self.count}x, {when}"
        )
        return f"{line} ({extra})" if extra else line

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "subject": self.subject,
            "count": self.count,
            "first": format_ns(self.first_ns),
            "last": format_ns(self.last_ns),
            "detail": dict(self.detail),
        }


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- evaluation


@dataclass
class _Acc:
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def add(self, time_ns: int) -> None:
        self.count += 1
        self.first_ns = time_ns if not self.first_ns else min(self.first_ns, time_ns)
        self.last_ns = max(self.last_ns, time_ns)


def parse_hours(text: str) -> tuple[int, int] | None:
    """``"07-20"`` -> (7, 20): calls from 07:00 to 20:59 UTC are expected. Wraps midnight."""
    if not text:
        return None
    try:
        start, end = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise ConfigError(f"alerts.allowed_hours must look like '07-20', got {text!r}") from None
    if not (0 <= start <= 23 and 0 <= end <= 23):
        raise ConfigError(f"alerts.allowed_hours must use hours 0-23, got {text!r}")
    return start, end


def outside_hours(hours: tuple[int, int], time_ns: int) -> bool:
    """Whether a call at ``time_ns`` falls outside the UTC ``hours`` (alerts and the report)."""
    hour = datetime.fromtimestamp(time_ns / 1e9, UTC).hour
    start, end = hours
    inside = start <= hour <= end if start <= end else (hour >= start or hour <= end)
    return not inside


def evaluate_events(events: Iterable[StoredEvent], config: AlertsConfig) -> list[Alert]:
    """The per-event rules over ``events``, one alert per rule and user."""
    hours = parse_hours(config.allowed_hours)
    found: dict[tuple[str, str], _Acc] = {}

    def hit(rule: str, user: str, time_ns: int, **detail: Any) -> None:
        acc = found.setdefault((rule, user or "(unknown)"), _Acc())
        acc.add(time_ns)
        for key, value in detail.items():
            if key == "max_input_tokens":
                acc.detail[key] = max(int(acc.detail.get(key, 0)), int(value))
            elif key == "dlp_kinds":
                acc.detail[key] = sorted(set(acc.detail.get(key, [])) | set(value))
            else:
                acc.detail[key] = value

    for stored in events:
        event = stored.event
        is_call = event.type in (EventType.CALL, EventType.DENIAL, EventType.DLP_HIT)
        if not is_call:
            continue
        if config.prompt_tokens_over and event.input_tokens > config.prompt_tokens_over:
            hit(
                "large_prompt",
                event.user,
                event.time_ns,
                max_input_tokens=event.input_tokens,
                model=event.model,
            )
        if config.on_denial and (event.decision == Decision.DENY or event.type == EventType.DENIAL):
            hit("denial", event.user, event.time_ns, model=event.model)
        if config.on_dlp and (event.dlp_kinds or event.type == EventType.DLP_HIT):
            hit("dlp", event.user, event.time_ns, dlp_kinds=list(event.dlp_kinds))
        if hours is not None and outside_hours(hours, event.time_ns):
            hit("off_hours", event.user, event.time_ns, allowed_hours=config.allowed_hours)
    return [
        Alert(rule, user, acc.count, acc.first_ns, acc.last_ns, acc.detail)
        for (rule, user), acc in sorted(found.items())
    ]


def evaluate_windows(store: AuditStore, config: AlertsConfig, *, now_ns: int) -> list[Alert]:
    """The windowed rules: token budget per user, and bursts of 401s."""
    alerts: list[Alert] = []
    with store.snapshot() as conn:
        if not store.initialised(conn):
            return []
        if config.user_token_budget > 0:
            since = now_ns - parse_duration_ns(config.budget_window)
            rows = conn.execute(
                "SELECT user, sum(input_tokens + output_tokens), count(*), min(time_ns), "
                "max(time_ns) FROM events WHERE time_ns >= ? AND user != '' GROUP BY user "
                "HAVING sum(input_tokens + output_tokens) > ?",
                (since, config.user_token_budget),
            ).fetchall()
            for user, tokens, count, first, last in rows:
                alerts.append(
                    Alert(
                        "token_budget",
                        user,
                        int(count),
                        int(first),
                        int(last),
                        {
                            "tokens": int(tokens),
                            "budget": config.user_token_budget,
                            "window": config.budget_window,
                        },
                    )
                )
        if config.auth_failures > 0:
            since = now_ns - parse_duration_ns(config.auth_window)
            row = conn.execute(
                f"SELECT count(*), min(time_ns), max(time_ns), "  # noqa: S608 - fixed SQL
                f"count(DISTINCT user) FROM events WHERE time_ns >= ? AND {_401_SQL}",
                (since,),
            ).fetchone()
            if row[0] >= config.auth_failures:
                alerts.append(
                    Alert(
                        "auth_burst",
                        "*",
                        int(row[0]),
                        int(row[1]),
                        int(row[2]),
                        {"window": config.auth_window, "users": int(row[3])},
                    )
                )
    return alerts


def evaluate(store: AuditStore, config: AlertsConfig, *, since_ns: int, now_ns: int) -> list[Alert]:
    """Every rule over the events since ``since_ns``."""
    from claudesec.audit.query import EventFilter, iter_events

    events = iter_events(store, EventFilter(since_ns=since_ns))
    return evaluate_events(events, config) + evaluate_windows(store, config, now_ns=now_ns)


def sample_alert(now_ns: int | None = None) -> Alert:
    """What ``logs alerts test`` sends."""
    now = time.time_ns() if now_ns is None else now_ns
    return Alert("test", "claudesec-test", 1, now, now, {"note": "test alert, no action needed"})


# --------------------------------------------------------------------------- delivery


class Target(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


class SlackTarget:
    """A Slack incoming webhook: ``{"text": ...}``."""

    def __init__(self, name: str, url: str, *, timeout_s: float = 5.0, ca_bundle: str = "") -> None:
        self.name = name
        self._url = url
        self._timeout_s = timeout_s
        self._ca_bundle = ca_bundle

    def send(self, alert: Alert) -> None:
        body = json.dumps({"text": alert.text()}).encode()
        _post(
            self.name,
            self._url,
            body,
            {"Content-Type": "application/json"},
            self._timeout_s,
            self._ca_bundle,
        )


class WebhookTarget:
    """A generic JSON webhook, signed with HMAC-SHA256 when a secret is configured."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str = "",
        timeout_s: float = 5.0,
        ca_bundle: str = "",
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret.encode()
        self._timeout_s = timeout_s
        self._ca_bundle = ca_bundle

    def send(self, alert: Alert) -> None:
        body = json.dumps({"source": "claudesec", **alert.to_dict()}, sort_keys=True).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Claudesec-Signature"] = f"sha256={digest}"
        _post(self.name, self._url, body, headers, self._timeout_s, self._ca_bundle)


def _post(
    name: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    ca_bundle: str,
) -> None:
    import http.client
    from urllib.parse import urlsplit

    from claudesec.audit.export._http import HttpClient

    parts = urlsplit(url)
    client = HttpClient(
        f"{parts.scheme}://{parts.netloc}", timeout_s=timeout_s, ca_bundle=ca_bundle
    )
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        answer = client.request("POST", path or "/", body, headers)
    except (OSError, http.client.HTTPException) as exc:
        # The URL itself may be the secret (Slack): name the target, never the URL.
        raise ExternalServiceError(
            f"alert target {name!r} unreachable: {type(exc).__name__}"
        ) from exc
    finally:
        client.close()
    if not 200 <= answer.status < 300:
        raise ExternalServiceError(f"alert target {name!r} answered HTTP {answer.status}")


def build_targets(
    targets: Mapping[str, AlertTargetConfig], names: Sequence[str] = ()
) -> list[Target]:
    from claudesec.audit.export.credentials import resolve_secret

    chosen = list(names) or sorted(targets)
    built: list[Target] = []
    for name in chosen:
        if name not in targets:
            raise ConfigError(
                f"no alert target named {name!r}",
                hint="add [alerts.targets.NAME] to claudesec.toml",
            )
        config = targets[name]
        url = resolve_secret(config.url_source, what=f"alerts.targets.{name}.url_source")
        if config.type == "slack":
            built.append(
                SlackTarget(name, url, timeout_s=config.timeout_s, ca_bundle=config.ca_bundle)
            )
        else:
            secret = (
                resolve_secret(config.secret_source, what=f"alerts.targets.{name}.secret_source")
                if config.secret_source
                else ""
            )
            built.append(
                WebhookTarget(
                    name, url, secret=secret, timeout_s=config.timeout_s, ca_bundle=config.ca_bundle
                )
            )
    return built


class AlertState:
    """What was sent when: de-duplication and per-target rate limits survive restarts."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, sent_ns INTEGER NOT NULL)"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS deliveries (target TEXT NOT NULL, sent_ns INTEGER NOT NULL)"
        )

    def recently_sent(self, key: str, now_ns: int, dedup_s: int) -> bool:
        row = self._conn.execute("SELECT sent_ns FROM sent WHERE key = ?", (key,)).fetchone()
        return row is not None and now_ns - int(row[0]) < dedup_s * 1_000_000_000

    def mark_sent(self, key: str, now_ns: int) -> None:
        self._conn.execute(
            "INSERT INTO sent (key, sent_ns) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET sent_ns = excluded.sent_ns",
            (key, now_ns),
        )

    def deliveries_last_minute(self, target: str, now_ns: int) -> int:
        since = now_ns - 60_000_000_000
        self._conn.execute("DELETE FROM deliveries WHERE sent_ns < ?", (since,))
        row = self._conn.execute(
            "SELECT count(*) FROM deliveries WHERE target = ? AND sent_ns >= ?", (target, since)
        ).fetchone()
        return int(row[0])

    def record_delivery(self, target: str, now_ns: int) -> None:
        self._conn.execute(
            "INSERT INTO deliveries (target, sent_ns) VALUES (?, ?)", (target, now_ns)
        )

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True, slots=True)
class NotifyResult:
    sent: int
    duplicates: int
    rate_limited: int
    failures: tuple[str, ...]


def notify(
    alerts: Sequence[Alert],
    targets: Sequence[Target],
    state: AlertState | None,
    config: AlertsConfig,
    *,
    now_ns: int | None = None,
) -> NotifyResult:
    """Send each new alert to every target, skipping duplicates and over-limit messages."""
    now = time.time_ns() if now_ns is None else now_ns
    sent = duplicates = limited = 0
    failures: list[str] = []
    for alert in alerts:
        if state is not None and state.recently_sent(alert.key, now, config.dedup_s):
            duplicates += 1
            continue
        delivered = False
        for target in targets:
            if (
                state is not None
                and state.deliveries_last_minute(target.name, now) >= config.max_per_minute
            ):
                limited += 1
                continue
            try:
                target.send(alert)
            except ExternalServiceError as exc:
                failures.append(exc.user_message())
                continue
            delivered = True
            sent += 1
            if state is not None:
                state.record_delivery(target.name, now)
        if delivered and state is not None:
            state.mark_sent(alert.key, now)
    return NotifyResult(sent, duplicates, limited, tuple(failures))
