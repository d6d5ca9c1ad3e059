"""A real OIDC issuer on loopback: discovery and JWKS over HTTPS, CI-shaped tokens, key rotation.

Workload identity federation trusts an external issuer's tokens; tests and offline drills need
one that behaves like the real thing without leaving the machine. :class:`OidcIssuer` makes a
private CA and a server certificate for ``127.0.0.1`` when it starts (``cryptography``, nothing
key-shaped stored anywhere), serves ``/.well-known/openid-configuration`` and its JWKS over
TLS, and signs tokens whose claim sets follow the real providers':

* :meth:`OidcIssuer.github_actions` - GitHub Actions' OIDC token (``sub`` is
  ``repo:OWNER/REPO:environment:NAME``, ``...:pull_request`` or ``...:ref:REF``; claims
  ``repository``, ``repository_owner``, ``ref``, ``environment``, ``job_workflow_ref`` ...);
* :meth:`OidcIssuer.gitlab_ci` - a GitLab CI ``id_token`` (``sub`` is
  ``project_path:GROUP/PROJECT:ref_type:TYPE:ref:REF``; ``project_path``, ``namespace_path``,
  ``ref_type``, ``ref_protected``, ``pipeline_source`` ...);
* :meth:`OidcIssuer.kubernetes` - a projected service-account token (``sub`` is
  ``system:serviceaccount:NAMESPACE:NAME``, the nested ``kubernetes.io`` claim).

:meth:`OidcIssuer.rotate` adds a new signing key and makes it current; the old one stays
published until :meth:`OidcIssuer.retire` drops it, as a real IdP's rollover does.

    with OidcIssuer() as idp:
        token = idp.github_actions("acme/app", environment="prod", audience="https://api.anthropic.com")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks"
DEFAULT_LIFETIME_S = 300  # GitHub's and GitLab's tokens live minutes; so do ours by default

KeyType = Literal["rsa", "ec", "ed25519"]
_ALGORITHMS: dict[KeyType, str] = {"rsa": "RS256", "ec": "ES256", "ed25519": "EdDSA"}


# ------------------------------------------------------------------------------ TLS material


@dataclass(frozen=True)
class TlsMaterial:
    """A private CA and a server certificate for ``127.0.0.1`` / ``localhost`` (PEM files)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @property
    def ca_pem(self) -> str:
        """The CA certificate, for an issuer's ``ca_cert_pem`` or a client's trust store."""
        return self.ca_file.read_text()

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_tls(directory: Path, *, valid_for: dt.timedelta = dt.timedelta(days=1)) -> TlsMaterial:
    """Generate a CA and a loopback server certificate signed by it, written under ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "claudesec loopback OIDC CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    material = TlsMaterial(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    material.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    material.key_file.touch(mode=0o600)
    material.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return material


# ------------------------------------------------------------------------------ signing keys


@dataclass(frozen=True)
class SigningKey:
    """One signing key of the issuer; ``jwk()`` is its public half as published."""

    kid: str
    alg: str
    private_key: Any

    def jwk(self) -> dict[str, Any]:
        import jwt

        algorithm = jwt.get_algorithm_by_name(self.alg)
        data: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        data.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return data

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, alg={self.alg!r})"


def make_signing_key(kind: KeyType = "rsa", kid: str | None = None) -> SigningKey:
    """A fresh signing key: ``rsa`` (RS256, 2048 bits), ``ec`` (ES256) or ``ed25519`` (EdDSA)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    private_key: Any
    if kind == "rsa":
        private_key = rsa.generate_private_key(65537, 2048)
    elif kind == "ec":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ed25519":
        private_key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unknown key type {kind!r}; expected rsa, ec or ed25519")
    return SigningKey(kid or f"{kind}-{secrets.token_hex(4)}", _ALGORITHMS[kind], private_key)


# ------------------------------------------------------------------------------ the issuer


