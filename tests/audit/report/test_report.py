"""`claudesec report`: the numbers, the escaping of attacker-controlled strings, the JSON twin
and the CLI, on real stores (seeded through the real chained, signed store)."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from claudesec.audit import AuditEvent, AuditStore
from claudesec.audit.query import summarise
from claudesec.audit.report import CSP, ReportInputs, build_report, render_html
from claudesec.config import AlertsConfig
from claudesec.emulator.seed import seed_audit

from ...fixtures.cli import RunCli
from ..helpers import DAY_NS, open_store, raw

# The store stamps checkpoints and prunes with the wall clock, so the seeded month ends now;
# no assertion depends on which weekday that is.
NOW_NS = time.time_ns()
EVIL_USER = "<script>alert(1)</script>"
EVIL_MODEL = '"><img src=x onerror=alert(2)>'
EVIL_REASON = "</style><style>body{display:none}</style>"


def _inputs(**changes: object) -> ReportInputs:
    values: dict[str, object] = {
        "since_ns": NOW_NS - 30 * DAY_NS,
        "until_ns": NOW_NS + DAY_NS,  # the seed's prune is recorded just after NOW_NS
        "now_ns": NOW_NS,
        "alerts": AlertsConfig(allowed_hours="07-19"),
    }
    values.update(changes)
    return ReportInputs(**values)  # type: ignore[arg-type]


@pytest.fixture
def seeded(tmp_path: Path) -> AuditStore:
    store = open_store(tmp_path / "audit.db", checkpoint_every=500)
    seed_audit(store, days=30, now_ns=NOW_NS)
    return store


def _evil_store(path: Path) -> AuditStore:
    store = open_store(path)
    for i in range(3):
        store.append(
            AuditEvent(
                type="call",
                time_ns=NOW_NS - DAY_NS + i,
                user=EVIL_USER,
                role=EVIL_USER,
                model=EVIL_MODEL,
                input_tokens=50,
                decision="allow",
            )
        )
    store.append(
        AuditEvent(
            type="denial",
            time_ns=NOW_NS - DAY_NS + 9,
            user=EVIL_USER,
            decision="deny",
            reason=EVIL_REASON,
        )
    )
    return store


class _Markup(HTMLParser):
    """What a browser would build: every tag and attribute name."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.styles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)
        self.styles += tag == "style"


def test_attacker_controlled_names_render_inert(tmp_path: Path) -> None:
    with _evil_store(tmp_path / "audit.db") as store:
        page = render_html(build_report(store, _inputs()))
    markup = _Markup()
    markup.feed(page)
    assert "script" not in markup.tags and "img" not in markup.tags
    assert not [a for a in markup.attributes if a.startswith("on")]
    assert markup.styles == 1  # ours; the reason's </style><style> stayed text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert EVIL_USER not in page and EVIL_MODEL not in page


def test_page_forbids_every_fetch_and_script(seeded: AuditStore) -> None:
    page = render_html(build_report(seeded, _inputs()))
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert CSP == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    markup = _Markup()
    markup.feed(page)
    assert "script" not in markup.tags and "link" not in markup.tags
    assert "svg" in markup.tags and "@media print" in page


def test_a_seeded_month_fills_every_section(seeded: AuditStore) -> None:
    report = build_report(
        seeded,
        _inputs(
            drills={
                "drills": [{"name": "leak-in-commit", "status": "passed", "time_to_block_ms": 41.5}]
            },
            drills_source="drills.json",
            sarif={"runs": [{"results": [{"ruleId": "anthropic-api-key", "level": "error"}]}]},
            sarif_source="scan.sarif",
        ),
    )
    assert report.integrity_ok
    for section in report.sections:
        assert section.figures, section.id
    for figure_id in (
        "integrity-checkpoints",
        "integrity-prunes",
        "access-by-day",
        "access-by-user",
        "access-by-role",
        "access-by-model",
        "access-denials",
        "access-dlp",
        "access-identity",
        "access-new-users",
        "cost-by-day",
        "cost-by-user",
        "cost-large-prompts",
        "cost-auth-bursts",
        "cost-off-hours",
        "cost-new-models",
        "keys-steps",
        "keys-events",
        "defences-drills",
        "defences-scan",
    ):
        figure = next(f for s in report.sections for f in s.figures if f.id == figure_id)
        assert figure.rows, figure_id
        assert figure.query.startswith("claudesec "), figure_id
    new_users = {row[0] for row in report.section("access").figures[-1].rows}
    assert new_users == {"eve-contractor", "frank"}


