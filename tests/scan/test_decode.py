"""Looking inside: archives (with bomb limits), UTF-16, notebooks, base64 blobs; and every file
not scanned counted in the summary."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import random
import string
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.cli import RunCli
from tests.fixtures.keys import KeyFactory
from tests.scan.conftest import report


def _pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _found(run_cli: RunCli, *args: str) -> dict[str, str]:
    result = run_cli("scan", *args, "-f", "json")
    return {f["path"]: f["rule_id"] for f in report(result)["findings"]}


def test_archives_of_every_kind_are_scanned_inside(tmp_path: Path, run_cli: RunCli) -> None:
    factory = KeyFactory(90)
    line = f"KEY = '{factory.anthropic_api().value}'\n".encode()
    inner_tar = _tar({"pkg/settings.py": line})
    (tmp_path / "bundle.zip").write_bytes(_zip({"app/config.py": line}))
    (tmp_path / "lib.jar").write_bytes(_zip({"META-INF/app.properties": line}))
    (tmp_path / "pkg-1.0-py3-none-any.whl").write_bytes(_zip({"pkg/keys.py": line}))
    (tmp_path / "src.tar").write_bytes(inner_tar)
    (tmp_path / "src.tar.gz").write_bytes(gzip.compress(inner_tar))
    (tmp_path / "src.tar.xz").write_bytes(lzma.compress(inner_tar))
    (tmp_path / "dump.sql.bz2").write_bytes(bz2.compress(line))
    (tmp_path / "app.log.gz").write_bytes(gzip.compress(line))
    # An archive inside an archive: the path names both.
    (tmp_path / "release.zip").write_bytes(_zip({"dist/src.tar.gz": gzip.compress(inner_tar)}))
    found = _found(run_cli, str(tmp_path), "--no-git")
    assert found == {
        "bundle.zip!app/config.py": "anthropic-api-key",
        "lib.jar!META-INF/app.properties": "anthropic-api-key",
        "pkg-1.0-py3-none-any.whl!pkg/keys.py": "anthropic-api-key",
        "src.tar!pkg/settings.py": "anthropic-api-key",
        "src.tar.gz!pkg/settings.py": "anthropic-api-key",
        "src.tar.xz!pkg/settings.py": "anthropic-api-key",
        "dump.sql.bz2!dump.sql": "anthropic-api-key",
        "app.log.gz!app.log": "anthropic-api-key",
        "release.zip!dist/src.tar.gz!pkg/settings.py": "anthropic-api-key",
    }


def test_a_nested_zip_bomb_hits_the_limits_and_is_reported(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 42.zip's shape, built here: each level holds 16 copies of the level below; the bottom
    # member is 64 MB of zeros (64 KB deflated). Fully expanded: 16**3 * 64 MB = 256 GB.
    bottom = _zip({"zeros.bin": b"\0" * (64 * 1024 * 1024)})
    level = bottom
    for _ in range(3):
        level = _zip({f"part{i:02}.zip": level for i in range(16)})
    key = KeyFactory(91).anthropic_api().value
    (tmp_path / "bomb.zip").write_bytes(level)
    (tmp_path / "deep.zip").write_bytes(
        _zip({"a.zip": _zip({"b.zip": _zip({"c.zip": _zip({"d.zip": _zip({"k.txt": b"x"})})})})})
    )
    (tmp_path / "ok.zip").write_bytes(_zip({"k.env": f"K={key}\n".encode()}))
    (tmp_path / "claudesec.toml").write_text("[scan]\narchive_max_mb = 20\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan", "--no-git", "--show-skipped")
    assert result.exit_code == 1
    assert "ok.zip!k.env:1:3: anthropic-api-key" in result.stdout
    assert "bomb.zip: not scanned further, expands to more than 20 MB" in result.stderr
    assert "nested deeper than 4 levels" in result.stderr
    assert "(limit hit): bomb.zip" in result.stderr
    assert "limit hit" in result.stderr.split("not scanned:", 1)[1].splitlines()[0]


def test_utf16_text_with_and_without_bom(tmp_path: Path, run_cli: RunCli) -> None:
    factory = KeyFactory(92)
    text = "# exported by a Windows tool\r\nTOKEN={}\r\n"
    (tmp_path / "bom.ps1").write_bytes(text.format(factory.anthropic_api().value).encode("utf-16"))
    (tmp_path / "le.reg").write_bytes(
        text.format(factory.github_classic().value).encode("utf-16-le")
    )
    (tmp_path / "be.txt").write_bytes(text.format(factory.npm().value).encode("utf-16-be"))
    result = run_cli("scan", str(tmp_path), "--no-git", "-f", "json")
    found = {(f["path"], f["rule_id"], f["line"]) for f in report(result)["findings"]}
    assert found == {
        ("bom.ps1", "anthropic-api-key", 2),
        ("le.reg", "github-token", 2),
        ("be.txt", "npm-token", 2),
    }
    assert report(result)["skipped"] == []


def test_notebook_output_holding_a_private_key_is_found(tmp_path: Path, run_cli: RunCli) -> None:
    pem = _pem()
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "source": ["print(open('key.pem').read())"],
                "metadata": {},
                "execution_count": 1,
                "outputs": [
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": pem.splitlines(keepends=True),
                    }
                ],
            }
        ],
    }
    (tmp_path / "explore.ipynb").write_text(json.dumps(notebook, indent=1))
    found = _found(run_cli, str(tmp_path), "--no-git")
    assert found == {"explore.ipynb!cell-1/output-1": "private-key"}


def test_base64_blobs_holding_credentials_are_decoded(tmp_path: Path, run_cli: RunCli) -> None:
    factory = KeyFactory(93)

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    (tmp_path / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n"
        f"    client-certificate-data: {b64('not a key')}\n"
        f"    client-key-data: {b64(_pem())}\n"
    )
    github = factory.github_classic().value
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"ghcr.io": {"auth": b64(f"deploy-bot:{github}")}}}, indent=2)
    )
    api_key = factory.anthropic_api().value
    (tmp_path / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: claude\ntype: Opaque\ndata:\n"
        f"  username: {b64('svc')}\n  ANTHROPIC_API_KEY: {b64(api_key)}\n"
    )
    # A Secret inside a Secret: a kubeconfig stored base64 in a data: map.
    nested = f"users:\n- user:\n    client-key-data: {b64(_pem())}\n"
    (tmp_path / "nested.yaml").write_text(f"kind: Secret\ndata:\n  config: {b64(nested)}\n")
    result = run_cli("scan", str(tmp_path), "--no-git", "-f", "json")
    findings = report(result)["findings"]
    found = {(f["path"], f["rule_id"], f["kind"]) for f in findings}
    # One finding per secret: the decoded credential, with the way it was decoded in its kind;
    # neither a second decoder reading the same blob nor the rule that recognises the encoded
    # blob by its place reports it again.
    assert ("kubeconfig", "private-key", "private key (base64-encoded, kubeconfig client key)") in {
        (p, r, k.lower()) for p, r, k in found
    }
    assert sorted((f["path"], f["rule_id"]) for f in findings) == [
        ("config.json", "github-token"),
        ("kubeconfig", "private-key"),
        ("nested.yaml", "private-key"),
        ("secret.yaml", "anthropic-api-key"),
    ]
    assert {k for p, _, k in found if p == "secret.yaml"} == {
        "Anthropic API key (base64-encoded, Kubernetes Secret manifest)"
    }
    # A manifest that holds another secret besides the key stays a finding of its own.
    password = "Xq7" + "".join(random.Random(5).choices(string.ascii_letters, k=17)) + "9!"
    (tmp_path / "mixed.yaml").write_text(
        "kind: Secret\ndata:\n"
        f"  DB_PASSWORD: {b64(password)}\n  ANTHROPIC_API_KEY: {b64(api_key)}\n"
    )
    result = run_cli("scan", str(tmp_path / "mixed.yaml"), "--no-git", "-f", "json")
    assert sorted(f["rule_id"] for f in report(result)["findings"]) == [
        "anthropic-api-key",
        "kubernetes-secret",
    ]
    text = run_cli("scan", str(tmp_path), "--no-git")
    for secret in (api_key, github):
        assert secret not in text.output and b64(secret) not in text.output


def test_summary_counts_every_file_not_scanned_and_lists_them_on_request(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    (tmp_path / "lib.so").write_bytes(b"\x7fELF\2\1\1\0" + bytes(range(256)) * 4)
    (tmp_path / "huge.log").write_bytes(b"x" * (2 * 1024 * 1024))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x14" * 40)
    (tmp_path / "fine.txt").write_text("nothing here\n")
    (tmp_path / "claudesec.toml").write_text("[scan]\nmax_file_size_mb = 1\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan", "--no-git")
    assert result.exit_code == 0
    assert (
        "not scanned: 4 files (2 binary, 1 too large, 1 unreadable); list them with "
        "--show-skipped" in result.stderr
    )
    assert "skipped (binary): logo.png" not in result.stderr
    listed = run_cli("scan", "--no-git", "--show-skipped")
    for line in (
        "skipped (binary): logo.png",
        "skipped (binary): lib.so",
        "skipped (too large): huge.log",
        "skipped (unreadable): broken.zip",
    ):
        assert line in listed.stderr
    assert report(run_cli("scan", "--no-git", "-f", "json"))["summary"]["not_scanned"] == {
        "binary": 2,
        "too large": 1,
        "unreadable": 1,
    }


def test_a_notebook_secret_the_raw_scan_sees_is_reported_once(
    tmp_path: Path, run_cli: RunCli
) -> None:
    # One JSON string with escaped line breaks: the raw scan finds it, the cell view too.
    notebook = {"cells": [{"cell_type": "code", "source": _pem(), "outputs": []}]}
    (tmp_path / "one.ipynb").write_text(json.dumps(notebook))
    found = report(run_cli("scan", str(tmp_path), "--no-git", "-f", "json"))["findings"]
    assert [(f["path"], f["rule_id"]) for f in found] == [("one.ipynb", "private-key")]


def _utf16_codec_whole_head(head: bytes) -> str | None:
    """The UTF-16 sniff as specified: counted over the whole head, no early exit."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    head = head[:4096]
    if len(head) < 16:
        return None
    head = head[: len(head) // 2 * 2]
    even, odd = head[0::2], head[1::2]
    half = len(head) // 2
    if odd.count(0) > 0.9 * half and even.count(0) < 0.05 * half:
        return "utf-16-le"
    if even.count(0) > 0.9 * half and odd.count(0) < 0.05 * half:
        return "utf-16-be"
    return None


def test_the_utf16_sniffs_early_exit_never_changes_its_answer() -> None:
    from claudesec.scan.decode import archive_kind, utf16_codec

    rng = random.Random(16)
    heads: list[bytes] = []
    for _ in range(4000):
        size = rng.choice([15, 16, 17, 300, 511, 512, 513, 1000, 2048, 4095, 4096, 4097, 9000])
        nul_share = rng.random()
        heads.append(
            bytes(0 if rng.random() < nul_share else rng.randrange(1, 256) for _ in range(size))
        )
    # UTF-16 text whose first characters are not Latin (no NULs in the probe at all), then
    # Latin: the whole head must still decide.
    for codec in ("utf-16-le", "utf-16-be"):
        for lead in (0, 10, 30, 100, 200, 260, 600, 1000, 1900):
            text = "\u4e2d" * lead + "plain ascii text, " * 300
            heads.append(text.encode(codec))
    heads += [Path(sys.executable).read_bytes()[:4096], b"\x7fELF" + bytes(5000)]
    # Real binaries of the kinds a tree holds most: bytecode and shared objects.
    stdlib, venv = Path(json.__file__).parents[1], Path(sys.executable).parents[1]
    real = sorted(stdlib.glob("*/__pycache__/*.pyc"))[:1500] + sorted(venv.glob("lib/**/*.so"))
    heads += [path.read_bytes()[:8192] for path in real]
    assert len(real) > 100
    for head in heads:
        assert utf16_codec(head) == _utf16_codec_whole_head(head), head[:40]
        assert archive_kind(head) is None or head[:1] in b"P\x1f\xfdB" or head[257:262] == b"ustar"