class OidcIssuer:
    """An HTTPS OIDC issuer on a loopback port with its own CA and rotating signing keys.

    ``path`` makes the issuer URL carry a path (``https://127.0.0.1:PORT/tenant-a``), as
    GitLab self-managed or an EKS cluster's issuer does; discovery then lives under it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str = "",
        key_type: KeyType = "rsa",
        directory: Path | None = None,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._path = "/" + path.strip("/") if path.strip("/") else ""
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="claudesec-oidc-")
            directory = Path(self._tempdir.name)
        self.tls = make_tls(directory)
        self._lock = threading.Lock()
        self._initial = make_signing_key(key_type)
        self._current = self._initial
        self._published: list[SigningKey] = [self._current]
        self.hits: Counter[str] = Counter()
        self.fail_status: int | None = None  # answer every request with this status when set
        # Seconds since the epoch for iat/nbf/exp. Point it at the relying party's clock
        # (the emulator's) so both sides share one time, as issuer and API do in real life.
        self.clock: Callable[[], float] = time.time
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------------------- lifecycle

    def start(self) -> OidcIssuer:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self._host, self._requested_port), _handler_for(self))
        server.daemon_threads = True
        server.socket = self.tls.server_context().wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="claudesec-oidc-issuer",
            daemon=True,
        )
        self._thread.start()
        return self

    def reset(self) -> None:
        """Back to the first signing key alone, no fault, no hits (a test's fresh start)."""
        with self._lock:
            self._current = self._initial
            self._published = [self._initial]
        self.fail_status = None
        self.clock = time.time
        self.hits.clear()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.shutdown()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)
        self._server, self._thread = None, None
        if self._tempdir is not None:
            with contextlib.suppress(OSError):
                self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> OidcIssuer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -------------------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the OIDC issuer is not started")
        return int(self._server.server_address[1])

    @property
    def issuer(self) -> str:
        """The ``iss`` value of every token, and the base of discovery."""
        return f"https://{self._host}:{self.port}{self._path}"

    @property
    def discovery_url(self) -> str:
        return self.issuer + DISCOVERY_PATH

    @property
    def jwks_url(self) -> str:
        return self.issuer + JWKS_PATH

    @property
    def ca_pem(self) -> str:
        return self.tls.ca_pem

    def discovery_document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self.published_keys}),
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf"],
        }

    # -------------------------------------------------------------------------- keys

    @property
    def current_key(self) -> SigningKey:
        with self._lock:
            return self._current

    @property
    def published_keys(self) -> list[SigningKey]:
        with self._lock:
            return list(self._published)

    def jwks(self) -> dict[str, Any]:
        """The public key set as served at :attr:`jwks_url` (also usable as inline JWKS)."""
        return {"keys": [key.jwk() for key in self.published_keys]}

    def rotate(self, key_type: KeyType | None = None) -> SigningKey:
        """Publish a new signing key and sign with it from now on; the old one stays published."""
        key = make_signing_key(key_type or _key_type_of(self.current_key))
        with self._lock:
            self._published.append(key)
            self._current = key
        return key

    def retire(self, kid: str) -> None:
        """Stop publishing ``kid`` (the end of a rollover). The current key cannot be retired."""
        with self._lock:
            if kid == self._current.kid:
                raise ValueError("cannot retire the current signing key; rotate first")
            self._published = [k for k in self._published if k.kid != kid]

    # -------------------------------------------------------------------------- tokens

    def mint(
        self,
        claims: dict[str, Any],
        *,
        lifetime: int = DEFAULT_LIFETIME_S,
        now: int | None = None,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Sign ``claims`` over the standard ones (``iss``, ``iat``, ``nbf``, ``exp``, ``jti``).

        A claim given as None is left out, so ``mint({"iat": None})`` makes a token without
        ``iat``. ``key`` signs with a key that need not be published (a forger's key).
        """
        import jwt

        issued = int(self.clock()) if now is None else now
        body: dict[str, Any] = {
            "iss": self.issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
            "jti": str(uuid.uuid4()),
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        signer = key or self.current_key
        header = {"kid": signer.kid, "typ": "JWT", **(headers or {})}
        header = {name: value for name, value in header.items() if value is not None}
        return jwt.encode(body, signer.private_key, algorithm=signer.alg, headers=header)

    def github_actions(
        self,
        repository: str = "acme/app",
        *,
        audience: str | list[str] = "https://api.anthropic.com",
        ref: str = "refs/heads/main",
        environment: str | None = None,
        event_name: str = "push",
        workflow: str = "deploy",
        actor: str = "octocat",
        **overrides: Any,
    ) -> str:
        """A token shaped like GitHub Actions' (``token.actions.githubusercontent.com``)."""
        owner = repository.split("/", 1)[0]
        if environment is not None:
            subject = f"repo:{repository}:environment:{environment}"
        elif event_name == "pull_request":
            subject = f"repo:{repository}:pull_request"
        else:
            subject = f"repo:{repository}:ref:{ref}"
        workflow_path = f"{repository}/.github/workflows/{workflow}.yml@{ref}"
        sha = secrets.token_hex(20)
        claims: dict[str, Any] = {
            "sub": subject,
            "aud": audience,
            "ref": ref,
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "ref_protected": "true" if ref == "refs/heads/main" else "false",
            "sha": sha,
            "repository": repository,
            "repository_id": str(_stable_number(repository)),
            "repository_owner": owner,
            "repository_owner_id": str(_stable_number(owner)),
            "repository_visibility": "private",
            "run_id": str(secrets.randbelow(10**10)),
            "run_number": "42",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "actor": actor,
            "actor_id": str(_stable_number(actor)),
            "workflow": workflow,
            "workflow_ref": workflow_path,
            "workflow_sha": sha,
            "job_workflow_ref": workflow_path,
            "job_workflow_sha": sha,
            "event_name": event_name,
            "head_ref": "feature" if event_name == "pull_request" else "",
            "base_ref": "main" if event_name == "pull_request" else "",
        }
        if environment is not None:
            claims["environment"] = environment
            claims["environment_node_id"] = f"EN_{_stable_number(environment)}"
        return self._shaped(claims, overrides)

    def gitlab_ci(
        self,
        project_path: str = "acme/app",
        *,
        audience: str | list[str] = "https://api.anthropic.com",
        ref: str = "main",
        ref_type: Literal["branch", "tag"] = "branch",
        environment: str | None = None,
        pipeline_source: str = "push",
        user_login: str = "gitlab-user",
        **overrides: Any,
    ) -> str:
        """A token shaped like a GitLab CI ``id_token`` (``gitlab.com`` or self-managed)."""
        namespace = project_path.rsplit("/", 1)[0]
        ref_path = f"refs/{'heads' if ref_type == 'branch' else 'tags'}/{ref}"
        claims: dict[str, Any] = {
            "sub": f"project_path:{project_path}:ref_type:{ref_type}:ref:{ref}",
            "aud": audience,
            "namespace_id": str(_stable_number(namespace)),
            "namespace_path": namespace,
            "project_id": str(_stable_number(project_path)),
            "project_path": project_path,
            "project_visibility": "private",
            "user_id": str(_stable_number(user_login)),
            "user_login": user_login,
            "user_email": f"{user_login}@example.com",
            "user_access_level": "developer",
            "pipeline_id": str(secrets.randbelow(10**9)),
            "pipeline_source": pipeline_source,
            "job_id": str(secrets.randbelow(10**10)),
            "ref": ref,
            "ref_type": ref_type,
            "ref_path": ref_path,
            "ref_protected": "true" if ref == "main" else "false",
            "runner_id": 1,
            "runner_environment": "gitlab-hosted",
            "sha": secrets.token_hex(20),
            "ci_config_ref_uri": f"gitlab.example.com/{project_path}//.gitlab-ci.yml@{ref_path}",
            "ci_config_sha": secrets.token_hex(20),
        }
        if environment is not None:
            claims["environment"] = environment
            claims["environment_protected"] = "true"
            claims["deployment_tier"] = "production" if environment == "production" else "other"
            claims["environment_action"] = "start"
        return self._shaped(claims, overrides)

    def kubernetes(
        self,
        namespace: str = "default",
        service_account: str = "app",
        *,
        audience: str | list[str] = "https://api.anthropic.com",
        pod: str = "app-0",
        node: str = "node-1",
        **overrides: Any,
    ) -> str:
        """A projected service-account token (``serviceAccountToken`` volume) of this cluster."""
        claims: dict[str, Any] = {
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            # The API server always writes aud as a list.
            "aud": audience if isinstance(audience, list) else [audience],
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": node, "uid": str(uuid.uuid4())},
                "pod": {"name": pod, "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
            },
        }
        return self._shaped(claims, overrides)

    def _shaped(self, claims: dict[str, Any], overrides: dict[str, Any]) -> str:
        lifetime = overrides.pop("lifetime", DEFAULT_LIFETIME_S)
        now = overrides.pop("now", None)
        key = overrides.pop("key", None)
        headers = overrides.pop("headers", None)
        claims.update(overrides)
        return self.mint(claims, lifetime=lifetime, now=now, key=key, headers=headers)


def _key_type_of(key: SigningKey) -> KeyType:
    for kind, alg in _ALGORITHMS.items():
        if alg == key.alg:
            return kind
    raise ValueError(key.alg)


def _stable_number(text: str) -> int:
    """A numeric id derived from a name, so one repository keeps one ``repository_id``."""
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _handler_for(issuer: OidcIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            issuer.hits[path] += 1
            prefix = issuer.issuer.split(str(issuer.port), 1)[1]  # the issuer's own path
            if issuer.fail_status is not None:
                self._send(issuer.fail_status, {"error": "unavailable"})
            elif path == prefix + DISCOVERY_PATH:
                self._send(200, issuer.discovery_document())
            elif path == prefix + JWKS_PATH:
                self._send(200, issuer.jwks())
            else:
                self._send(404, {"error": "not_found"})

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode()
            self.wfile.write(head + payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


__all__ = [
    "DISCOVERY_PATH",
    "JWKS_PATH",
    "OidcIssuer",
    "SigningKey",
    "TlsMaterial",
    "make_signing_key",
    "make_tls",
]