def test_calls_by_user_match_logs_summary(seeded: AuditStore) -> None:
    # Whole UTC days, as summary counts them: the two must give the same numbers.
    start = (NOW_NS - 30 * DAY_NS) // DAY_NS * DAY_NS
    until = NOW_NS // DAY_NS * DAY_NS
    report = build_report(seeded, _inputs(since_ns=start, until_ns=until))
    summary = summarise(seeded, "user", since_ns=start, until_ns=until)
    by_user = next(f for f in report.section("access").figures if f.id == "access-by-user")
    assert dict(by_user.rows) == {r.key: r.calls for r in summary.rows if r.calls}
    spend = next(f for f in report.section("cost").figures if f.id == "cost-by-user")
    assert {r[0]: r[3] for r in spend.rows} == {
        r.key: round(r.cost_usd, 2)
        for r in summary.rows
        if r.key  # key events: no user
    }


def test_json_twin_carries_the_same_numbers(seeded: AuditStore) -> None:
    report = build_report(seeded, _inputs())
    data = json.loads(json.dumps(report.to_dict()))
    page = render_html(report)
    access = next(s for s in data["sections"] if s["id"] == "access")
    assert access["facts"]["calls"] == report.section("access").facts[1][1]
    for row in next(f for f in access["figures"] if f["id"] == "access-by-user")["rows"]:
        assert f'<td>{row["user"]}</td><td class="n">{row["calls"]:,}</td>' in page


