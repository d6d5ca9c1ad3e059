"""Mesh manifests: rendered YAML checked against schemas, and the bypass linter.

Istio: the CRD schemas as shipped in ``cloudcoil-models-istio`` (pydantic models generated from
Istio's CRDs); a round trip must keep every field, so an unknown field fails too. Kubernetes
built-ins (NetworkPolicy): ``kubernetes-validate`` in strict mode. Linkerd publishes no schema
package: its documents get structural checks written from the policy.linkerd.io CRDs.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from claudesec.proxy.mesh import MeshOptions, lint_documents, load_documents, render

OPTIONS = MeshOptions(client_namespaces=("apps", "agents"))


def _docs(kind: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(kind, OPTIONS)) if d]  # type: ignore[arg-type]


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def test_istio_manifests_match_the_crd_schemas() -> None:
    models = pytest.importorskip("cloudcoil.models.istio.networking.v1")
    security = pytest.importorskip("cloudcoil.models.istio.security.v1")
    classes = {
        "ServiceEntry": models.ServiceEntry,
        "Gateway": models.Gateway,
        "DestinationRule": models.DestinationRule,
        "VirtualService": models.VirtualService,
        "Sidecar": models.Sidecar,
        "AuthorizationPolicy": security.AuthorizationPolicy,
        "PeerAuthentication": security.PeerAuthentication,
    }
    docs = _docs("istio")
    assert {d["kind"] for d in docs} == set(classes)
    for doc in docs:
        model = classes[doc["kind"]].model_validate(doc)
        dumped = _strip_none(model.model_dump(mode="json", by_alias=True, exclude_unset=True))
        assert dumped["spec"] == doc["spec"], doc["kind"]


def test_kubernetes_builtins_match_their_schemas() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    docs = [d for d in _docs("linkerd") if d["apiVersion"] == "networking.k8s.io/v1"]
    assert docs
    for doc in docs:
        kv.validate(doc, "1.33.0", strict=True)


LINKERD_SPEC_KEYS = {
    "Server": ({"podSelector", "port"}, {"podSelector", "port", "proxyProtocol", "accessPolicy"}),
    "MeshTLSAuthentication": ({"identityRefs"}, {"identities", "identityRefs"}),
    "AuthorizationPolicy": (
        {"targetRef", "requiredAuthenticationRefs"},
        {"targetRef", "requiredAuthenticationRefs"},
    ),
    "EgressNetwork": ({"trafficPolicy"}, {"trafficPolicy", "networks"}),
}


def test_linkerd_manifests_are_structurally_valid() -> None:
    for doc in _docs("linkerd"):
        if doc["apiVersion"].startswith("networking.k8s.io"):
            continue
        assert doc["apiVersion"].startswith("policy.linkerd.io/")
        required, allowed = LINKERD_SPEC_KEYS[doc["kind"]]
        keys = set(doc["spec"])
        assert required <= keys <= allowed, doc["kind"]
        assert doc["metadata"]["name"] and doc["metadata"]["namespace"]
        if doc["kind"] == "EgressNetwork":
            assert doc["spec"]["trafficPolicy"] in ("Allow", "Deny")
        if doc["kind"] == "Server":
            assert doc["spec"]["proxyProtocol"] in (
                "unknown",
                "HTTP/1",
                "HTTP/2",
                "gRPC",
                "opaque",
                "TLS",
            )


@pytest.mark.parametrize("kind", ["istio", "linkerd"])
def test_rendered_manifests_lint_clean(kind: str) -> None:
    docs = load_documents("rendered.yaml", render(kind, OPTIONS))  # type: ignore[arg-type]
    assert lint_documents(docs) == []


BYPASSES = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: anthropic, namespace: apps}
spec:
  hosts: [api.anthropic.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: open, namespace: apps}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: ALLOW
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: relaxed, namespace: claudesec}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: EgressNetwork
metadata: {name: all, namespace: apps}
spec: {trafficPolicy: Allow}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: internet, namespace: apps}
spec:
  podSelector: {}
  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{port: 443}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: apps}
spec:
  template:
    spec:
      containers:
        - name: app
          env:
            - {name: ANTHROPIC_BASE_URL, value: "https://api.anthropic.com"}
"""


def test_lint_flags_each_way_around_the_proxy() -> None:
    findings = lint_documents(load_documents("bypass.yaml", BYPASSES))
    assert [f.rule for f in findings] == [
        "CS-MESH-001",
        "CS-MESH-004",
        "CS-MESH-007",
        "CS-MESH-006",
        "CS-MESH-008",
        "CS-MESH-009",
        "CS-MESH-010",
    ]
    assert findings[0].line().startswith("bypass.yaml#1 ServiceEntry/anthropic:")
