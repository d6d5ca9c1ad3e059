"""Configuration: ``claudesec.toml`` (or ``[tool.claudesec]`` in ``pyproject.toml``) into typed,
frozen dataclasses, with ``CLAUDESEC_*`` environment overrides and a record of where each value
came from.

The schema is the dataclasses below; field metadata carries the help text (which becomes the
comments of ``config init``'s template) and marks secret values (redacted by ``config show``).
Every problem is a :class:`~claudesec.errors.ConfigError` naming the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin, get_type_hints

from claudesec.config_load import Context, build, open_config
from claudesec.config_scan import ScanConfig
from claudesec.config_scan import config_field as _f
from claudesec.errors import ConfigError


@dataclass(frozen=True)
class AnthropicConfig:
    """``[anthropic]``: where the Anthropic API is, where the Admin key comes from, timeouts."""

    base_url: str = _f("https://api.anthropic.com", "Anthropic API base URL (tests: the emulator).")
    admin_key_source: str = _f(
        "env:ANTHROPIC_ADMIN_KEY",
        "Where the Admin API key comes from: env:VAR, keyring:SERVICE/NAME, "
        "secretsmanager:SECRET_ID or store:NAME (a key managed by `claudesec keys`). Never "
        "the key itself.",
    )
    timeout_s: float = _f(
        10.0, "Timeout for each Anthropic API request, in seconds.", positive=True
    )
    oauth_profile: str = _f(
        "",
        "anthropic SDK profile (`ant auth login --scope org:admin`) holding the org:admin "
        "OAuth token that federation and service-account commands need (empty = the SDK's "
        "own credential chain: ANTHROPIC_PROFILE, ANTHROPIC_AUTH_TOKEN, the active profile).",
    )


@dataclass(frozen=True)
class AuditConfig:
    """``[audit]``: the local audit store: where it is, how often it is checkpointed, how long
    records are kept."""

    store_path: str = _f(
        "",
        "Audit store SQLite file (empty = audit.db in CLAUDESEC_HOME; a relative path is "
        "resolved under CLAUDESEC_HOME).",
    )
    checkpoint_every: int = _f(1000, "Write a signed checkpoint every N events (0 = never).")
    retention_days: int = _f(90, "Records older than this may be pruned by `logs prune`.")
    busy_timeout_ms: int = _f(5000, "How long a writer waits for the store lock before failing.")
    fail_closed: bool = _f(
        True, "Refuse Claude calls when the audit record cannot be written (recommended)."
    )
    app: str = _f("", "Application name recorded with every event.")
    prices: dict[str, float] = _f(
        {},
        "USD per million tokens for cost estimates, keyed 'MODEL_GLOB:input' / "
        "'MODEL_GLOB:output' (e.g. 'claude-sonnet-*:input' = 3.0).",
    )
    key_store: Literal["file", "keyring"] = _f(
        "file",
        "Where the prompt-hash key and the checkpoint signing key live: 'file' (0600 files "
        "in CLAUDESEC_HOME) or 'keyring' (the OS keyring).",
    )
    synchronous: Literal["normal", "full"] = _f(
        "normal",
        "SQLite durability: 'normal' survives a killed process; 'full' also survives power "
        "loss, at the cost of an fsync per event.",
    )
    environment: str = _f(
        "prod",
        "The environment this process runs in, which picks its sample rate (the CLAUDESEC_ENV "
        "variable wins over this).",
    )
    sample_rates: dict[str, float] = _f(
        {"dev": 0.1, "prod": 1.0},
        "Share (0-1) of allowed Claude calls recorded, per environment; denials, DLP hits and "
        "errors are always recorded, and an environment not listed records everything.",
    )


@dataclass(frozen=True)
class KeysConfig:
    """``[keys]``: where managed keys are stored and how they are rotated and retired."""

    store: Literal["secretsmanager", "keyring"] = _f(
        "secretsmanager", "Where managed keys live: AWS Secrets Manager or the OS keyring."
    )
    aws_region: str = _f("", "AWS region (empty = the standard AWS configuration chain).")
    aws_endpoint_url: str = _f("", "Secrets Manager endpoint override (tests, VPC endpoints).")
    secret_prefix: str = _f("claudesec/", "Prefix of the secrets claudesec manages.")
    pool_secret: str = _f("claudesec/pool", "Secret holding the pool of spare keys.")
    max_age_days: int = _f(90, "Rotate keys older than this (0 = every run: every key is due).")
    overlap_hours: int = _f(
        24, "Keep the previous key active this long after rotation (> consumers' cache TTL)."
    )
    pool_low_watermark: int = _f(2, "Warn when fewer spare keys than this remain.")
    aws_max_attempts: int = _f(
        3, "Attempts per AWS request (botocore standard retry mode).", positive=True
    )
    aws_timeout_s: float = _f(
        10.0, "Connect and read timeout of each AWS request, in seconds.", positive=True
    )
    admin_max_retries: int = _f(
        2, "Retries of an Admin API call after 429/5xx or a dropped connection."
    )
    admin_max_retry_wait_s: float = _f(
        30.0, "Longest retry-after claudesec waits for; a longer one fails the run (exit 3)."
    )
    lease_seconds: int = _f(
        600,
        "How long a rotation holds its lock on a key; a dead holder's lock expires then.",
        positive=True,
    )
    test_attempts: int = _f(
        3,
        "Authenticated calls tried with a freshly activated key before the rotation fails.",
        positive=True,
    )
    test_retry_delay_s: float = _f(2.0, "Pause between those calls, in seconds.")
    scope_readers: tuple[str, ...] = _f(
        (), "IAM role ARNs that may read every managed key (`keys scope`)."
    )
    scope_secret_readers: dict[str, tuple[str, ...]] = _f(
        {}, "Key name -> IAM role ARNs that may read that key only."
    )
    scope_rotator: str = _f("", "IAM role ARN that runs `keys rotate` (read and write).")
    scope_break_glass: tuple[str, ...] = _f(
        (), "IAM role ARNs for emergencies: full access to the secrets."
    )
    scope_source_vpce: tuple[str, ...] = _f(
        (), "If set, readers must come through these VPC endpoint ids (aws:SourceVpce)."
    )
    scope_source_vpc: tuple[str, ...] = _f(
        (), "If set, readers must come from these VPC ids (aws:SourceVpc)."
    )


@dataclass(frozen=True)
class RoleConfig:
    """``[policy.roles.NAME]``: what one role may call, and how much."""

    # Its table may name a client preset whose settings fill in what it leaves unset.
    takes_preset: ClassVar[bool] = True

    models: tuple[str, ...] = _f((), "Model globs this role may call (e.g. 'claude-haiku-*').")
    max_tokens: int = _f(4096, "Largest max_tokens a request may ask for.", positive=True)
    max_input_tokens: int = _f(100_000, "Largest estimated prompt size, in tokens.", positive=True)
    tools_allowed: bool = _f(False, "Whether requests may declare tools.")
    tokens_per_minute: int = _f(0, "Per-user token budget per minute (0 = unlimited).")
    tokens_per_day: int = _f(0, "Per-user token budget per day (0 = unlimited).")
    allowed_hours: str = _f("", "UTC hours when calls are allowed, e.g. '08-19' (empty = any).")
    dlp: Literal["block", "redact", "log"] = _f("block", "What to do with secrets/PII in prompts.")
    dlp_allow_values: tuple[str, ...] = _f(
        (),
        "Values DLP lets through for this role, on top of [dlp] allow_values (e.g. the fixed "
        "addresses a client puts in its own system prompt). Still counted in the record.",
    )
    dlp_allow_patterns: tuple[str, ...] = _f(
        (),
        "Python regexes a whole found value must match to be let through for this role, on "
        "top of [dlp] allow_patterns.",
    )
    max_tokens_mode: Literal["refuse", "clamp"] = _f(
        "refuse",
        "What a request over max_tokens gets: refuse it, or clamp (send it with the cap; the "
        "record says max_tokens_clamped).",
    )
    preset: str = _f(
        "",
        "Client preset whose settings fill in what this role leaves unset: claude-code, agent, "
        "workflow (see docs/proxy.md; an explicit setting wins).",
    )


@dataclass(frozen=True)
class PolicyConfig:
    """``[policy]``: which user has which role."""

    users: dict[str, str] = _f({}, "User id -> role for trusted back-ends.")
    roles: dict[str, RoleConfig] = _f({}, "Roles by name; anything not listed is denied.")


@dataclass(frozen=True)
class IdentityConfig:
    """``[identity]``: how callers prove who they are (OIDC tokens)."""

    issuer: str = _f(
        "", "OIDC issuer URL whose JWTs identify callers (empty = plain user ids only)."
    )
    audience: str = _f("", "Expected 'aud' claim of caller tokens.")
    jwks_url: str = _f(
        "", "JWKS URL (empty = discovered from the issuer's openid-configuration). HTTPS only."
    )
    algorithms: tuple[str, ...] = _f(
        ("RS256", "ES256", "EdDSA"), "Accepted signing algorithms ('none' is never accepted)."
    )
    leeway_s: int = _f(60, "Clock skew tolerated on exp/nbf/iat, in seconds.")
    user_claim: str = _f("sub", "Claim that names the user.")
    roles_claim: str = _f("groups", "Claim holding the caller's groups or roles.")
    group_roles: dict[str, str] = _f({}, "IdP group or role -> claudesec role.")
    jwks_cache_s: int = _f(
        3600, "How long fetched signing keys are trusted before a refresh.", positive=True
    )
    ca_bundle: str = _f("", "CA bundle for the issuer's TLS certificate (empty = system CAs).")
    roles_claims: tuple[str, ...] = _f(
        (),
        "Further claims read for groups/roles besides roles_claim (Entra ID: ['roles'] for app "
        "roles). Dotted paths reach nested claims (e.g. 'realm_access.roles').",
    )
    jwks_min_refresh_s: int = _f(
        60,
        "Least time between two JWKS fetches triggered by an unknown key id, so tokens with "
        "random kids cannot make claudesec hammer the IdP.",
    )
    timeout_s: float = _f(
        5.0, "Timeout of each request to the IdP (discovery, JWKS), in seconds.", positive=True
    )


@dataclass(frozen=True)
class SinkConfig:
    """``[export.sinks.NAME]``: one destination for audit events."""

    type: Literal[
        "jsonl", "splunk", "elastic", "datadog", "kafka", "cloudwatch", "s3", "lake", "syslog"
    ] = _f(
        "jsonl",
        "Transport: jsonl, splunk (HEC), elastic (_bulk), datadog, kafka, cloudwatch, s3, "
        "lake (Amazon Security Lake custom source, OCSF Parquet), syslog (RFC 5424 over TCP/TLS).",
    )
    format: Literal["", "ocsf", "ecs", "raw"] = _f(
        "",
        "Event shape: ocsf (OCSF 1.8 API Activity), ecs, raw (empty = ecs for elastic, else ocsf).",
    )
    path: str = _f(
        "", "jsonl: output file ('-' = stdout; relative paths are under CLAUDESEC_HOME)."
    )
    url: str = _f(
        "", "splunk/elastic/datadog: base URL (e.g. https://splunk:8088, https://es:9200)."
    )
    token_source: str = _f(
        "",
        "Where the sink's token comes from: env:VAR, keyring:SERVICE/NAME or "
        "secretsmanager:SECRET_ID (Splunk HEC token, Elastic API key, Datadog API key).",
    )
    username: str = _f("", "elastic: user for basic auth (with token_source as the password).")
    index: str = _f(
        "",
        "splunk: index; elastic: index pattern with strftime codes of the event time "
        "(default claude-logs-%Y.%m.%d).",
    )
    source: str = _f("claudesec", "splunk: source; datadog: ddsource.")
    sourcetype: str = _f("claudesec:ocsf", "splunk: sourcetype.")
    hec_ack: bool = _f(
        False, "splunk: use indexer acknowledgement (the cursor moves only once indexed)."
    )
    service: str = _f("claudesec", "datadog: service tag.")
    tags: tuple[str, ...] = _f((), "datadog: extra ddtags (key:value).")
    topic: str = _f("claude-audit", "kafka: topic.")
    brokers: str = _f("", "kafka: bootstrap.servers (host:port,...).")
    kafka_options: dict[str, str] = _f(
        {}, "kafka: extra librdkafka settings (e.g. security.protocol); no secrets here."
    )
    log_group: str = _f("", "cloudwatch: log group.")
    log_stream: str = _f("", "cloudwatch: log stream (empty = claudesec-HOST).")
    bucket: str = _f("", "s3/lake: bucket (s3: with Object Lock enabled for WORM storage).")
    prefix: str = _f("claudesec/", "s3: key prefix.")
    object_lock_mode: Literal["", "GOVERNANCE", "COMPLIANCE"] = _f(
        "", "s3: Object Lock mode of each object (empty = the bucket default)."
    )
    object_lock_days: int = _f(0, "s3: Object Lock retention of each object, in days.")
    lake_source: str = _f("claudesec", "lake: the Security Lake custom source name.")
    lake_account: str = _f(
        "", "lake: the accountId partition (the AWS account id or the source's external id)."
    )
    lake_location: str = _f(
        "", "lake: the source's key prefix in the bucket (empty = ext/<lake_source>/)."
    )
    syslog_address: str = _f(
        "",
        "syslog: tls://HOST:PORT (RFC 5425) or tcp://HOST:PORT, octet-counted (RFC 6587); "
        "relp://HOST:PORT or relp+tls://HOST:PORT for RELP (per-message acks, no loss across "
        "collector restarts).",
    )
    syslog_app_name: str = _f("claudesec", "syslog: APP-NAME of each message.")
    aws_region: str = _f(
        "", "cloudwatch/s3/lake: AWS region (empty = the AWS configuration chain)."
    )
    aws_endpoint_url: str = _f("", "cloudwatch/s3/lake: endpoint override (tests, VPC endpoints).")
    ca_bundle: str = _f("", "CA bundle for the sink's TLS certificate (empty = system CAs).")
    timeout_s: float = _f(10.0, "Timeout of each request to the sink, in seconds.", positive=True)
    batch_size: int = _f(0, "Events per request (0 = export.batch_size, capped by the sink).")


@dataclass(frozen=True)
class ExportConfig:
    """``[export]``: the sinks audit events are exported to, and how."""

    sinks: dict[str, SinkConfig] = _f({}, "Sinks by name: [export.sinks.NAME].")
    batch_size: int = _f(500, "Events per request to a sink.", positive=True)
    max_attempts: int = _f(
        8,
        "Tries of one batch after transient errors before giving up (exit 3).",
        positive=True,
    )
    backoff_initial_s: float = _f(0.5, "First retry delay, doubled each try, with full jitter.")
    backoff_max_s: float = _f(30.0, "Longest retry delay, in seconds.")
    poll_s: float = _f(1.0, "How often --follow looks for new events, in seconds.", positive=True)
    state_dir: str = _f("", "Cursors and dead-letter files (empty = export/ in CLAUDESEC_HOME).")


@dataclass(frozen=True)
class AlertTargetConfig:
    """``[alerts.targets.NAME]``: one place alerts are sent."""

    type: Literal["slack", "webhook"] = _f("webhook", "slack (incoming webhook) or webhook (JSON).")
    url_source: str = _f(
        "",
        "Where the URL comes from: env:VAR, keyring:SERVICE/NAME or secretsmanager:SECRET_ID "
        "(a Slack webhook URL is a secret).",
    )
    secret_source: str = _f(
        "", "webhook: HMAC-SHA256 key for the X-Claudesec-Signature header (same schemes)."
    )
    timeout_s: float = _f(5.0, "Timeout of each delivery, in seconds.", positive=True)
    ca_bundle: str = _f("", "CA bundle for the target's TLS certificate (empty = system CAs).")


@dataclass(frozen=True)
class AlertsConfig:
    """``[alerts]``: where alerts go and what raises one."""

    targets: dict[str, AlertTargetConfig] = _f({}, "Alert targets by name: [alerts.targets.NAME].")
    window: str = _f("1h", "How far back `logs alerts` looks by default.")
    prompt_tokens_over: int = _f(10_000, "Alert on a prompt larger than this, in tokens (0 = off).")
    on_denial: bool = _f(True, "Alert on every denied call.")
    on_dlp: bool = _f(True, "Alert on every DLP hit.")
    user_token_budget: int = _f(
        0, "Alert when one user's tokens within budget_window exceed this (0 = off)."
    )
    budget_window: str = _f("24h", "Window of user_token_budget.")
    allowed_hours: str = _f(
        "", "UTC hours when calls are expected, e.g. '07-20'; calls outside alert (empty = off)."
    )
    auth_failures: int = _f(
        5, "Alert when this many 401s happen within auth_window (a leaked or revoked key in use)."
    )
    auth_window: str = _f("5m", "Window of auth_failures.")
    dedup_s: int = _f(3600, "An alert with the same rule and subject is sent once per this.")
    max_per_minute: int = _f(20, "Most messages sent to one target per minute.", positive=True)


@dataclass(frozen=True)
class ArchiveConfig:
    """``[archive]``: where audit archives are written (a directory or S3), and how they are
    encrypted and locked."""

    directory: str = _f("", "Where archives are written (empty = archive/ in CLAUDESEC_HOME).")
    kek_source: str = _f(
        "file",
        "Key-encryption key: 'file' (0600 file in CLAUDESEC_HOME), 'keyring', or "
        "'kms:KEY_ID' (AWS KMS data keys).",
    )
    compression: Literal["lzma", "zlib"] = _f("lzma", "Compression before encryption.")
    aws_region: str = _f("", "KMS/S3 region (empty = the AWS configuration chain).")
    aws_endpoint_url: str = _f("", "KMS/S3 endpoint override (tests, VPC endpoints).")
    s3_bucket: str = _f("", "Upload each archive to this bucket (empty = keep it local only).")
    s3_prefix: str = _f("claudesec/archive/", "Key prefix of uploaded archives.")
    object_lock_mode: Literal["", "GOVERNANCE", "COMPLIANCE"] = _f(
        "COMPLIANCE", "Object Lock mode of uploaded archives (empty = the bucket default)."
    )
    object_lock_days: int = _f(365, "Object Lock retention of uploaded archives, in days.")


@dataclass(frozen=True)
class PromptVaultConfig:
    """``[prompt_vault]``: whether and where prompts are kept, encrypted."""

    enabled: bool = _f(
        False,
        "Keep the text of each recorded call, encrypted, in a separate vault file (for teams "
        "whose compliance needs it). The audit store itself never holds prompt text.",
    )
    path: str = _f(
        "",
        "Vault SQLite file (empty = prompt-vault.db in CLAUDESEC_HOME; a relative path is "
        "resolved under CLAUDESEC_HOME).",
    )
    kek_source: str = _f(
        "file",
        "Key-encryption key of the vault: 'file' (0600 file in CLAUDESEC_HOME), 'keyring', or "
        "'kms:KEY_ID' (AWS KMS data keys). Separate from the archive's KEK.",
    )
    aws_region: str = _f("", "KMS region (empty = the AWS configuration chain).")
    aws_endpoint_url: str = _f("", "KMS endpoint override (tests, VPC endpoints).")
    retention_days: int = _f(
        0,
        "Prompts older than this are removed by `logs prune` even while their records stay "
        "(0 = kept as long as their audit records).",
    )
    data_key_uses: int = _f(
        10_000,
        "Prompts sealed under one data key before a new one is made (bounds what one leaked "
        "data key exposes; each new key is one KMS call).",
        positive=True,
    )


@dataclass(frozen=True)
class DlpConfig:
    """``[dlp]``: what is found in prompts and answers, and what is done with it."""

    custom_patterns: dict[str, str] = _f(
        {},
        "Extra DLP detectors: kind -> Python regex, e.g. employee-id = 'EMP-[0-9]{6}'. The kind "
        "names the placeholder ([REDACTED:employee-id]); use lower-case letters, digits, '-'.",
    )
    disabled: tuple[str, ...] = _f(
        (),
        "DLP detector ids switched off: secret rule ids (as in `scan`) or PII kinds: email, "
        "phone, payment-card, us-ssn, iban, ip-address.",
    )
    responses: Literal["off", "secrets", "all"] = _f(
        "secrets",
        "Redact Claude's responses before the caller sees them: 'off', 'secrets' only, or "
        "'all' (secrets and PII).",
    )
    allow_values: tuple[str, ...] = _f(
        (),
        "Benign values DLP never blocks or redacts, for every role (exact match of the found "
        "value, e.g. 'noreply@example.com'); allowlisted hits are still counted in the record.",
    )
    allow_patterns: tuple[str, ...] = _f(
        (),
        "Python regexes: a found value that matches one whole is let through like "
        "allow_values, e.g. '[a-z]+@example\\.com'.",
    )
    normalize: bool = _f(
        False,
        "Also find values hidden by zero-width characters or soft hyphens, and keys split by "
        "spaces or newlines (extra work only near a rule's keyword or an invisible character).",
    )


@dataclass(frozen=True)
class ProxyConfig:
    """``[proxy]``: the gateway's address, its upstream, and the credential it calls with."""

    listen: str = _f("127.0.0.1:8788", "HOST:PORT `claudesec proxy` listens on.")
    upstream: str = _f("", "Anthropic API the proxy forwards to (empty = anthropic.base_url).")
    key_source: str = _f(
        "env:ANTHROPIC_API_KEY",
        "Where the Anthropic API key the proxy injects comes from: env:VAR, "
        "keyring:SERVICE/NAME, secretsmanager:SECRET_ID (a plain string, or JSON with a "
        "'key' field as `keys rotate` writes it) or store:NAME (a key managed by "
        "`claudesec keys`, re-read after rotation). Callers never see it.",
    )
    key_cache_s: float = _f(
        300.0,
        "How long the injected key is cached before it is re-read, so a rotation is picked "
        "up without a restart (an upstream 401 re-reads it at once).",
    )
    upstream_credential: Literal["key", "federation"] = _f(
        "key",
        "What the proxy calls Anthropic with: key (the static key of key_source) or federation "
        "(no key at all: it exchanges its own workload identity token under a federation rule "
        "for short-lived access tokens, refreshed before they expire).",
    )
    federation_rule_id: str = _f(
        "", "Federation rule the proxy exchanges under (empty = $ANTHROPIC_FEDERATION_RULE_ID)."
    )
    federation_organization_id: str = _f(
        "", "The organisation's UUID for the exchange (empty = $ANTHROPIC_ORGANIZATION_ID)."
    )
    federation_identity_token_file: str = _f(
        "",
        "File holding the proxy's own OIDC token, re-read at every exchange (a Kubernetes "
        "projected service-account token; empty = $ANTHROPIC_IDENTITY_TOKEN_FILE).",
    )
    federation_service_account_id: str = _f(
        "", "Service account to act as, when the rule needs it named (empty = the rule's)."
    )
    federation_workspace_id: str = _f(
        "", "Workspace to mint for, when the rule covers several (empty = the rule's choice)."
    )
    tls_cert_file: str = _f("", "PEM certificate (chain) to serve HTTPS (empty = plain HTTP).")
    tls_key_file: str = _f("", "PEM private key of tls_cert_file.")
    max_request_bytes: int = _f(
        32 * 1024 * 1024, "Largest request body accepted; larger gets 413.", positive=True
    )
    max_concurrent_streams: int = _f(
        256,
        "Streaming responses served at once; more get 429 with retry-after.",
        positive=True,
    )
    retry_after_s: int = _f(1, "retry-after (seconds) sent with a 429 for too many streams.")
    upstream_timeout_s: float = _f(
        600.0,
        "Longest wait for the upstream's next bytes (long generations stream slowly).",
        positive=True,
    )
    shutdown_grace_s: float = _f(
        30.0, "On SIGTERM/SIGINT, how long in-flight requests and streams may run to the end."
    )
    header_timeout_s: float = _f(
        10.0,
        "How long a client has to send a request's headers, from connecting or from its first "
        "byte after an answer; slower connections are closed (slowloris).",
    )
    body_timeout_s: float = _f(
        60.0, "How long a client has to send a whole request body; slower gets 408 and a close."
    )
    idle_timeout_s: float = _f(
        60.0, "How long a keep-alive connection may sit idle between requests before it closes."
    )
    max_connections: int = _f(
        1024,
        "Client connections open at once; more are answered 503 and closed at once, so idle "
        "or slow sockets cannot use up the proxy's file descriptors.",
    )
    token_store: str = _f(
        "", "Proxy token file (hashes only; empty = proxy-tokens.json in CLAUDESEC_HOME)."
    )
    token_default_days: int = _f(
        30, "Lifetime of a proxy token when --expires is not given.", positive=True
    )
    token_max_days: int = _f(365, "Longest lifetime a proxy token may be given.", positive=True)
    public_url: str = _f(
        "",
        "URL clients use to reach the proxy, printed by `proxy env` (empty = built from listen).",
    )


