"""Example values in tests, fixtures and docs: name-based findings are held back and counted,
format-recognised keys are reported wherever they are (issue 16 item 3)."""

from __future__ import annotations

import base64
import json
import random
import string
import time
from pathlib import Path

import pytest

from claudesec.detect.engine import default_engine
from claudesec.scan.examples import in_docstring, is_example_path
from tests.fixtures.cli import RunCli
from tests.fixtures.keys import KeyFactory
from tests.scan.conftest import report


def _password(seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(22)) + "#7"


def _encrypted_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse battery staple"),
    )
    return pem.decode()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    factory = KeyFactory(61)
    root = tmp_path / "project"
    for folder in ("src/app", "tests/unit", "docs", "examples"):
        (root / folder).mkdir(parents=True)
    assignment = f'DB_PASSWORD = "{_password(1)}"\n'
    (root / "src/app/settings.py").write_text(assignment)
    (root / "tests/unit/test_db.py").write_text(assignment)
    (root / "docs/setup.rst").write_text(f"Set ``DB_PASSWORD = '{_password(2)}'``\n")
    (root / "examples/config.env").write_text(f"API_TOKEN={_password(3)}\n")
    # A module docstring's configuration example, and the same shape in code.
    (root / "src/app/notify.py").write_text(
        f'"""Notifications.\n\n    slack:\n      api_key: {_password(4)}\n"""\n\n'
        f'API_KEY = "{_password(5)}"\n'
    )
    # Real key material in a test fixture: reported, whatever the folder.
    (root / "tests/unit/fixture_key.pem").write_text(factory.private_key("EC").value + "\n")
    (root / "tests/unit/fixture_enc.pem").write_text(_encrypted_key())
    (root / "tests/unit/keys.py").write_text(f'KEY = "{factory.anthropic_api().value}"\n')
    return root


def test_name_based_findings_in_tests_and_docs_are_held_back_and_counted(
    project: Path, run_cli: RunCli
) -> None:
    result = run_cli("scan", str(project), "--no-git", "-f", "json")
    found = sorted((f["path"], f["rule_id"]) for f in report(result)["findings"])
    assert found == [
        ("src/app/notify.py", "generic-secret-assignment"),  # the code, not the docstring
        ("src/app/settings.py", "generic-secret-assignment"),
        ("tests/unit/fixture_key.pem", "private-key"),
        ("tests/unit/keys.py", "anthropic-api-key"),
    ]
    # tests/unit/test_db.py, docs/setup.rst, examples/config.env, the docstring, the
    # passphrase-protected fixture key.
    assert report(result)["summary"]["held_examples"] == 5
    text = run_cli("scan", str(project), "--no-git")
    assert text.exit_code == 1
    assert "held back: 5 name-based findings in tests, fixtures and docs" in text.stderr


def test_scan_examples_report_shows_every_finding(
    project: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "claudesec.toml").write_text('[scan]\nexamples = "report"\n')
    monkeypatch.chdir(project)
    result = run_cli("scan", ".", "--no-git", "-f", "json")
    assert len(report(result)["findings"]) == 9
    assert report(result)["summary"]["held_examples"] == 0


@pytest.mark.parametrize(
    ("path", "example"),
    [
        ("tests/test_client.py", True),
        ("pkg/tests/data/creds.json", True),
        ("src/__tests__/auth.test.ts", True),
        ("internal/auth/token_test.go", True),
        ("web/login.spec.js", True),
        ("conftest.py", True),
        ("docs/guide/config.md", True),
        ("README.rst", True),
        ("apis/kms-2014-11-01.examples.json", True),
        ("botocore/data/kms/2014-11-01/examples-1.json", True),
        (".env.example", True),
        ("dist/pkg-1.0.whl!pkg/testdata/x.yaml", True),
        ("src/app/settings.py", False),
        ("deploy/.env", False),
        ("src/contest/latest.py", False),
        ("config/production.yaml", False),
        ("notes.txt", False),
    ],
)
def test_example_paths(path: str, example: bool) -> None:
    assert is_example_path(path) is example


def test_docstring_is_judged_by_paired_triple_quotes() -> None:
    code = b'"""doc\napi_key: x\n"""\nAPI_KEY = "y"\n'
    assert in_docstring("m.py", code, code.index(b"api_key"))
    assert not in_docstring("m.py", code, code.index(b"API_KEY"))
    assert not in_docstring("m.js", code, code.index(b"api_key"))
    unpaired = b'"""doc\napi_key: x\n'
    assert not in_docstring("m.py", unpaired, unpaired.index(b"api_key"))


def _jwt(claims: dict[str, object], seed: int) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    rng = random.Random(seed)
    signature = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(43))
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.{signature}"


def test_an_expired_jwt_is_no_credential_but_a_live_or_unbounded_one_is() -> None:
    engine = default_engine()
    now = int(time.time())
    expired = _jwt({"sub": "42", "exp": now - 3600}, 1)
    live = _jwt({"sub": "42", "exp": now + 3600}, 2)
    unbounded = _jwt({"user_id": 42, "role": "admin"}, 3)
    data = f"a={expired}\nb={live}\nc={unbounded}\n".encode()
    found = {h.secret.decode() for h in engine.find(data) if h.rule_id == "jwt"}
    assert found == {live, unbounded}


def test_a_camel_case_name_is_not_an_assigned_secret() -> None:
    engine = default_engine()
    code = b"token: exchangeRecaptchaV3Token\nsecret = getAccessToken2\n"
    assert [h.rule_id for h in engine.find(code)] == []
    real = f"token: {_password(9)}\n".encode()
    assert [h.rule_id for h in engine.find(real)] == ["generic-secret-assignment"]


def test_credential_metadata_names_hold_no_credential() -> None:
    engine = default_engine()
    data = b'"ServiceSpecificCredentialId": "ACCAQFODXMPL4YFHP7DZE",\n'
    assert [h.rule_id for h in engine.find(data) if h.rule_id.startswith("generic")] == []
