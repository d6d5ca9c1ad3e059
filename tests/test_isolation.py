"""The rig itself: tests cannot write to the real home or leave loopback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.fixtures.isolation import REAL_HOME, _Guard


def test_home_and_claudesec_home_are_temporary(home: Path, claudesec_home: Path) -> None:
    assert Path(os.environ["HOME"]) == home
    assert home != REAL_HOME
    assert claudesec_home.is_relative_to(home)


def test_writing_under_the_real_home_is_refused() -> None:
    with pytest.raises(PermissionError, match="real home"):
        (REAL_HOME / ".claudesec-test-canary").write_text("x")
    assert _Guard.violations
    _Guard.violations.clear()  # the guard worked; do not fail this test for it


def test_connecting_beyond_loopback_is_refused() -> None:
    with socket.socket() as sock, pytest.raises(PermissionError, match="network"):
        sock.connect(("192.0.2.1", 443))
    _Guard.violations.clear()


def test_resolving_a_public_name_is_refused() -> None:
    with pytest.raises(PermissionError, match="resolve"):
        socket.getaddrinfo("api.anthropic.com", 443)
    _Guard.violations.clear()


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass


def test_git_repo_fixture_commits_with_the_test_identity(git_repo) -> None:  # type: ignore[no-untyped-def]
    git_repo.commit_file("a.txt", "hello\n")
    assert git_repo.git("log", "-1", "--format=%an").strip() == "Claudesec Test"


def test_moto_server_speaks_secrets_manager(aws_client) -> None:  # type: ignore[no-untyped-def]
    sm = aws_client("secretsmanager")
    sm.create_secret(Name="t", SecretString="v")
    assert sm.get_secret_value(SecretId="t", VersionStage="AWSCURRENT")["SecretString"] == "v"


def test_moto_state_is_reset_between_tests(aws_client) -> None:  # type: ignore[no-untyped-def]
    assert aws_client("secretsmanager").list_secrets()["SecretList"] == []


def test_file_keyring_is_file_backed_under_the_test_home(file_keyring, home: Path) -> None:  # type: ignore[no-untyped-def]
    import keyring

    keyring.set_password("claudesec-test", "user", "value")
    assert keyring.get_password("claudesec-test", "user") == "value"
    assert Path(file_keyring.file_path).is_relative_to(home)