@dataclass(frozen=True)
class FederationConfig:
    """``[federation]``: workload identity federation as code."""

    # Tables checked by claudesec.federation.spec (presets, references, file lines).
    issuers: tuple[dict[str, Any], ...] = _f(
        (),
        "Federation issuers as code, one [[federation.issuers]] table each: name, preset "
        "(github-actions, gitlab-ci, kubernetes, generic), issuer_url, jwks, check_jti, "
        "max_jwt_lifetime_seconds, ca_cert_file (docs/federation.md).",
    )
    service_accounts: tuple[dict[str, Any], ...] = _f(
        (),
        "Service accounts, one [[federation.service_accounts]] table each: name, description, "
        "workspaces = [{ workspace, role }].",
    )
    rules: tuple[dict[str, Any], ...] = _f(
        (),
        "Federation rules, one [[federation.rules]] table each: name, issuer, service_account, "
        "workspace(s), preset sugar (repository, ref, environment, project_path, namespace, "
        "service_account_name) or raw match fields (docs/federation.md).",
    )


@dataclass(frozen=True)
class OrgSuppressionConfig:
    """``[[org.suppress]]``: one accepted finding of ``org check``."""

    check: str = _f("", "Check id to suppress (e.g. ORG-KEY-002).")
    resource: str = _f("*", "Resource id or glob the suppression covers ('*' = every resource).")
    reason: str = _f(
        "", "Why this finding is accepted (required: a suppression without one is an error)."
    )
    expires: str = _f(
        "", "Last day it applies, YYYY-MM-DD; afterwards it stops suppressing and warns."
    )


