"""Read the whole organisation once: every kind of :data:`~claudesec.org.model.RESOURCE_KINDS`.

:class:`InventoryReader` pages each kind to the end (``after_id`` for the Admin API's
``SyncPage`` listings, the opaque ``page`` cursor for the ``SyncPageCursor`` ones), reads
per-parent kinds once per parent item (a few at a time), and reads the usage report into
``key_last_used``. Rate limits and server errors are retried by :class:`AdminHttp` (bounded).
A kind the credential may not read (403), the organisation is not enrolled in, or that keeps
failing becomes an :class:`~claudesec.org.model.Unavailable` entry and the run goes on: checks
that need it are skipped, never passed. Only an Admin key the API refuses outright (401) or an
unreachable API stops the run. The result is cached on the reader, so every check of one run
judges the same read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from claudesec.anthropic_admin import USAGE_PATH, AnthropicError
from claudesec.errors import ExitCode
from claudesec.org.http import AdminHttp, Credential
from claudesec.org.model import RESOURCE_KINDS, OrgInventory, ResourceKind, Unavailable

if TYPE_CHECKING:
    from claudesec.config import Config

# The environment variable the anthropic SDK reads an OAuth access token from; an org:admin
# token there (from `ant auth login --scope org:admin`) unlocks service accounts and federation.
OAUTH_TOKEN_ENV = "ANTHROPIC_AUTH_TOKEN"  # noqa: S105 - a variable name

# Kinds paged by after_id/has_more/last_id (anthropic's SyncPage); the rest use `page`.
_ID_PAGED = frozenset(
    {"api_keys", "users", "invites", "workspaces", "workspace_members", "webhooks"}
)
_ID_PAGE_MAX = 1000
_CURSOR_PAGE_MAX = 100
# The anthropic-beta flag each beta resource requires (from anthropic 2.16's resources).
_BETA_FLAGS: Mapping[str, str] = {
    "spend_limits": "spend-limit-reads-2026-09-26",
    "telemetry_destinations": "telemetry-destinations-2026-08-11",
    "webhooks": "webhooks-2026-10-07",
    "claude_code_managed_settings": "ce-claude-code-managed-settings-2026-10-06",
    "claude_code_default_settings": "ce-claude-code-managed-settings-2026-10-06",
    "claude_code_group_settings": "ce-claude-code-managed-settings-2026-10-06",
    "claude_code_group_settings_documents": "ce-claude-code-managed-settings-2026-10-06",
}
# Listing options that make a listing complete for posture: the default workspace counts, and
# so do archived objects (a key left active in an archived workspace or acting as an archived
# service account, a rule left on an archived issuer, are findings: ORG-KEY-010, ORG-KEY-011,
# ORG-FED-006). Checks of settings judge only live objects.
_ARCHIVED = ("include_archived", "true")
_EXTRA_PARAMS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "workspaces": (("include_default", "true"), _ARCHIVED),
    "service_accounts": (_ARCHIVED,),
    "federation_issuers": (_ARCHIVED,),
    "federation_rules": (_ARCHIVED,),
}
_MAX_PAGES = 100_000  # a server that never ends its listing is a bug, not an organisation
USAGE_KIND = "usage_report"


class _KindFailed(Exception):
    def __init__(self, unavailable: Unavailable) -> None:
        super().__init__(unavailable.message)
        self.unavailable = unavailable


@dataclass(frozen=True)
class ReadOptions:
    """How the reader pages: ``page_size`` overrides each endpoint's maximum (tests use a
    small one to cross pages); ``parallel`` is how many parents are read at once."""

    page_size: int | None = None
    parallel: int = 4
    usage_window_days: int = 30
    kinds: Sequence[ResourceKind] = field(default_factory=lambda: RESOURCE_KINDS)


class InventoryReader:
    """Reads an :class:`OrgInventory` once per run and keeps it."""

    def __init__(
        self,
        http: AdminHttp,
        *,
        admin_key: str | None,
        oauth_token: str | None = None,
        options: ReadOptions | None = None,
        now: datetime | None = None,
    ) -> None:
        self._http = http
        self._admin = Credential("admin_key", admin_key) if admin_key else None
        self._oauth = Credential("oauth", oauth_token) if oauth_token else None
        self._options = options or ReadOptions()
        self._now = now
        self._cached: OrgInventory | None = None

    def read(self) -> OrgInventory:
        if self._cached is None:
            self._cached = self._read()
        return self._cached

    # ------------------------------------------------------------------------------ run

    def _read(self) -> OrgInventory:
        now = self._now or datetime.now(UTC)
        lists: dict[str, tuple[Mapping[str, Any], ...]] = {}
        singletons: dict[str, Mapping[str, Any]] = {}
        unavailable: list[Unavailable] = []
        for kind in self._options.kinds:
            try:
                if kind.shape == "singleton":
                    singletons[kind.name] = self._call(kind, kind.path, ())
                elif kind.shape == "list":
                    lists[kind.name] = tuple(self._walk(kind, kind.path))
                else:
                    lists[kind.name] = self._per_parent(kind, lists, unavailable)
            except _KindFailed as failed:
                unavailable.append(failed.unavailable)
        key_last_used = self._usage(now, unavailable)
        organization = singletons.get("organization") or {}
        return OrgInventory(
            fetched_at=now,
            organization_id=str(organization.get("id", "")),
            lists=lists,
            singletons=singletons,
            unavailable=tuple(unavailable),
            key_last_used=key_last_used,
            usage_window_days=self._options.usage_window_days,
        )

    def _credential(self, kind: ResourceKind) -> Credential:
        if kind.credential == "org_admin_oauth":
            if self._oauth is None:
                raise _KindFailed(
                    Unavailable(
                        kind.name,
                        "forbidden",
                        f"{kind.name} needs an OAuth access token with the org:admin scope; "
                        "none was configured",
                    )
                )
            return self._oauth
        credential = self._admin or (self._oauth if kind.credential == "either" else None)
        if credential is None:
            raise _KindFailed(
                Unavailable(kind.name, "forbidden", f"{kind.name} needs an Admin API key")
            )
        return credential

    def _call(
        self, kind: ResourceKind, path: str, params: Sequence[tuple[str, str]]
    ) -> dict[str, Any]:
        credential = self._credential(kind)
        flag = _BETA_FLAGS.get(kind.name)
        try:
            return self._http.request(
                kind.method, path, params, credential, betas=(flag,) if flag else ()
            )
        except AnthropicError as exc:
            if exc.status == 401 and credential.kind == "admin_key":
                raise  # the Admin key itself is refused: nothing else will read either
            raise _KindFailed(_unavailable(kind.name, exc)) from None

    # ------------------------------------------------------------------------------ paging

    def _walk(self, kind: ResourceKind, path: str) -> Iterator[Mapping[str, Any]]:
        by_id = kind.name in _ID_PAGED
        limit = self._options.page_size or (_ID_PAGE_MAX if by_id else _CURSOR_PAGE_MAX)
        base = [("limit", str(limit)), *_EXTRA_PARAMS.get(kind.name, ())]
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            params = list(base)
            if cursor is not None:
                params.append(("after_id" if by_id else "page", cursor))
            page = self._call(kind, path, params)
            data = page.get("data") or []
            yield from (item for item in data if isinstance(item, Mapping))
            if by_id:
                more = bool(page.get("has_more")) and bool(page.get("last_id"))
                cursor = str(page["last_id"]) if more else None
            else:
                cursor = str(page["next_page"]) if page.get("next_page") else None
            if cursor is None:
                return
            if cursor in seen:
                raise _KindFailed(
                    Unavailable(kind.name, "error", f"{kind.name}: the listing repeats a page")
                )
            seen.add(cursor)
        raise _KindFailed(Unavailable(kind.name, "error", f"{kind.name}: too many pages"))

    def _per_parent(
        self,
        kind: ResourceKind,
        lists: Mapping[str, tuple[Mapping[str, Any], ...]],
        unavailable: Sequence[Unavailable],
    ) -> tuple[Mapping[str, Any], ...]:
        assert kind.parent is not None
        if kind.parent not in lists:
            # Not read because its parent was not: the same reason, so a kind forbidden to
            # this credential does not turn its children into failures of the run.
            cause = next((u for u in unavailable if u.kind == kind.parent), None)
            raise _KindFailed(
                Unavailable(
                    kind.name,
                    cause.reason if cause else "error",
                    f"{kind.name}: not read, its parent {kind.parent} was not",
                )
            )
        # An archived parent has nothing live under it to judge (and the API may refuse to
        # list its members): its children are not read.
        parent_ids = [
            str(item[kind.parent_key]) for item in lists[kind.parent] if not item.get("archived_at")
        ]
        self._credential(kind)  # fail the kind once, not once per parent

        def one(parent_id: str) -> list[Mapping[str, Any]]:
            # The id is the API's data, not path syntax: a "/", "?" or "#" in it must not
            # steer the request (with our credential) to another resource.
            path = kind.path.replace("{parent_id}", quote(parent_id, safe=""))
            try:
                if kind.shape == "per_parent_singleton":
                    items: list[Mapping[str, Any]] = [self._call(kind, path, ())]
                else:
                    items = list(self._walk(kind, path))
            except _KindFailed as failed:
                if failed.unavailable.reason == "not_found":
                    return []  # the parent went away between the two reads
                raise
            return [{**item, "_parent_id": parent_id} for item in items]

        workers = max(1, min(self._options.parallel, len(parent_ids)))
        if workers == 1:
            results = [one(parent_id) for parent_id in parent_ids]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="org-inventory") as pool:
                results = list(pool.map(one, parent_ids))
        return tuple(item for chunk in results for item in chunk)

    # ------------------------------------------------------------------------------ usage

    def _usage(self, now: datetime, unavailable: list[Unavailable]) -> dict[str, datetime] | None:
        """When the usage report last saw each key (day buckets over the window)."""
        if self._admin is None:
            unavailable.append(
                Unavailable(USAGE_KIND, "forbidden", "the usage report needs an Admin API key")
            )
            return None
        days = self._options.usage_window_days
        start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        last_used: dict[str, datetime] = {}
        page: str | None = None
        for _ in range(_MAX_PAGES):
            params = [
                ("starting_at", _rfc3339(start)),
                ("ending_at", _rfc3339(now)),
                ("bucket_width", "1d"),
                ("limit", "31"),
                ("group_by[]", "api_key_id"),
            ]
            if page:
                params.append(("page", page))
            try:
                answer = self._http.request("GET", USAGE_PATH, params, self._admin)
            except AnthropicError as exc:
                unavailable.append(_unavailable(USAGE_KIND, exc))
                return None
            for bucket in answer.get("data") or []:
                if not isinstance(bucket, Mapping):
                    continue
                seen_at = _parse_time(bucket.get("starting_at"))
                for row in bucket.get("results") or []:
                    key_id = row.get("api_key_id") if isinstance(row, Mapping) else None
                    if (
                        key_id
                        and seen_at
                        and (key_id not in last_used or last_used[key_id] < seen_at)
                    ):
                        last_used[key_id] = seen_at
            page = answer.get("next_page") if answer.get("has_more") else None
            if not page:
                return last_used
        unavailable.append(Unavailable(USAGE_KIND, "error", "usage report: too many pages"))
        return None


def _unavailable(kind: str, exc: AnthropicError) -> Unavailable:
    message = str(exc).splitlines()[0] if str(exc) else f"{kind}: failed"
    if exc.status in {401, 403}:
        return Unavailable(kind, "forbidden", message)
    if exc.status == 404:
        return Unavailable(kind, "not_found", message)
    if exc.status == 400 and "beta" in message.lower():
        return Unavailable(kind, "not_enrolled", message)
    return Unavailable(kind, "error", message)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def exit_code(inventory: OrgInventory) -> ExitCode:
    """0 when every kind the credential may read was read; 4 (partial) when some failed.

    A kind refused to the credential (forbidden) or not enrolled is a fact about the
    organisation, named in ``unavailable``, not a failure of the run.
    """
    if any(entry.reason == "error" for entry in inventory.unavailable):
        return ExitCode.PARTIAL
    return ExitCode.OK


def reader_from_config(
    config: Config,
    *,
    environ: Mapping[str, str],
    options: ReadOptions | None = None,
) -> InventoryReader:
    """A reader with the configured Admin key (``anthropic.admin_key_source``) and, when the
    environment holds one, an OAuth access token for the org:admin-only kinds."""
    from claudesec.anthropic_admin import resolve_admin_key

    admin_key = resolve_admin_key(
        config.anthropic.admin_key_source, environ=environ, keys_config=config.keys
    )
    http = AdminHttp(
        config.anthropic.base_url,
        timeout_s=config.anthropic.timeout_s,
        max_retries=config.keys.admin_max_retries,
        max_retry_wait_s=config.keys.admin_max_retry_wait_s,
    )
    return InventoryReader(
        http, admin_key=admin_key, oauth_token=_oauth_token(config, environ), options=options
    )


def _oauth_token(config: Config, environ: Mapping[str, str]) -> str | None:
    """An org:admin OAuth access token for the kinds only it may read, from the same place
    every claudesec command takes it (:mod:`claudesec.anthropic_oauth`, the SDK's own chain
    and profiles); None, so those kinds are named unavailable, when there is none."""
    from claudesec.anthropic_oauth import resolve_org_admin_credential
    from claudesec.errors import ConfigError

    token = environ.get(OAUTH_TOKEN_ENV)
    if token and not token.startswith("sk-ant-"):
        return token  # the SDK's chain would pick it first too
    if not (config.anthropic.oauth_profile or any(v in environ for v in _OAUTH_HINTS)):
        return None  # no OAuth set up: the Admin key reads everything else
    try:
        credential = resolve_org_admin_credential(
            config.anthropic.oauth_profile, base_url=config.anthropic.base_url
        )
        minted = credential.provider().token
    except ConfigError:
        return None
    return str(minted) if minted else None


# Variables through which the anthropic SDK's chain finds an OAuth credential.
_OAUTH_HINTS = (OAUTH_TOKEN_ENV, "ANTHROPIC_PROFILE", "ANTHROPIC_FEDERATION_RULE_ID")
