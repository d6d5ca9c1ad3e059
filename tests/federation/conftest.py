"""Federation-as-code rig: a config file pointing at the emulator, and the org:admin OAuth
token handed over the way the SDK's credential chain reads it (``ANTHROPIC_AUTH_TOKEN``).

Fixtures:
    fed_env     the environment for org:admin work: ANTHROPIC_AUTH_TOKEN set to a fresh
                org:admin token, every other credential variable unset
    fed_config  a :class:`FedConfig` writing claudesec.toml (anthropic.base_url = the emulator)
                with the [federation] tables a test gives, and a workspace ``prod``
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from claudesec.emulator import Emulator
from claudesec.emulator.oidc_issuer import OidcIssuer

CREDENTIAL_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CONFIG_DIR",
    "ANTHROPIC_FEDERATION_RULE_ID",
    "ANTHROPIC_ORGANIZATION_ID",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_BASE_URL",
)


@pytest.fixture
def fed_env(
    emulator: Emulator, org_admin_token: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # An empty config dir: no profile from the machine can leak into a test.
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "anthropic-config"))
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", org_admin_token)
    return org_admin_token


@dataclass
class FedConfig:
    path: Path
    emulator: Emulator
    issuer: OidcIssuer
    prod_workspace_id: str

    def write(self, federation: str, *, extra: str = "") -> Path:
        ca = self.path.parent / "loopback-ca.pem"
        ca.write_text(self.issuer.ca_pem)
        self.path.write_text(
            f'[anthropic]\nbase_url = "{self.emulator.base_url}"\n{extra}\n'
            + federation.replace("@ISSUER@", self.issuer.issuer)
        )
        return self.path


# The loopback issuer stands in for GitHub Actions: same preset, the issuer's URL and CA.
GITHUB_LIKE = """
[[federation.issuers]]
name = "github-actions"
preset = "github-actions"
issuer_url = "@ISSUER@"
ca_cert_file = "loopback-ca.pem"

[[federation.service_accounts]]
name = "deploy-bot"
workspaces = [{ workspace = "prod", role = "workspace_user" }]

[[federation.rules]]
name = "api-deploy-main"
issuer = "github-actions"
service_account = "deploy-bot"
workspace = "prod"
repository = "acme/api"
ref = "refs/heads/main"
environment = "production"
audience = "https://api.anthropic.com"
token_lifetime_seconds = 900
"""


@pytest.fixture
def fed_config(
    tmp_path: Path, emulator: Emulator, ci_issuer: OidcIssuer, fed_env: str
) -> FedConfig:
    ci_issuer.clock = lambda: emulator.state.now().timestamp()
    workspace = emulator.state.federation.create_workspace("prod")
    return FedConfig(tmp_path / "claudesec.toml", emulator, ci_issuer, workspace.id)