def test_a_tampered_store_is_reported_and_exits_1(
    run_cli: RunCli, claudesec_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    _evil_store(path).close()
    with raw(path) as conn:
        conn.execute(
            "UPDATE events SET body = replace(body, '\"input_tokens\":50', "
            "'\"input_tokens\":5') WHERE seq = 2"
        )
    out = tmp_path / "r.html"
    result = run_cli(
        "report",
        "--store",
        str(path),
        "--out",
        str(out),
        "--since",
        "2026-01-01",
        "--until",
        "2027-01-01",
    )
    assert result.exit_code == 1, result.output
    assert "INTEGRITY CHECK FAILED" in out.read_text(encoding="utf-8")
    assert "DAMAGED" in out.read_text(encoding="utf-8")


def test_cli_writes_html_and_json(run_cli: RunCli, claudesec_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _evil_store(path).close()
    period = ("--since", "2026-01-01", "--until", "2027-01-01")
    html_out, json_out = tmp_path / "r.html", tmp_path / "r.json"
    assert run_cli("report", "--store", str(path), "--out", str(html_out), *period).exit_code == 0
    result = run_cli(
        "report", "--store", str(path), "--format", "json", "--out", str(json_out), *period
    )
    assert result.exit_code == 0, result.output
    assert html_out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    data = json.loads(json_out.read_text(encoding="utf-8"))
    assert data["integrity_ok"] is True
    assert data["sections"][1]["facts"]["denials"] == 1


def test_cli_refuses_bad_inputs_with_one_line(
    run_cli: RunCli, claudesec_home: Path, tmp_path: Path
) -> None:
    missing = run_cli(
        "report", "--store", str(tmp_path / "none.db"), "--out", str(tmp_path / "r.html")
    )
    assert missing.exit_code == 2 and "no audit store" in missing.stderr
    path = tmp_path / "audit.db"
    _evil_store(path).close()
    bad = tmp_path / "drills.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    result = run_cli(
        "report", "--store", str(path), "--drills", str(bad), "--out", str(tmp_path / "r.html")
    )
    assert result.exit_code == 2 and "drills.json" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_the_documented_first_run_gives_data_in_every_section(
    run_cli: RunCli, claudesec_home: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "demo-audit.db")
    seeded = run_cli("emulator", "seed-audit", "--days", "30", "--store", store)
    assert seeded.exit_code == 0, seeded.output
    out = tmp_path / "report.json"
    result = run_cli("report", "--store", store, "--format", "json", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["integrity_ok"] is True
    for section in data["sections"]:
        if section["id"] != "defences":  # needs --drills/--scan, covered above
            assert any(f["rows"] for f in section["figures"]), section["id"]


def test_the_anchor_given_is_compared(
    run_cli: RunCli, claudesec_home: Path, tmp_path: Path
) -> None:
    from claudesec.config import load_config

    with AuditStore.from_config(load_config().config.audit) as store:
        store.append(AuditEvent(type="call", user="alice", time_ns=NOW_NS))
    anchor = tmp_path / "anchor.json"
    exported = run_cli("logs", "checkpoint", "--export", str(anchor))
    assert exported.exit_code == 0, exported.output
    out = tmp_path / "r.json"
    result = run_cli("report", "--anchor", str(anchor), "--format", "json", "--out", str(out))
    assert result.exit_code == 0, result.output
    facts = json.loads(out.read_text(encoding="utf-8"))["sections"][0]["facts"]
    assert facts["anchor"].startswith("matches anchor checkpoint #")


def test_org_check_and_federation_lint_logs_are_defences_and_suppressed_results_are_not_counted(
    seeded: AuditStore,
) -> None:
    def log(*results: dict[str, object]) -> dict[str, object]:
        return {"version": "2.1.0", "runs": [{"results": list(results)}]}

    report = build_report(
        seeded,
        _inputs(
            org_check=log(
                {"ruleId": "ORG-KEY-001", "level": "error"},
                {"ruleId": "ORG-KEY-001", "level": "error"},
                {"ruleId": "ORG-INV-001", "level": "note", "suppressions": [{"kind": "external"}]},
            ),
            org_check_source="org.sarif",
            federation_lint=log(),
            federation_lint_source="federation.sarif",
        ),
    )
    defences = report.section("defences")
    figures = {f.id: f for f in defences.figures}
    assert dict(figures["defences-org-check"].rows) == {"ORG-KEY-001 (error)": 2}
    assert figures["defences-org-check"].query.startswith("claudesec org check")
    assert figures["defences-federation-lint"].rows == ()
    assert "clean" in figures["defences-federation-lint"].note
    assert ("org check findings", 2) in defences.facts


def test_identity_sources_name_the_upstream_credential(tmp_path: Path) -> None:
    from tests.audit.helpers import event, open_store

    store = open_store(tmp_path / "audit.db")
    federated = {"kind": "federation", "issuer": "https://idp", "rule_id": "fdrl_1"}
    store.append_many(
        [
            event(1, time_ns=NOW_NS - DAY_NS, identity_source="oidc", upstream=federated),
            event(2, time_ns=NOW_NS - DAY_NS, identity_source="oidc", upstream=federated),
            event(3, time_ns=NOW_NS - DAY_NS, identity_source="oidc"),
            event(
                4,
                time_ns=NOW_NS - DAY_NS,
                identity_source="trusted",
                upstream={"kind": "api_key", "key_hint": "sk-ant-api03-R2D...igAA"},
            ),
        ]
    )
    report = build_report(store, _inputs())
    identity = next(f for f in report.section("access").figures if f.id == "access-identity")
    assert dict(identity.rows) == {
        "oidc, upstream federation": 2,
        "oidc": 1,
        "trusted, upstream api_key": 1,
    }
    store.close()
