"""Service-mesh manifests that make the proxy the only way pods reach the Anthropic API.

``render`` writes them; ``lint`` reads any manifests (the rendered ones after local edits, or a
cluster's export) and flags what lets traffic reach the API around the gateway.

Istio (the standard egress-gateway pattern):

* ``ServiceEntry`` for the API host, exported only to the proxy's and the egress gateway's
  namespaces: elsewhere, with ``outboundTrafficPolicy: REGISTRY_ONLY`` (set per namespace by
  the ``Sidecar``), the host does not exist;
* ``Gateway`` + ``DestinationRule`` + ``VirtualService``: the proxy's sidecar sends API traffic
  over mTLS (``ISTIO_MUTUAL``) to the egress gateway, which passes the TLS through to the API;
* ``AuthorizationPolicy`` on the egress gateway: only the proxy's service account (an mTLS
  principal) may use it; another on the proxy: only listed client namespaces may call it;
* ``PeerAuthentication`` ``STRICT`` on the proxy's namespace: plaintext callers are refused,
  so every caller has a verified workload identity.

Linkerd (2.16+ egress control): ``EgressNetwork`` with ``trafficPolicy: Deny`` in each client
namespace, ``Server`` + ``MeshTLSAuthentication`` + ``AuthorizationPolicy`` so only meshed
clients of listed namespaces reach the proxy, and a Kubernetes ``NetworkPolicy`` so unmeshed
pods cannot open port 443 to the internet either (a mesh only governs meshed pods).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MeshKind = Literal["istio", "linkerd"]
API_HOST = "api.anthropic.com"


@dataclass(frozen=True)
class MeshOptions:
    namespace: str = "claudesec"
    service: str = "claudesec-proxy"
    service_account: str = "claudesec-proxy"
    port: int = 8788
    client_namespaces: tuple[str, ...] = ("default",)
    api_host: str = API_HOST
    egress_namespace: str = "istio-system"
    trust_domain: str = "cluster.local"

    @property
    def proxy_principal(self) -> str:
        return f"{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def proxy_host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"


def _meta(name: str, namespace: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "claudesec"},
    }


def istio_manifests(o: MeshOptions) -> list[dict[str, Any]]:
    egress_sel = {"istio": "egressgateway"}
    proxy_sel = {"app": o.service}
    egress_host = f"istio-egressgateway.{o.egress_namespace}.svc.cluster.local"
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": _meta("anthropic-api", o.namespace),
            "spec": {
                "hosts": [o.api_host],
                "exportTo": [".", o.egress_namespace],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": _meta("anthropic-egress", o.egress_namespace),
            "spec": {
                "selector": egress_sel,
                "servers": [
                    {
                        "port": {"number": 443, "name": "tls", "protocol": "TLS"},
                        "hosts": [o.api_host],
                        "tls": {"mode": "ISTIO_MUTUAL"},
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": _meta("anthropic-egress", o.namespace),
            "spec": {
                "host": egress_host,
                "exportTo": ["."],
                "subsets": [
                    {
                        "name": "anthropic",
                        "trafficPolicy": {
                            "tls": {"mode": "ISTIO_MUTUAL", "sni": o.api_host},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": _meta("anthropic-via-egress", o.namespace),
            "spec": {
                "hosts": [o.api_host],
                "exportTo": [".", o.egress_namespace],
                "gateways": ["mesh", f"{o.egress_namespace}/anthropic-egress"],
                "tls": [
                    {
                        "match": [{"gateways": ["mesh"], "port": 443, "sniHosts": [o.api_host]}],
                        "route": [
                            {
                                "destination": {
                                    "host": egress_host,
                                    "subset": "anthropic",
                                    "port": {"number": 443},
                                }
                            }
                        ],
                    },
                    {
                        "match": [
                            {
                                "gateways": [f"{o.egress_namespace}/anthropic-egress"],
                                "port": 443,
                                "sniHosts": [o.api_host],
                            }
                        ],
                        "route": [{"destination": {"host": o.api_host, "port": {"number": 443}}}],
                    },
                ],
            },
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": _meta("anthropic-egress-only-proxy", o.egress_namespace),
            "spec": {
                "selector": {"matchLabels": egress_sel},
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [{"source": {"principals": [o.proxy_principal]}}],
                        "when": [{"key": "connection.sni", "values": [o.api_host]}],
                    }
                ],
            },
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": _meta("claudesec-proxy-clients", o.namespace),
            "spec": {
                "selector": {"matchLabels": proxy_sel},
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [{"source": {"namespaces": list(o.client_namespaces)}}],
                        "to": [{"operation": {"ports": [str(o.port)]}}],
                    }
                ],
            },
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": _meta("claudesec-strict-mtls", o.namespace),
            "spec": {"mtls": {"mode": "STRICT"}},
        },
    ]
    for namespace in o.client_namespaces:
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "Sidecar",
                "metadata": _meta("claudesec-registry-only", namespace),
                "spec": {
                    "egress": [{"hosts": ["./*", f"{o.namespace}/*", "istio-system/*"]}],
                    "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
                },
            }
        )
    return docs


def linkerd_manifests(o: MeshOptions) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "policy.linkerd.io/v1beta3",
            "kind": "Server",
            "metadata": _meta(o.service, o.namespace),
            "spec": {
                "podSelector": {"matchLabels": {"app": o.service}},
                "port": o.port,
                "proxyProtocol": "HTTP/1",
            },
        },
        {
            "apiVersion": "policy.linkerd.io/v1alpha1",
            "kind": "MeshTLSAuthentication",
            "metadata": _meta("claudesec-proxy-clients", o.namespace),
            "spec": {
                "identityRefs": [
                    {"kind": "ServiceAccount", "namespace": namespace, "name": "*"}
                    for namespace in o.client_namespaces
                ]
            },
        },
        {
            "apiVersion": "policy.linkerd.io/v1alpha1",
            "kind": "AuthorizationPolicy",
            "metadata": _meta("claudesec-proxy-clients", o.namespace),
            "spec": {
                "targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": o.service},
                "requiredAuthenticationRefs": [
                    {
                        "group": "policy.linkerd.io",
                        "kind": "MeshTLSAuthentication",
                        "name": "claudesec-proxy-clients",
                    }
                ],
            },
        },
        {
            # Only the proxy may open connections to the internet on 443.
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("claudesec-proxy-egress", o.namespace),
            "spec": {
                "podSelector": {"matchLabels": {"app": o.service}},
                "policyTypes": ["Egress"],
                "egress": [
                    {"ports": [{"protocol": "TCP", "port": 443}]},
                    {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                ],
            },
        },
    ]
    for namespace in o.client_namespaces:
        docs.append(
            {
                "apiVersion": "policy.linkerd.io/v1alpha1",
                "kind": "EgressNetwork",
                "metadata": _meta("claudesec-deny-egress", namespace),
                "spec": {"trafficPolicy": "Deny"},
            }
        )
        docs.append(
            {
                # Unmeshed pods bypass Linkerd: the network itself must only allow the cluster.
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta("claudesec-no-direct-egress", namespace),
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {"namespaceSelector": {}},
                            ]
                        }
                    ],
                },
            }
        )
    return docs


def render(kind: MeshKind, options: MeshOptions) -> str:
    """The manifests as one multi-document YAML stream."""
    import yaml

    docs = istio_manifests(options) if kind == "istio" else linkerd_manifests(options)
    header = (
        f"# Rendered by `claudesec mesh render --kind {kind}`: pods in "
        f"{', '.join(options.client_namespaces)} reach {options.api_host} only through "
        f"{options.proxy_host}:{options.port}.\n"
    )
    return header + yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)


# --------------------------------------------------------------------------- lint


@dataclass(frozen=True)
class LintFinding:
    file: str
    index: int  # document number in the file, from 1
    kind: str
    name: str
    rule: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def line(self) -> str:
        return f"{self.file}#{self.index} {self.kind}/{self.name}: {self.rule}: {self.message}"


@dataclass
class _Context:
    proxy_namespace: str
    api_host: str
    findings: list[LintFinding] = field(default_factory=list)


def _matches_api(host: str, api_host: str) -> bool:
    host = host.rsplit("/", maxsplit=1)[-1]  # VirtualService/Sidecar hosts may be "ns/host"
    return fnmatch.fnmatchcase(api_host, host) or host == api_host


def lint_documents(
    docs: Iterable[tuple[str, int, Any]],
    *,
    proxy_namespace: str = "claudesec",
    api_host: str = API_HOST,
) -> list[LintFinding]:
    """Findings for manifests that let traffic reach the API around the proxy."""
    ctx = _Context(proxy_namespace, api_host)
    for file, index, doc in docs:
        if not isinstance(doc, Mapping):
            continue
        kind = str(doc.get("kind", ""))
        meta = doc.get("metadata") or {}
        spec = doc.get("spec") or {}
        if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
            continue
        name = str(meta.get("name", "?"))
        namespace = str(meta.get("namespace", "default"))

        def flag(rule: str, message: str, severity: Literal["error", "warning"] = "error") -> None:
            ctx.findings.append(LintFinding(file, index, kind, name, rule, message, severity))  # noqa: B023

        _lint_one(kind, namespace, spec, doc, flag, ctx)
    return ctx.findings


def _lint_one(
    kind: str,
    namespace: str,
    spec: Mapping[str, Any],
    doc: Mapping[str, Any],
    flag: Any,
    ctx: _Context,
) -> None:
    api = ctx.api_host
    outside = namespace != ctx.proxy_namespace
    if kind == "ServiceEntry":
        hosts = [str(h) for h in spec.get("hosts") or []]
        if any(_matches_api(h, api) for h in hosts):
            export = [str(e) for e in spec.get("exportTo") or ["*"]]
            if "*" in export:
                flag(
                    "CS-MESH-001",
                    f"exports {api} to every namespace: any pod can call it without the proxy "
                    f"(set exportTo to ['.'] in {ctx.proxy_namespace})",
                )
            elif outside:
                flag(
                    "CS-MESH-002",
                    f"declares {api} in namespace {namespace}, outside the proxy's namespace",
                )
    elif kind == "VirtualService":
        hosts = [str(h) for h in spec.get("hosts") or []]
        if any(_matches_api(h, api) for h in hosts) and outside:
            flag(
                "CS-MESH-003",
                f"routes {api} from namespace {namespace}: only the proxy's namespace may",
            )
    elif kind == "Sidecar":
        mode = (spec.get("outboundTrafficPolicy") or {}).get("mode", "")
        if mode == "ALLOW_ANY":
            flag(
                "CS-MESH-004",
                "outboundTrafficPolicy ALLOW_ANY lets pods reach any external host, "
                "the API included (use REGISTRY_ONLY)",
            )
        for egress in spec.get("egress") or []:
            for host in (egress or {}).get("hosts") or []:
                # "*/*" only shows what is exported to the namespace (CS-MESH-001 covers
                # that); naming the API host itself is the bypass.
                if outside and str(host).split("/")[-1] == api:
                    flag("CS-MESH-005", f"lets the namespace's pods reach {host} directly")
    elif kind == "PeerAuthentication" and not outside:
        mode = (spec.get("mtls") or {}).get("mode", "")
        if mode in ("PERMISSIVE", "DISABLE"):
            flag(
                "CS-MESH-006",
                f"mTLS {mode} in the proxy's namespace: callers without a workload identity get in",
            )
    elif kind == "AuthorizationPolicy" and "security.istio.io" in str(doc.get("apiVersion")):
        _lint_istio_authz(namespace, spec, flag, ctx)
    elif kind == "EgressNetwork":
        if spec.get("trafficPolicy") == "Allow" and outside:
            flag(
                "CS-MESH-008",
                "trafficPolicy Allow lets meshed pods reach any external host, the API included",
            )
    elif kind == "NetworkPolicy" and outside:
        for rule in spec.get("egress") or []:
            for peer in (rule or {}).get("to") or []:
                block = (peer or {}).get("ipBlock") or {}
                if str(block.get("cidr", "")) in ("0.0.0.0/0", "::/0"):
                    ports = {int(p.get("port", 0) or 0) for p in (rule.get("ports") or [{}])}
                    if 443 in ports or 0 in ports:
                        flag(
                            "CS-MESH-009",
                            "allows egress to the internet on 443, so the API is reachable "
                            "without the proxy",
                        )
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Pod", "Job", "CronJob"):
        _lint_workload(doc, flag, ctx)


def _lint_istio_authz(namespace: str, spec: Mapping[str, Any], flag: Any, ctx: _Context) -> None:
    selector = ((spec.get("selector") or {}).get("matchLabels")) or {}
    if selector.get("istio") != "egressgateway" or spec.get("action", "ALLOW") != "ALLOW":
        return
    proxy_principal_suffix = f"/ns/{ctx.proxy_namespace}/sa/"
    for rule in spec.get("rules") or [{}]:
        sources = [(f or {}).get("source") or {} for f in (rule or {}).get("from") or []]
        if not sources:
            flag(
                "CS-MESH-007",
                "allows every workload through the egress gateway (no 'from' sources)",
            )
            continue
        for source in sources:
            principals = [str(p) for p in source.get("principals") or []]
            others = [p for p in principals if proxy_principal_suffix not in p]
            if others or not principals:
                flag(
                    "CS-MESH-007",
                    "lets workloads other than the claudesec proxy use the egress gateway",
                )


def _containers(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec: Any = doc.get("spec") or {}
    for path in (("jobTemplate", "spec", "template", "spec"), ("template", "spec")):
        node: Any = spec
        for part in path:
            node = (node or {}).get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            spec = node
            break
    items = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    return [c for c in items if isinstance(c, Mapping)]


def _lint_workload(doc: Mapping[str, Any], flag: Any, ctx: _Context) -> None:
    namespace = str((doc.get("metadata") or {}).get("namespace", "default"))
    if namespace == ctx.proxy_namespace:
        return
    for container in _containers(doc):
        for env in container.get("env") or []:
            if not isinstance(env, Mapping):
                continue
            name, value = str(env.get("name", "")), env.get("value")
            if name == "ANTHROPIC_BASE_URL" and isinstance(value, str) and ctx.api_host in value:
                flag(
                    "CS-MESH-010",
                    f"container {container.get('name')} points ANTHROPIC_BASE_URL at the API "
                    "itself, not at the proxy",
                )
            if name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
                literal = isinstance(value, str) and value.startswith("sk-ant-")
                from_secret = "valueFrom" in env
                if literal or from_secret:
                    flag(
                        "CS-MESH-011",
                        f"container {container.get('name')} gets {name} from "
                        f"{'a literal Anthropic key' if literal else 'a Secret'}: clients should "
                        "hold a proxy token, and only the proxy the real key",
                        "error" if literal else "warning",
                    )


def load_documents(path: str, text: str) -> list[tuple[str, int, Any]]:
    """Parse a YAML stream; raise ``ValueError`` with the file name when it is not YAML."""
    import yaml

    try:
        return [
            (path, number, doc)
            for number, doc in enumerate(yaml.safe_load_all(text), start=1)
            if doc is not None
        ]
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
