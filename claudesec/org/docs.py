"""``docs/org-check.md``, generated from the catalogue (``scripts/update-org-docs``; a test
keeps the file equal to :func:`markdown`)."""

from __future__ import annotations

from claudesec.emulator.org_variants import VARIANTS
from claudesec.org.catalogue import AREAS, CHECKS
from claudesec.org.rules import FRAMEWORK_NAMES

INTRO = """\
# `claudesec org check`: the Claude organisation against a benchmark

<!-- Generated from claudesec/org/catalogue.py by scripts/update-org-docs; do not edit. -->

`claudesec org check` judges one read of the organisation's Admin API resources (API keys,
users, invites, workspaces and their members, spend and rate limits, telemetry destinations,
webhooks, compliance settings, customer-managed keys, RBAC, service accounts, federation and
Claude Code managed settings) against the catalogue below. Each check is mapped to SOC 2,
ISO/IEC 27001:2022 Annex A and CIS Controls v8.

```
claudesec org check --inventory inventory.json
claudesec org check --format sarif > org.sarif
claudesec org check --framework soc2 --severity critical
claudesec org check --fix
```

- **Input**: the live organisation, or `--inventory FILE` (a JSON inventory written earlier,
  for evidence or offline runs). `--keys` also reads claudesec's key store, to tell the keys
  claudesec manages from the others.
- **Output**: text (`--format text`, styled on a terminal), `json`, `sarif` (SARIF 2.1.0 for
  code scanning), `junit`, `ocsf` (OCSF Compliance Finding events, class 2003, one per line,
  in the OCSF version of the audit export). `--framework soc2|iso27001|cis` groups by control.
- **Exit code**: 1 when a finding at or above `--severity` (default `org.fail_severity`,
  `high`) remains, 0 otherwise; 2 on a usage or configuration error; 3 when the Admin API
  failed; 4 when `--fix --yes` applied some changes and some failed.
- **Skipped, never passed**: a check whose resources could not be read (forbidden to the key,
  not enrolled) or that has nothing to judge (the configuration requires nothing) is reported
  as skipped with the reason.
- **Baseline**: `--write-baseline FILE` records today's findings; `--baseline FILE` reports
  only new ones.
- **Suppressions** live in the configuration, each with a reason (required) and an optional
  expiry; an expired suppression stops suppressing and warns:

```toml
[[org.suppressions]]
check = "ORG-KEY-002"
resource = "apikey_01Legacy*"   # an id or a glob; "*" for every resource
reason = "batch job being migrated to federation, SEC-123"
expires = "2027-03-31"
```

- **Fixes**: `--fix` prints the safe remediations (deactivate keys unused for
  `org.key_unused_days`, set `org.workspace_spend_limit` on workspaces without a limit, delete
  stale invites); `--fix --yes` applies them and writes each change to the audit log. A key
  claudesec rotates is never deactivated here (rotation retires it after its overlap window),
  and without `--keys` no key is touched.

Thresholds and requirements are the `[org]` settings (see the README's configuration
reference): `key_max_age_days`, `key_unused_days`, `key_expiring_days`, `max_admins`,
`max_developers`, `invite_max_pending_days`, `allowed_email_domains`,
`required_inference_geos`, `require_cmk`, `require_compliance_api`,
`federation_max_token_lifetime_s`, `workspace_spend_limit`, `workspace_spend_period`.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\\\|")


EMULATOR = """\
## Try it on the emulator

The emulator serves seeded organisations over the Admin API, so `org check` runs with no
account:

```
claudesec emulator serve --org messy --keys-file keys.json
claudesec emulator serve --org clean --keys-file keys.json
claudesec emulator serve --org clean+ORG-KEY-003 --keys-file keys.json
```

`--keys-file` receives an Admin key and an org:admin OAuth token (point
`anthropic.base_url` at the printed URL, `ANTHROPIC_ADMIN_KEY` and `ANTHROPIC_AUTH_TOKEN` at
them). `clean` fails no check; `clean+CHECK-ID` is the clean organisation with the one defect
that makes that check fail (each check below names it under *Failing fixture*); a few
defects imply another check too (an old key with an expiry also outlives the maximum age;
the federation linter reports any over-broad rule as ORG-FED-001). The key-store checks
(ORG-KEY-012, ORG-DRIFT-001, ORG-DRIFT-002) also need `--keys` and a key store managing the
clean organisation's keys; their fixture serves the organisation's half of the defect.
"""


def _emulator_section() -> list[str]:
    from claudesec.emulator.org_fixtures import CLEAN_SPEND_LIMIT, MESSY_FAILING_CHECKS
    from claudesec.emulator.org_fixtures import ORG_CHECK_SETTINGS as SEEDED

    settings = ", ".join(f"`{name} = {_toml(value)}`" for name, value in sorted(SEEDED.items()))
    return [
        EMULATOR,
        f"The seeded organisations are judged with these `[org]` settings: {settings}; the "
        f'variants also with `workspace_spend_limit = "{CLEAN_SPEND_LIMIT}"` (cents), the '
        "clean organisation's amount, so ORG-LIM-004 runs.",
        "",
        f"`messy` fails exactly these {len(MESSY_FAILING_CHECKS)} checks: "
        f"{', '.join(MESSY_FAILING_CHECKS)}.",
        "",
    ]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def markdown() -> str:
    lines = [INTRO, *_emulator_section(), f"## The {len(CHECKS)} checks", ""]
    lines.append("| id | severity | title | SOC 2 | ISO 27001 | CIS v8 |")
    lines.append("|---|---|---|---|---|---|")
    for check in CHECKS:
        lines.append(
            f"| [{check.id}](#{check.id.lower()}) | {check.severity} | {_cell(check.title)} | "
            f"{', '.join(check.soc2)} | {', '.join(check.iso27001)} | {', '.join(check.cis)} |"
        )
    for area in AREAS:
        lines += ["", f"## {area.replace('_', ' ').capitalize()}"]
        for check in (c for c in CHECKS if c.area == area):
            lines += ["", f"### {check.id}", "", f"**{check.title}** ({check.severity})", ""]
            lines.append(f"*Why*: {check.rationale}")
            lines.append("")
            lines.append(f"*Console*: {check.console}")
            lines.append("")
            lines.append(f"*API*: {check.api}")
            lines.append("")
            mapped = "; ".join(
                f"{FRAMEWORK_NAMES[fw]} {', '.join(check.controls(fw))}" for fw in FRAMEWORK_NAMES
            )
            lines.append(f"*Controls*: {mapped}")
            lines.append("")
            reads = ", ".join(f"`{kind}`" for kind in check.needs)
            extra = (
                f"; settings {', '.join(f'`org.{s}`' for s in check.settings)}"
                if check.settings
                else ""
            )
            fix = "; `--fix` remediates it" if check.fixable else ""
            lines.append(f"*Reads*: {reads}{extra}{fix}")
            variant = VARIANTS.get(check.id)
            if variant is not None:
                lines.append("")
                also = f" (also fails {', '.join(variant.also)})" if variant.also else ""
                local = f"; in claudesec's key store, {variant.local}" if variant.local else ""
                lines.append(
                    f"*Failing fixture*: `--org clean+{check.id}`, {variant.defect}{local}{also}"
                )
    return "\n".join(lines) + "\n"