@dataclass(frozen=True)
class OrgConfig:
    """``[org]``: the thresholds and exceptions of ``org check``."""

    key_max_age_days: int = _f(90, "`org check`: an active API key older than this is flagged.")
    key_unused_days: int = _f(
        30,
        "`org check`: an active key unused this many days is flagged (and `--fix` deactivates it).",
    )
    key_expiring_days: int = _f(
        7, "`org check`: an active key expiring within this many days is flagged."
    )
    max_admins: int = _f(3, "`org check`: most organisation admins (admin, owner) expected.")
    max_developers: int = _f(25, "`org check`: most users with the developer role expected.")
    invite_max_pending_days: int = _f(
        14, "`org check`: a pending invite older than this is stale (`--fix` deletes it)."
    )
    allowed_email_domains: tuple[str, ...] = _f(
        (), "`org check`: email domains members and invites may use (empty = not checked)."
    )
    required_inference_geos: tuple[str, ...] = _f(
        (),
        "`org check`: inference geos every workspace must be restricted to, e.g. ['us'] "
        "(empty = no requirement).",
    )
    require_cmk: bool = _f(False, "`org check`: every workspace must use a customer-managed key.")
    require_compliance_api: bool = _f(True, "`org check`: the Compliance API must be enabled.")
    federation_max_token_lifetime_s: int = _f(
        3600,
        "`org check`: a federation rule minting tokens longer than this is flagged.",
        positive=True,
    )
    workspace_spend_limit: str = _f(
        "",
        "Spend limit per workspace in minor units (cents), e.g. '50000'; `org check --fix` sets it "
        "where a workspace has none (empty = `--fix` sets no limit).",
    )
    workspace_spend_period: Literal["daily", "weekly", "monthly"] = _f(
        "monthly", "Period of the workspace spend limit `--fix` sets."
    )
    fail_severity: Literal["critical", "high", "medium", "low"] = _f(
        "high", "`org check` exits 1 on a finding at or above this severity (--severity overrides)."
    )
    suppressions: tuple[OrgSuppressionConfig, ...] = _f(
        (), "Accepted findings: [[org.suppressions]] with check, resource, reason, expires."
    )


