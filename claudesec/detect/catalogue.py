"""The one catalogue of everything claudesec recognises, shared by ``claudesec scan`` and DLP.

Each rule is data: an id, the kind of credential or personal data it finds, the literal
keyword(s) (for PII: the shapes) a fast multi-pattern prefilter looks for, the full pattern run
only at those hits, an optional validator (checksum, charset, entropy, placeholder test), and
for secrets a severity and a fix hint.

Secret patterns are ``bytes`` regexes with a named group ``secret``. Most are *anchored*: the
match starts exactly where the keyword starts, so the engine runs one ``Pattern.match`` per
keyword hit instead of searching a window. The few rules whose keyword sits inside the match
(OpenAI's ``T3BlbkFJ`` marker) declare how far before the keyword a match may start.

The matchers live beside this table: :mod:`claudesec.detect.engine` for secrets (tuned for many
files) and :mod:`claudesec.detect.pii` for personal data in prompt text.
"""

from __future__ import annotations

from claudesec.detect.rules import Detector, PiiRule, Severity
from claudesec.detect.validators import (
    anthropic_body,
    assignment,
    aws_key_id,
    aws_secret,
    basic_auth,
    bearer_token,
    bedrock_key,
    card_valid,
    connection_string_password,
    crc_token,
    encrypted_private_key,
    google_api_key,
    iban_bytes_valid,
    in_hex_dump,
    in_number_run,
    in_url_path,
    ipv4_valid,
    ipv6_valid,
    jwt,
    kubeconfig_key,
    kubernetes_secret,
    labelled_phone_valid,
    mixed_case_random,
    npmrc_auth,
    password_value,
    phone_valid,
    prefixed_body,
    private_key,
    public_example_filtered,
    random_body,
    random_tail,
    ssn_valid,
    url_password,
)

# --------------------------------------------------------------------------- secrets


_B64URL = "A-Za-z0-9_-"
_END = "(?![A-Za-z0-9_-])"
_START = "(?<![A-Za-z0-9_-])"
# A private key as the tools write it: PEM (PKCS#1, PKCS#8, SEC1, OpenSSH, PGP; also with its
# line breaks escaped once, twice or three times inside JSON/YAML strings) or PuTTY's .ppk.
_KEY_BLOCK = r"""(?P<secret>-----BEGIN[ ](?:[A-Z0-9]+[ ]){0,3}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----
    (?:[A-Za-z0-9+/=\s]|\\{1,3}[nr]|[A-Za-z-]{2,30}:[^\n\\]{0,200}){64,16384}?
    -----END[ ](?:[A-Z0-9]+[ ]){0,3}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----
  |PuTTY-User-Key-File-\d:[^\n]{1,200}\n(?:[^\n]{0,200}\n){1,120}?
    Private-MAC:[ ]?[0-9a-f]{40,64})"""
_ROTATE = "Revoke it at the issuer, rotate it, and load it from a secret store or environment"

