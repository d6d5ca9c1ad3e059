"""The preset catalogue: each managed Kubernetes service's issuer URL shape recognises its own
example and nothing else; well-known CI issuers map back to their preset."""

from __future__ import annotations

import pytest

from claudesec.federation.presets import PRESETS, cluster_kind, preset_for_issuer


@pytest.mark.parametrize("shape", PRESETS["kubernetes"].cluster_shapes, ids=lambda s: s.provider)
def test_each_cluster_shape_recognises_its_example(shape: object) -> None:
    assert cluster_kind(shape.example) == shape.provider  # type: ignore[attr-defined]
    assert preset_for_issuer(shape.example) is PRESETS["kubernetes"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        "https://oidc.eks.eu-west-1.amazonaws.com.evil.test/id/ABCDEF0123456789",
        "http://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789",
        "https://container.googleapis.com/v1/projects/p/locations/l/clusters/c/../x",
        "https://idp.example.test",
    ],
)
def test_look_alike_urls_are_not_clusters(url: str) -> None:
    assert cluster_kind(url) is None


def test_well_known_ci_issuers_map_to_their_presets() -> None:
    assert (
        preset_for_issuer("https://token.actions.githubusercontent.com/")
        is PRESETS["github-actions"]
    )
    assert preset_for_issuer("https://gitlab.com") is PRESETS["gitlab-ci"]
    assert preset_for_issuer("https://idp.example.test") is None
