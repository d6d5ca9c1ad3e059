"""The issuer presets, as data: what a CI system's or a cluster's OIDC tokens look like.

A preset gives an issuer its default URL (where the provider has one) and gives rules the
*sugar* keys that spell a trust relationship the way people think of it ("this repository's
main branch, this environment") instead of a hand-written subject string. Each sugar key maps
to the token claim it pins; :func:`subject_for` builds the exact ``sub`` the provider mints
for those values, so a rule is an exact subject plus exact claims, never a wildcard, unless
the user leaves the branch open (which ``federation lint`` then reports).

Subject layouts are the providers' documented ones: GitHub Actions ``repo:OWNER/REPO:
environment:NAME`` / ``...:ref:REF`` / ``...:pull_request``; GitLab ``project_path:GROUP/
PROJECT:ref_type:TYPE:ref:REF``; Kubernetes ``system:serviceaccount:NAMESPACE:NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"


@dataclass(frozen=True)
class ClusterShape:
    """How one managed Kubernetes service spells its clusters' OIDC issuer URL."""

    provider: str
    pattern: str  # a regular expression matched against the whole issuer URL
    example: str


@dataclass(frozen=True)
class Preset:
    """One kind of issuer: default URL, the sugar keys its rules accept (key -> claim), the
    keys a rule must set, and whether it is a CI system (ref/environment pinning expected)."""

    name: str
    title: str
    issuer_url: str | None
    sugar: Mapping[str, str]
    required: tuple[str, ...] = ()
    ci: bool = False
    # Claims that name the tenant (repository, project): pinning one keeps other tenants of a
    # shared issuer out.
    identity_claims: tuple[str, ...] = ()
    ref_claims: tuple[str, ...] = ()
    environment_claims: tuple[str, ...] = ()
    cluster_shapes: tuple[ClusterShape, ...] = ()


PRESETS: dict[str, Preset] = {
    "github-actions": Preset(
        name="github-actions",
        title="GitHub Actions",
        issuer_url=GITHUB_ISSUER,
        sugar={
            "repository": "repository",
            "ref": "ref",
            "environment": "environment",
            "repository_owner": "repository_owner",
            "workflow_ref": "job_workflow_ref",
            "event_name": "event_name",
        },
        required=("repository",),
        ci=True,
        identity_claims=("repository", "repository_id", "repository_owner", "repository_owner_id"),
        ref_claims=("ref", "job_workflow_ref", "workflow_ref", "base_ref"),
        environment_claims=("environment",),
    ),
    "gitlab-ci": Preset(
        name="gitlab-ci",
        title="GitLab CI",
        issuer_url=GITLAB_ISSUER,
        sugar={
            "project_path": "project_path",
            "ref": "ref",
            "ref_type": "ref_type",
            "environment": "environment",
            "ref_protected": "ref_protected",
            "namespace_path": "namespace_path",
        },
        required=("project_path",),
        ci=True,
        identity_claims=("project_path", "project_id", "namespace_path", "namespace_id"),
        ref_claims=("ref", "ref_path"),
        environment_claims=("environment",),
    ),
    "kubernetes": Preset(
        name="kubernetes",
        title="Kubernetes service-account tokens",
        issuer_url=None,
        sugar={"namespace": "kubernetes.io.namespace", "service_account_name": "sub"},
        required=("namespace", "service_account_name"),
        cluster_shapes=(
            ClusterShape(
                "eks",
                r"https://oidc\.eks\.[a-z0-9-]+\.amazonaws\.com/id/[A-F0-9]{8,}",
                "https://oidc.eks.eu-west-1.amazonaws.com/id/5C2B1E0A9D8F7E6D5C4B3A2918070605",
            ),
            ClusterShape(
                "gke",
                r"https://container\.googleapis\.com/v1/projects/[a-z0-9-]+/locations/"
                r"[a-z0-9-]+/clusters/[a-z0-9-]+",
                "https://container.googleapis.com/v1/projects/acme-prod/locations/europe-west1/"
                "clusters/apps",
            ),
            ClusterShape(
                "aks",
                r"https://[a-z0-9]+\.oic\.prod-aks\.azure\.com/[0-9a-f-]{36}/[0-9a-f-]{36}/",
                "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/"
                "11111111-1111-1111-1111-111111111111/",
            ),
        ),
    ),
    "generic": Preset(
        name="generic",
        title="Any OIDC identity provider",
        issuer_url=None,
        sugar={},
    ),
}

# The match fields a rule may set by hand, whatever its preset (the SDK's own names).
RAW_MATCH_KEYS = ("subject_prefix", "claims", "condition", "audience")


def cluster_kind(issuer_url: str) -> str | None:
    """``eks``, ``gke`` or ``aks`` when the URL has that service's shape, else None."""
    for shape in PRESETS["kubernetes"].cluster_shapes:
        if re.fullmatch(shape.pattern, issuer_url):
            return shape.provider
    return None


def preset_for_issuer(issuer_url: str) -> Preset | None:
    """The preset of a well-known issuer URL (live rules carry only the URL)."""
    url = issuer_url.rstrip("/").lower()
    for preset in PRESETS.values():
        if preset.issuer_url and preset.issuer_url.rstrip("/").lower() == url:
            return preset
    if cluster_kind(issuer_url) is not None:
        return PRESETS["kubernetes"]
    return None


def subject_for(preset: Preset, sugar: Mapping[str, str]) -> str | None:
    """The exact ``sub`` the provider mints for these sugar values, or a prefix ending in
    ``*`` when they leave part of it open; None when the preset has no subject layout."""
    if preset.name == "github-actions":
        base = f"repo:{sugar['repository']}:"
        if "environment" in sugar:
            return base + f"environment:{sugar['environment']}"
        if "ref" in sugar:
            return base + f"ref:{sugar['ref']}"
        return base + "*"
    if preset.name == "gitlab-ci":
        base = f"project_path:{sugar['project_path']}:"
        if "ref" in sugar:
            return base + f"ref_type:{sugar.get('ref_type', 'branch')}:ref:{sugar['ref']}"
        return base + "*"
    if preset.name == "kubernetes":
        return f"system:serviceaccount:{sugar['namespace']}:{sugar['service_account_name']}"
    return None


def claims_for(preset: Preset, sugar: Mapping[str, str]) -> dict[str, str]:
    """The exact-match claims that pin what the sugar says (top-level string claims only:
    Kubernetes' namespace is nested, so its subject carries it)."""
    claims: dict[str, str] = {}
    for key, value in sugar.items():
        claim = preset.sugar[key]
        if claim == "sub" or "." in claim:
            continue
        claims[claim] = value
    return claims