@dataclass(frozen=True)
class Config:
    """The whole configuration: one attribute per section."""

    anthropic: AnthropicConfig = field(default_factory=AnthropicConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    dlp: DlpConfig = field(default_factory=DlpConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    prompt_vault: PromptVaultConfig = field(default_factory=PromptVaultConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    org: OrgConfig = field(default_factory=OrgConfig)


# Each section's class, from its default: ``get_type_hints`` would evaluate every annotation
# (~20 ms at import, on every command's start).
SECTIONS: dict[str, type[Any]] = {
    f.name: type(f.default_factory())  # type: ignore[operator]
    for f in fields(Config)
}


@dataclass(frozen=True)
class LoadedConfig:
    """The effective configuration, the file it came from, and each value's source."""

    config: Config
    path: Path | None
    sources: Mapping[str, str]
    # With ``load_config(collect=True)``: every problem found (the bad values kept their
    # defaults in ``config``); empty when the file is valid. Otherwise the first one is raised.
    problems: tuple[ConfigError, ...] = ()

    @property
    def scan(self) -> ScanConfig:
        return self.config.scan


# --------------------------------------------------------------------------- discovery


# --------------------------------------------------------------------------- loading


def load_config(
    path: Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    collect: bool = False,
) -> LoadedConfig:
    """Load the effective configuration.

    ``path`` (``--config``) wins, then ``CLAUDESEC_CONFIG``, then the nearest file from ``cwd``
    upwards; no file at all means the embedded defaults. Environment overrides apply last.
    ``collect`` gathers every key-level problem into :attr:`LoadedConfig.problems` instead of
    raising the first (``config validate``); unreadable TOML is still raised at once.
    """
    env = os.environ if environ is None else environ
    data, ctx = open_config(path, cwd=cwd, environ=env, sections=SECTIONS, collect=collect)
    config = build(Config, data, "", ctx)
    _check_patterns(config, ctx)
    return LoadedConfig(
        config=config, path=ctx.path, sources=ctx.sources, problems=tuple(ctx.problems)
    )


def _check_patterns(config: Config, ctx: Context) -> None:
    """Regular expressions in the config compile, or the key that holds a bad one is named."""
    lists = [("dlp.allow_patterns", config.dlp.allow_patterns)]
    lists += [
        (f"policy.roles.{name}.dlp_allow_patterns", role.dlp_allow_patterns)
        for name, role in config.policy.roles.items()
    ]
    for dotted, patterns in lists:
        for pattern in patterns:
            problem = ""
            try:
                if re.compile(pattern).fullmatch(""):
                    problem = f"the pattern {pattern!r} matches the empty string"
            except re.error as exc:
                problem = f"invalid regular expression {pattern!r}: {exc}"
            if problem:
                path, line = ctx.where(dotted)
                ctx.problem(ConfigError(f"'{dotted}': {problem}", path=path, line=line))


# --------------------------------------------------------------------------- presenting


def flatten(config: Config) -> list[tuple[str, Any, bool]]:
    """``(dotted key, value, is_secret)`` for every leaf value, in schema order."""
    rows: list[tuple[str, Any, bool]] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            dotted = f"{prefix}.{f.name}" if prefix else f.name
            if dataclasses.is_dataclass(value):
                walk(value, dotted)
            elif (
                isinstance(value, dict)
                and value
                and all(dataclasses.is_dataclass(v) for v in value.values())
            ):
                for name, sub in value.items():
                    walk(sub, f"{dotted}.{name}")
            elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
                # An array of tables ([[org.suppressions]]): each entry as its table.
                tables = [dataclasses.asdict(v) for v in value]
                rows.append((dotted, tables, bool(f.metadata.get("secret"))))
            else:
                rows.append((dotted, value, bool(f.metadata.get("secret"))))

    walk(config, "")
    return rows


STARTER_ROLE = "starter"


def template(starter_user: str | None = None) -> str:
    """A commented claudesec.toml holding every setting at its default.

    With ``starter_user``, a clearly marked starter policy follows that lets that user call
    Claude (deny by default would otherwise refuse every audited call of a first run).
    """
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("claudesec configuration. Every value shown is the default."))
    doc.add(
        tomlkit.comment(
            "Environment overrides: CLAUDESEC_<SECTION>_<KEY>, e.g. CLAUDESEC_KEYS_MAX_AGE_DAYS=30"
        )
    )
    defaults = Config()
    for section in dataclasses.fields(Config):
        table = tomlkit.table()
        value = getattr(defaults, section.name)
        for f in dataclasses.fields(value):
            table.add(tomlkit.comment(str(f.metadata.get("help", ""))))
            current = getattr(value, f.name)
            if isinstance(current, dict) and not current:
                table.add(tomlkit.comment(f"{f.name} = {{}}"))
                continue
            element = get_args(get_type_hints(type(value))[f.name])
            if current == () and (get_origin(element[0]) or dataclasses.is_dataclass(element[0])):
                # An array of tables: `name = []` here would clash with [[section.name]] later.
                table.add(tomlkit.comment(f"[[{section.name}.{f.name}]] tables"))
                continue
            item = list(current) if isinstance(current, tuple) else current
            table.add(f.name, item)
        doc.add(tomlkit.nl())
        doc.add(section.name, table)
    doc.add(tomlkit.nl())
    doc.add(tomlkit.comment("A role, for the audited client and the proxy:"))
    doc.add(tomlkit.comment("[policy.roles.analyst]"))
    doc.add(tomlkit.comment('models = ["claude-haiku-*", "claude-sonnet-*"]'))
    doc.add(tomlkit.comment("max_tokens = 2048"))
    doc.add(tomlkit.comment("A role for Claude Code through `claudesec proxy` (docs/proxy.md):"))
    doc.add(tomlkit.comment("[policy.roles.dev]"))
    doc.add(tomlkit.comment('preset = "claude-code"   # or "agent", "workflow"'))
    doc.add(tomlkit.comment("[policy.users]"))
    doc.add(tomlkit.comment('alice = "analyst"'))
    text = tomlkit.dumps(doc)
    if starter_user:
        text += _starter_policy(starter_user)
    return text


def _starter_policy(user: str) -> str:
    name = user if re.fullmatch(r"[A-Za-z0-9_-]+", user) else f'"{user}"'
    return f"""
# ---- STARTER POLICY (written by `claudesec config init`) ------------------------------------
# claudesec denies every audited call by default. This starter lets {user} call the Haiku and
# Sonnet models, blocks prompts holding secrets or personal data, and caps max_tokens at 4096.
# Review it before production: `claudesec policy show`, and
# `claudesec policy check --user NAME --model MODEL` explains any decision.
[policy.users]
{name} = "{STARTER_ROLE}"

[policy.roles.{STARTER_ROLE}]
models = ["claude-haiku-*", "claude-sonnet-*"]
max_tokens = 4096
dlp = "block"
# ---- END STARTER POLICY -----------------------------------------------------------------------
"""


def reference_markdown() -> str:
    """The README's config reference table, generated from the schema."""
    import json

    lines = ["| key | default | meaning |", "|---|---|---|"]

    def walk(cls: type[Any], prefix: str) -> None:
        for f in dataclasses.fields(cls):
            hint = get_type_hints(cls)[f.name]
            dotted = f"{prefix}.{f.name}" if prefix else f.name
            if dataclasses.is_dataclass(hint):
                walk(hint, dotted)  # type: ignore[arg-type]
                continue
            value_type = get_args(hint)[1] if get_origin(hint) is dict else None
            if value_type is not None and dataclasses.is_dataclass(value_type):
                walk(value_type, f"{dotted}.NAME")  # type: ignore[arg-type]
                continue
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = None
            shown = json.dumps(list(default) if isinstance(default, tuple) else default)
            lines.append(f"| `{dotted}` | `{shown}` | {f.metadata.get('help', '')} |")

    walk(Config, "")
    return "\n".join(lines) + "\n"