DETECTORS: tuple[Detector, ...] = (
    Detector(
        id="anthropic-admin-key",
        kind="Anthropic Admin API key",
        keywords=("sk-ant-admin",),
        pattern=rf"{_START}(?P<secret>sk-ant-admin\d{{2,4}}-[{_B64URL}]{{93}}AA){_END}",
        severity=Severity.CRITICAL,
        fix="Archive it in the Anthropic Console (Settings > Admin keys) now, then create a new "
        "one and keep it in a secret store; `claudesec keys` can manage it.",
        validate=anthropic_body,
        after=124,
    ),
    Detector(
        id="anthropic-api-key",
        kind="Anthropic API key",
        keywords=("sk-ant-api",),
        pattern=rf"{_START}(?P<secret>sk-ant-api\d{{2,4}}-[{_B64URL}]{{93}}AA){_END}",
        severity=Severity.HIGH,
        fix="Deactivate it in the Anthropic Console (or `claudesec keys revoke`), rotate with "
        "`claudesec keys rotate`, and read the key from a secret store or ANTHROPIC_API_KEY.",
        validate=anthropic_body,
        after=124,
    ),
    Detector(
        id="anthropic-oauth-token",
        kind="Anthropic OAuth token",
        keywords=("sk-ant-oat",),
        pattern=rf"{_START}(?P<secret>sk-ant-oat\d{{2,4}}-[{_B64URL}]{{40,200}}){_END}",
        severity=Severity.HIGH,
        fix="Log out of the Claude client that issued it (this revokes the token) and keep "
        "tokens out of files; use the client's own credential store.",
        validate=anthropic_body,
        after=234,
    ),
    Detector(
        id="anthropic-token",
        kind="Anthropic {kind} token",
        keywords=("sk-ant-",),
        pattern=rf"{_START}(?P<secret>sk-ant-(?P<kind>[a-z]{{2,12}}\d{{2,4}})-[{_B64URL}]{{32,200}}){_END}",
        severity=Severity.HIGH,
        fix=f"{_ROTATE}; check the Anthropic Console for the credential of this kind.",
        validate=anthropic_body,
        after=244,
    ),
    Detector(
        id="aws-credentials",
        kind="AWS access key pair",
        keywords=("AKIA", "ASIA"),
        pattern=r"""(?<![A-Z0-9])(?P<keyid>(?:AKIA|ASIA)[A-Z2-7]{16})(?![A-Z0-9])
            [\s\S]{1,200}?
            (?<![A-Za-z0-9/+=])(?!eyJ)(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])""",
        severity=Severity.CRITICAL,
        fix="Deactivate and delete the access key in IAM, review CloudTrail for its use, and use "
        "IAM roles or the AWS credential chain instead of static keys.",
        validate=aws_secret,
        after=300,
    ),
    Detector(
        id="aws-session-token",
        kind="AWS session token",
        keywords=("IQoJb3JpZ2luX2Vj", "FwoGZXIvYXdzE"),
        pattern=r"""(?<![A-Za-z0-9/+=])(?P<secret>(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE)
            [A-Za-z0-9/+=]{100,2000})(?![A-Za-z0-9/+=])""",
        severity=Severity.HIGH,
        fix="It expires on its own, but until then it acts as its role (Amazon Bedrock "
        "included): revoke the role's active sessions in IAM and load credentials at run time.",
        validate=random_body(16, 4.5),
        after=2100,
    ),
    Detector(
        id="aws-bedrock-api-key",
        kind="Amazon Bedrock API key",
        keywords=("ABSKQmVkcm9ja0FQSUtleS", "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t"),
        pattern=r"""(?<![A-Za-z0-9/+_-])(?P<secret>(?:ABSKQmVkcm9ja0FQSUtleS[A-Za-z0-9+/]{40,400}
            |bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/]{60,4000})={0,2})
            (?![A-Za-z0-9/+=])""",
        severity=Severity.CRITICAL,
        fix="Delete the Bedrock API key in the IAM console (long-term keys are service-specific "
        "credentials of an IAM user) and call Claude on Bedrock through an IAM role instead.",
        validate=bedrock_key,
        after=4100,
    ),
    Detector(
        id="aws-secret-access-key",
        kind="AWS secret access key",
        keywords=("aws_secret", "AWS_SECRET", "SecretAccessKey", "secret_access_key"),
        pattern=r"""(?:aws_secret|AWS_SECRET|SecretAccessKey|secret_access_key)[A-Za-z_]{0,20}
            \\?["']?\s{0,4}(?:=|:|=>|\s)\s{0,4}\\?["']?
            (?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])""",
        severity=Severity.CRITICAL,
        fix="Deactivate and delete the access key in IAM and use IAM roles or the AWS "
        "credential chain instead of static keys.",
        validate=aws_secret,
        after=120,
    ),
    Detector(
        id="aws-access-key-id",
        kind="AWS access key ID",
        keywords=("AKIA", "ASIA", "ABIA", "ACCA"),
        pattern=r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Z0-9])",
        severity=Severity.MEDIUM,
        fix="An access key ID alone is not a credential, but its secret is usually nearby: "
        "check, deactivate the key in IAM if the secret leaked, and prefer IAM roles.",
        validate=aws_key_id,
        after=24,
    ),
    Detector(
        id="gcp-service-account-key",
        kind="Google Cloud service-account key",
        keywords=("private_key",),
        gate=r'private_key\\{0,3}"[ \t]{0,4}:[ \t]{0,4}\\{0,3}"-----BEGIN',
        pattern=r"""private_key\\{0,3}"[ \t]{0,4}:[ \t]{0,4}\\{0,3}"
            (?P<secret>-----BEGIN[ ](?:RSA[ ])?PRIVATE[ ]KEY-----
            (?:[A-Za-z0-9+/=]|\\{1,3}[nr]){64,8000}?
            -----END[ ](?:RSA[ ])?PRIVATE[ ]KEY-----)""",
        severity=Severity.CRITICAL,
        fix="Delete the key in Google Cloud (IAM > Service accounts > Keys): it can call Vertex "
        "AI and anything else its account may. Use workload identity federation instead of keys.",
        validate=private_key,
        after=8200,
    ),
    Detector(
        id="google-oauth-token",
        kind="Google OAuth token",
        keywords=("ya29.", "1//0", "GOCSPX-"),
        pattern=r"""(?<![A-Za-z0-9_./-])(?P<secret>(?:ya29\.|1//0|GOCSPX-)[A-Za-z0-9_-]{28,2000})
            (?![A-Za-z0-9_-])""",
        severity=Severity.HIGH,
        fix="Revoke it (Google's OAuth revoke endpoint, or reset the OAuth client's secret in "
        "Google Cloud Console) and keep tokens in the client's credential store.",
        validate=prefixed_body((b"ya29.", b"1//0", b"GOCSPX-"), 3.2),
        after=2010,
    ),
    Detector(
        id="azure-openai-key",
        kind="Azure AI Foundry / Azure OpenAI key",
        keywords=("JQQJ99",),
        pattern=r"(?<![A-Za-z0-9])(?P<secret>[A-Za-z0-9]{52}JQQJ99[A-Za-z0-9]{26})(?![A-Za-z0-9])",
        severity=Severity.HIGH,
        fix="Regenerate the key in the Azure portal (the resource's Keys and Endpoint page): it "
        "can call Claude on Azure AI Foundry. Prefer Microsoft Entra ID auth over keys.",
        validate=random_body(0, 4.0),
        before=52,
        after=40,
    ),
    Detector(
        id="azure-ai-key-variable",
        kind="Azure AI Foundry / Azure OpenAI key",
        keywords=(
            "AZURE_OPENAI_API_KEY",
            "AZURE_OPENAI_KEY",
            "AZURE_AI_API_KEY",
            "AZURE_INFERENCE_CREDENTIAL",
            "ANTHROPIC_FOUNDRY_API_KEY",
            "AZURE_API_KEY",
        ),
        pattern=r"""(?:AZURE_OPENAI_API_KEY|AZURE_OPENAI_KEY|AZURE_AI_API_KEY
            |AZURE_INFERENCE_CREDENTIAL|ANTHROPIC_FOUNDRY_API_KEY|AZURE_API_KEY)
            ["']?[ \t]{0,4}(?::=|=|:)[ \t]{0,4}["']?
            (?P<secret>[a-f0-9]{32}|[A-Za-z0-9]{84})(?![A-Za-z0-9])""",
        severity=Severity.HIGH,
        fix="Regenerate the key in the Azure portal (the resource's Keys and Endpoint page) and "
        "load it from Key Vault, or use Microsoft Entra ID auth.",
        validate=random_body(0, 2.5),
        after=130,
    ),
    Detector(
        id="azure-entra-client-secret",
        kind="Microsoft Entra ID client secret",
        keywords=("Q~",),
        pattern=r"""(?<![A-Za-z0-9_~.-])(?P<secret>[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34})
            (?![A-Za-z0-9_~.-])""",
        severity=Severity.HIGH,
        fix="Delete the secret in Entra ID (App registrations > Certificates & secrets) and use a "
        "managed identity or a certificate kept in Key Vault.",
        validate=random_body(0, 3.5),
        before=4,
        after=40,
    ),
    Detector(
        id="azure-storage-key",
        kind="Azure storage account key",
        keywords=("AccountKey=", "SharedAccessKey="),
        pattern=r"""(?:AccountKey=|SharedAccessKey=)
            (?P<secret>[A-Za-z0-9+/]{86}==|[A-Za-z0-9+/]{43}=)(?![A-Za-z0-9+/=])""",
        severity=Severity.HIGH,
        fix="Rotate the account key in the Azure portal (Access keys) and connect with "
        "Microsoft Entra ID or a short-lived SAS from Key Vault.",
        validate=public_example_filtered(random_body(0, 4.0)),
        after=110,
    ),
    Detector(
        id="claudesec-proxy-token",
        kind="claudesec proxy token",
        keywords=("csp_",),
        pattern=rf"{_START}(?P<secret>csp_[{_B64URL}]{{43}}){_END}",
        severity=Severity.HIGH,
        fix="Revoke it with `claudesec proxy token revoke ID` (`claudesec proxy token list` "
        "shows its hint) and issue a new one kept in the client's secret store.",
        validate=random_body(4, 3.8),
        after=60,
    ),
    Detector(
        id="github-token",
        kind="GitHub token",
        keywords=("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36})(?![A-Za-z0-9_])",
        severity=Severity.HIGH,
        fix="Revoke it in GitHub (Settings > Developer settings), and use a fine-grained token "
        "or the GITHUB_TOKEN of your CI kept in its secret store.",
        validate=crc_token(4),
        after=48,
    ),
    Detector(
        id="github-fine-grained-token",
        kind="GitHub fine-grained token",
        keywords=("github_pat_",),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])",
        severity=Severity.HIGH,
        fix="Revoke it in GitHub (Settings > Developer settings > Fine-grained tokens) and keep "
        "tokens in a secret store.",
        validate=mixed_case_random(11, 3.5),
        after=100,
    ),
    Detector(
        id="gitlab-token",
        kind="GitLab token",
        keywords=("glpat-", "glptt-", "gldt-", "glrt-", "glcbt-", "glsoat-", "glffct-"),
        pattern=r"""(?<![A-Za-z0-9_-])(?P<secret>gl(?:pat|ptt|dt|rt|cbt|soat|ffct)-
            [A-Za-z0-9_-]{20,64}(?:\.[0-9a-z]{2}\.[0-9a-z]{9})?)(?![A-Za-z0-9_-])""",
        severity=Severity.HIGH,
        fix="Revoke it in GitLab (User settings > Access tokens) and keep tokens in CI "
        "variables or a secret store.",
        validate=random_body(6, 2.8),
        after=100,
    ),
    Detector(
        id="slack-token",
        kind="Slack token",
        keywords=(
            "xoxb-",
            "xoxp-",
            "xoxa-",
            "xoxo-",
            "xoxs-",
            "xoxr-",
            "xoxe-",
            "xoxe.",
            "xoxc-",
            "xoxd-",
            "xapp-",
        ),
        # Bot, user, app-level, legacy, client, refresh and configuration (xoxe.xoxp-1-...,
        # xoxe-1-...) tokens: the kind letters, an optional rotated-token prefix, a number.
        pattern=r"""(?<![A-Za-z0-9_-])(?P<secret>(?:xox[abcdeoprs](?:\.xox[abcdeoprs])?-\d+-
            [0-9A-Za-z%-]{10,300}|xapp-\d-[A-Z0-9]{9,}-\d{9,}-[a-f0-9]{32,}))(?![A-Za-z0-9_])""",
        severity=Severity.HIGH,
        fix="Revoke it at api.slack.com/apps (or `auth.revoke`) and keep it in a secret store.",
        validate=random_body(5, 3.0),
        after=200,
    ),
    Detector(
        id="slack-webhook",
        kind="Slack webhook URL",
        keywords=("hooks.slack.com/",),
        pattern=r"""hooks\.slack\.com/(?:services|workflows|triggers)/
            (?P<secret>T[A-Z0-9]{6,}/[A-Z0-9]{6,}/(?:\d{6,}/)?[A-Za-z0-9]{20,})(?![A-Za-z0-9])""",
        severity=Severity.MEDIUM,
        fix="Regenerate the webhook in the Slack app's Incoming Webhooks page and keep the URL "
        "in a secret store.",
        validate=random_body(0, 3.0),
        after=160,
    ),
    Detector(
        id="stripe-key",
        kind="Stripe secret key",
        keywords=(
            "sk_live_",
            "rk_live_",
            "sk_test_",
            "rk_test_",
            "sk_prod_",
            "rk_prod_",
            "whsec_",
        ),
        # Secret and restricted keys of every mode (legacy 24 characters, current 99+) and
        # webhook signing secrets. Publishable keys (pk_) are public by design.
        pattern=r"""(?<![A-Za-z0-9_])(?P<secret>(?:[sr]k_(?:live|test|prod)_[A-Za-z0-9]{24,247}
            |whsec_[A-Za-z0-9+/=]{24,100}))(?![A-Za-z0-9])""",
        severity=Severity.HIGH,
        fix="Roll the key in the Stripe Dashboard (Developers > API keys) and use a restricted "
        "key from a secret store.",
        validate=random_tail(3.0),
        after=260,
    ),
    Detector(
        id="google-api-key",
        kind="Google API key",
        keywords=("AIza",),
        pattern=r"(?<![A-Za-z0-9_-])(?P<secret>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])",
        severity=Severity.HIGH,
        fix="Delete or regenerate it in Google Cloud Console (APIs & Services > Credentials) and "
        "add API and referrer restrictions.",
        validate=google_api_key,
        after=48,
    ),
    Detector(
        id="openai-api-key",
        kind="OpenAI API key",
        keywords=("T3BlbkFJ",),
        pattern=r"""(?<![A-Za-z0-9_-])(?P<secret>sk-(?:(?:proj|svcacct|admin)-)?
            [A-Za-z0-9_-]{16,160}T3BlbkFJ[A-Za-z0-9_-]{16,160})(?![A-Za-z0-9_-])""",
        severity=Severity.HIGH,
        fix="Revoke it at platform.openai.com/api-keys and keep keys in a secret store.",
        validate=random_body(3, 3.5),
        before=180,
        after=180,
    ),
    Detector(
        id="huggingface-token",
        kind="Hugging Face token",
        keywords=("hf_",),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>hf_[A-Za-z]{34})(?![A-Za-z0-9_])",
        severity=Severity.MEDIUM,
        fix="Invalidate it at huggingface.co/settings/tokens and use HF_TOKEN from a secret store.",
        validate=mixed_case_random(3, 3.5),
        after=48,
    ),
    Detector(
        id="pypi-token",
        kind="PyPI API token",
        keywords=("pypi-AgEIcHlwaS5vcmc",),
        pattern=r"(?<![A-Za-z0-9_-])(?P<secret>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,250})(?![A-Za-z0-9_-])",
        severity=Severity.HIGH,
        fix="Remove it at pypi.org/manage/account/token and publish with Trusted Publishing.",
        validate=random_body(24, 3.5),
        after=300,
    ),
    Detector(
        id="npm-token",
        kind="npm access token",
        keywords=("npm_",),
        pattern=r"(?<![A-Za-z0-9_])(?P<secret>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9_])",
        severity=Severity.HIGH,
        fix="Revoke it with `npm token revoke` (or on npmjs.com) and use granular tokens kept "
        "in CI secrets.",
        validate=crc_token(4),
        after=48,
    ),
    Detector(
        id="private-key",
        kind="private key",
        keywords=("-----BEGIN", "PuTTY-User-Key-File-"),
        pattern=_KEY_BLOCK,
        severity=Severity.CRITICAL,
        fix="Treat the key pair as compromised: revoke any certificate, replace the key, "
        "remove it from history, and keep keys in a secret store or an agent.",
        validate=private_key,
        after=20000,
    ),
    Detector(
        id="private-key-encrypted",
        kind="passphrase-protected private key",
        keywords=("-----BEGIN", "PuTTY-User-Key-File-"),
        pattern=_KEY_BLOCK,
        severity=Severity.LOW,
        fix="Its passphrase is all that protects it now: replace the key pair, and keep private "
        "keys out of repositories (an agent, a secret store).",
        validate=encrypted_private_key,
        after=20000,
    ),
    Detector(
        id="kubeconfig-client-key",
        kind="kubeconfig client key",
        keywords=("client-key-data",),
        pattern=r"""client-key-data["']?[ \t]{0,4}:[ \t]{0,4}["']?
            (?P<secret>[A-Za-z0-9+/]{100,20000}={0,2})(?![A-Za-z0-9+/=])""",
        severity=Severity.CRITICAL,
        fix="Revoke the client certificate (or delete the user) in the cluster, issue a new "
        "kubeconfig, and keep it out of repositories; prefer short-lived exec credentials.",
        validate=kubeconfig_key,
        after=20100,
    ),
    Detector(
        id="kubernetes-secret",
        kind="Kubernetes Secret manifest",
        keywords=("kind: Secret", 'kind: "Secret"'),
        pattern=r"""kind:[ ]"?Secret"?[ \t]*\r?\n
            (?:(?![ \t]*(?:kind:|---)).*\r?\n){0,40}?
            (?P<field>data|stringData):[ \t]*\r?\n
            (?P<secret>(?:[ \t]+[A-Za-z0-9_.-]+:[ \t]*[^\n]*\r?\n?){1,50})""",
        severity=Severity.HIGH,
        fix="Rotate the values, delete the manifest from history, and manage secrets with "
        "External Secrets, Sealed Secrets or SOPS instead of plain manifests.",
        validate=kubernetes_secret,
        after=12000,
    ),
    Detector(
        id="docker-registry-auth",
        kind="docker registry credentials",
        keywords=('"auth"',),
        pattern=r"""(?P<k>"auth")[ \t]{0,4}:[ \t]{0,4}"(?P<secret>[A-Za-z0-9+/]{8,2000}={0,2})\"""",
        severity=Severity.HIGH,
        fix="Revoke the registry password or token, `docker logout`, and use a credential "
        "helper (credsStore) instead of auths in config.json.",
        validate=basic_auth,
        after=2040,
    ),
    Detector(
        id="netrc-password",
        kind="password in a .netrc",
        keywords=("machine",),
        gate=r"machine[ \t\r\n]+[^ \t\r\n]+[ \t\r\n]+login[ \t\r\n]",
        pattern=r"""machine\s+\S+\s+login\s+\S+\s+password\s+(?P<secret>[^\s'"]{4,200})""",
        severity=Severity.HIGH,
        fix="Change the password (or revoke the token) and keep .netrc out of repositories.",
        validate=password_value,
        after=600,
    ),
    Detector(
        id="npmrc-auth",
        kind="npm registry credentials",
        keywords=(":_authToken=", ":_auth=", ":_password="),
        pattern=r""":(?P<field>_authToken|_auth|_password)=["']?(?P<secret>[A-Za-z0-9+/=._~-]{12,2000})""",
        severity=Severity.HIGH,
        fix="Revoke the token at the registry (`npm token revoke`) and pass it through an "
        "environment variable (${NPM_TOKEN}) in .npmrc.",
        validate=npmrc_auth,
        after=2040,
    ),
    Detector(
        id="http-basic-auth",
        kind="HTTP Basic credentials",
        keywords=("Basic ",),
        gate=r"Basic [A-Za-z0-9+/]{8}",
        pattern=r"Basic[ ](?P<secret>[A-Za-z0-9+/]{8,600}={0,2})(?![A-Za-z0-9+/=])",
        severity=Severity.HIGH,
        fix="Change the password, and send credentials from a secret store or environment "
        "variable instead of writing the header into code or logs.",
        validate=basic_auth,
        after=620,
    ),
    Detector(
        id="http-bearer-token",
        kind="HTTP Bearer token",
        keywords=("Bearer ",),
        gate=r"Bearer [A-Za-z0-9._~+/-]{20}",
        pattern=r"Bearer[ ](?P<secret>[A-Za-z0-9._~+/-]{20,2000}=*)(?![A-Za-z0-9._~+/=-])",
        severity=Severity.MEDIUM,
        fix="Revoke the token at its issuer, and send tokens from a secret store or environment "
        "variable instead of writing the header into code or logs.",
        validate=bearer_token,
        after=2020,
    ),
    Detector(
        id="curl-user-password",
        kind="password in a curl command",
        keywords=("curl ",),
        pattern=r"""curl[ ](?:[^\n]{0,119}?[ ])?(?:-u|--user)[ =]["']?[^\s:"']{1,100}:
            (?P<secret>[^\s"']{4,128})""",
        severity=Severity.HIGH,
        fix="Change the password, and let curl read it from .netrc outside the repository or a "
        'variable (`-u "$USER:$PASS"`).',
        validate=password_value,
        after=560,
    ),
    Detector(
        id="connection-string-password",
        kind="password in a connection string",
        keywords=("password=", "pwd="),
        caseless=True,
        gate=r"(?:password|pwd)=[^;&\"'\s]{3}",
        pattern=r"""(?i:password|pwd)=(?P<secret>[^;&"'\s]{3,128})""",
        severity=Severity.HIGH,
        fix="Change the password, and build the connection string from a secret store or an "
        "environment variable (or use integrated/IAM authentication).",
        validate=connection_string_password,
        after=140,
    ),
    Detector(
        id="jwt",
        kind="JSON Web Token",
        keywords=("eyJ",),
        pattern=r"""(?<![A-Za-z0-9_-])(?P<secret>eyJ[A-Za-z0-9_-]{10,800}\.eyJ[A-Za-z0-9_-]{10,4000}
            \.[A-Za-z0-9_-]{16,1000})(?![A-Za-z0-9_-])""",
        severity=Severity.MEDIUM,
        fix="If it has not expired, revoke the session or rotate the signing key; do not commit "
        "tokens, load them at run time.",
        validate=jwt,
        after=5900,
    ),
    Detector(
        id="connection-url-password",
        kind="password in a connection URL",
        keywords=("://",),
        gate=r"""://[^\s:/@"'<>`\\]{0,64}:[^\s:/@"'<>`\\]{3}""",
        pattern=r"""://(?P<user>[^\s:/@"'<>`\\]{0,64}):(?P<secret>[^\s:/@"'<>`\\]{3,128})@
            (?P<host>[A-Za-z0-9._-]{2,})""",
        severity=Severity.HIGH,
        fix="Change the password, and pass credentials through environment variables or a "
        "secret store instead of the URL.",
        validate=url_password,
        after=300,
    ),
    Detector(
        id="generic-secret-assignment",
        kind="secret assigned in code or config",
        keywords=(
            "api_key",
            "api-key",
            "apikey",
            "secret",
            "password",
            "passwd",
            "pwd",
            "token",
            "access_key",
            "auth_key",
            "private_key",
            "credential",
        ),
        caseless=True,
        gate=r"(?:api[_-]?key|secret|passw(?:or)?d|pwd|token|access_key|auth_key|private_key"
        r"|credential)[A-Za-z0-9_.-]{0,24}\\?[\"']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}"
        r"(?:\\?[\"'`])?[^\s\"'`;,&<>(){}\[\]$\\]{8}",
        pattern=r"""(?P<name>(?i:api[_-]?key|secret|passw(?:or)?d|pwd|token|access_key|auth_key
            |private_key|credentials?)[A-Za-z0-9_.-]{0,24})
            \\?["']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}(?P<q>\\?["'`])?
            (?P<secret>[^\s"'`;,&<>(){}\[\]$\\]{8,200})""",
        severity=Severity.MEDIUM,
        fix="Move the value to a secret store or an environment variable, rotate it if it is "
        "real, or mark a test value with `claudesec:allow`.",
        validate=assignment,
        after=300,
    ),
)

