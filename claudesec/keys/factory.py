"""Build a :class:`~claudesec.keys.rotation.KeyManager` from the configuration."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from claudesec.keys.events import AuditSink, NullSink, open_sink
from claudesec.keys.inventory import default_seen
from claudesec.keys.rotation import KeyManager, Settings
from claudesec.stores import open_store

if TYPE_CHECKING:
    from claudesec.anthropic_admin import AdminClient
    from claudesec.config import Config


def admin_client(config: Config) -> AdminClient:
    from claudesec.anthropic_admin import AdminClient, resolve_admin_key

    key = resolve_admin_key(config.anthropic.admin_key_source, keys_config=config.keys)
    return AdminClient(
        config.anthropic.base_url,
        key,
        timeout_s=config.anthropic.timeout_s,
        max_retries=config.keys.admin_max_retries,
        max_retry_wait_s=config.keys.admin_max_retry_wait_s,
    )


def open_manager(
    config: Config, *, admin: bool = True, audit: bool = True, lazy_audit: bool = False
) -> KeyManager:
    """The manager for this configuration.

    ``admin=False`` skips resolving the Admin API key (read-only commands that can do
    without it); ``audit=False`` records nothing (dry runs); ``lazy_audit`` opens the audit
    store only when the first event is recorded.
    """
    from claudesec.anthropic_admin import probe_key

    sink: AuditSink = open_sink(config.audit, lazy=lazy_audit) if audit else NullSink()
    store = open_store(config.keys)
    return KeyManager(
        store,
        Settings.from_config(config),
        admin=admin_client(config) if admin else None,
        probe=partial(probe_key, config.anthropic.base_url, timeout_s=config.anthropic.timeout_s),
        sink=sink,
        # Keys the configuration names must exist: a wrong region must not look like "none".
        expected=tuple(config.keys.scope_secret_readers),
        seen=default_seen(store.kind, config.keys.secret_prefix),
    )