DETECTORS_BY_ID: dict[str, Detector] = {d.id: d for d in DETECTORS}


def detector_ids() -> tuple[str, ...]:
    """Every rule id, in catalogue (priority) order."""
    return tuple(d.id for d in DETECTORS)


# --------------------------------------------------------------------------- personal data

# Number-shaped rules take a value only when it stands apart: no letter, digit or underscore
# before it, none after it (a phone number may run on into an extension: "x204"), and no dashed
# groups going on either side. Digits glued to letters are part of an identifier (a hex device
# id, a hash, a UUID, "v10.0.0.1"), whatever checksum they pass: 1 in 303 of Claude Code's
# device-id metadata held a Luhn-valid card-shaped run before this rule, and its calls were
# refused wherever DLP blocked (tests/guard/test_dlp_identifiers.py).
PII_RULES: tuple[PiiRule, ...] = (
    PiiRule(
        id="email",
        label="email address",
        # Found by its '@' (see claudesec.detect.pii): the local part is searched for before it,
        # the domain matched after it, so this pattern documents the shape rather than runs.
        pattern=r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}",
        shapes=(),
        max_len=318,
        unless=(in_hex_dump,),
        anchor="@",
    ),
    PiiRule(
        id="us-ssn",
        label="US social security number",
        pattern=r"\d(?<![\w-]\d)\d{2}-\d{2}-\d{4}(?![\w-])",
        shapes=(r"\d{3}-\d{2}-\d{4}",),
        max_len=11,
        validate=ssn_valid,
    ),
    PiiRule(
        id="payment-card",
        label="payment card number",
        # Nor an operand ("120352542776360960*x", "2**61") or a decimal's integer part: a card
        # number is never multiplied, raised or followed by a fraction.
        pattern=r"\d(?<![\w.*^-]\d)(?:[ -]?\d){12,18}(?![\w*^]|[-.]\d)",
        shapes=(r"\d(?:[ -]?\d){12}",),
        max_len=40,
        validate=card_valid,
        unless=(in_hex_dump, in_number_run, in_url_path),
    ),
    PiiRule(
        id="iban",
        label="IBAN",
        pattern=r"[A-Z](?<![\w-][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
        r"(?![\w-])",
        shapes=(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2}",),
        max_len=44,
        validate=iban_bytes_valid,
        unless=(in_hex_dump,),
    ),
    PiiRule(
        id="phone",
        label="phone number",
        # Every pattern here starts with a character class, not a lookbehind, so that ``re``
        # skips to candidate characters in C; the boundary check follows the first character.
        pattern=r"""(?x)[+(02-9](?<![\w+][+(02-9])(?:
            (?<=\+)[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}
          | (?<=\()[2-9]\d{2}\)[ .-]?\d{3}[ .-]\d{4}
          | (?<=\()0[1-9]\d{0,3}\)[ ]?\d{2,4}[ -]?\d{3,4}
          | (?<=[2-9])\d{2}([ .-])\d{3}\1\d{4}
          | (?<=0)(?<![\d.][ ]0)(?:
                [1-9]\d{1,3}([ -])\d{5,8}
              | [1-9]\d{0,2}([ -])\d{3,4}\3\d{4}
              | 4\d{2}([ -])\d{3}\4\d{3}
              | [1-9]([ .])\d{2}(?:\5\d{2}){3}(?!\5\d)
                (?: (?<![ ][0-9A-Fa-f]{2}[ ]0[1-9](?:[ ]\d\d){4})
                  | (?!(?:[ ][0-9A-Fa-f]{2}){2}(?:\s|$)) )
            )(?![ .]\d)
        )(?![\d-])""",
        # National forms start with the trunk prefix 0: "(0161) 496 0066", "0191 4960657",
        # "020 7946 0958", "01 23 45 67 89" (France: five pairs, one separator throughout);
        # one written among other numbers ("1304 01303 021302") is a list, and five pairs with
        # a hex byte before and two after are a hex dump ("4c 01 23 45 67 89 ab cd"), not a
        # phone number.
        # A number with no separator at all, national or not, is any other number too.
        shapes=(
            r"\+\d(?:[ .()-]{0,2}\d){7}",
            r"\d{3}\)?[ .-]?\d{3}[ .-]\d{4}",
            r"\(0[1-9]\d{0,3}\) ?\d{2}",
            r"0[1-9]\d{1,3}[ -]\d{5}",
            r"0[1-9]\d{0,2}[ -]\d{3,4}[ -]\d{4}",
            r"04\d\d[ -]\d{3}[ -]\d{3}",
            r"0[1-9][ .]\d\d[ .]\d\d[ .]\d\d[ .]\d\d",
        ),
        max_len=32,
        validate=phone_valid,
        unless=(in_hex_dump,),
    ),
    PiiRule(
        id="phone-labelled",
        label="phone number (labelled)",
        # Digits with no separator ("0232781286", Italy's "3715260189") or local forms
        # ("9487.5749") are any other number too, unless a label right before them says what
        # they are: "Tel.: 0232781286", "phone": "3715260189", <fax>0585004747</fax>,
        # Telefon 03512345678. Then any separators go, and an extension may follow ("x256"),
        # as for the forms above. Only the number (group v) is the value; "call" is not a
        # label ("call 1234567890 times"), nor is one inside a word ("hotel", "telemetry").
        pattern=r"""(?x)(?<![A-Za-z])(?i:
            phone|telephone|tel|t\xc3\xa9l|t\xc3\xa9l\xc3\xa9phone|telefon|telefono
          | tel\xc3\xa9fono|telefoon|mobile|mobil|mobiel|cell|cellphone|cellulare|celular
          | movil|m\xc3\xb3vil|handy|fax|whatsapp|sms
        )(?i:[ _-]?(?:no|nr|num|number|nummer|numero|n\xc3\xbamero|num\xc3\xa9ro))?
        [.\"'\s:=>#]{0,6}(?P<v>\+?\(?\d(?:[ ().\/-]{0,2}\d){7,14})(?![\d-]|[ .\/-]\d)""",
        shapes=(
            r"(?i)(?:phone|tel|t\xc3\xa9l|mobi|cell|celular|movil|m\xc3\xb3vil|handy"
            r"|fax|whatsapp|sms)[^\n]{0,16}\d(?:[ ().\/-]{0,2}\d){7}",
        ),
        max_len=48,
        unless=(in_hex_dump,),
        validate=labelled_phone_valid,
    ),
    PiiRule(
        id="ip-address",
        label="IPv4 address",
        pattern=r"\d(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)",
        shapes=(r"\d\.\d{1,3}\.\d{1,3}\.\d",),
        max_len=15,
        unless=(in_hex_dump,),
        validate=ipv4_valid,
    ),
    PiiRule(
        id="ipv6-address",
        label="IPv6 address",
        pattern=r"[0-9A-Fa-f:](?<![0-9A-Fa-f:][0-9A-Fa-f:])[0-9A-Fa-f:]{2,38}(?![0-9A-Fa-f:])",
        shapes=(r"[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:",),
        max_len=39,
        validate=ipv6_valid,
    ),
)
PII_KINDS: tuple[str, ...] = tuple(rule.id for rule in PII_RULES)
# ipv6 is reported and switched off under the ip-address kind (users think of "IP addresses"),
# labelled phone numbers under phone.
PII_KIND_ALIASES: dict[str, str] = {"ipv6-address": "ip-address", "phone-labelled": "phone"}
