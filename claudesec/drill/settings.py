"""What a drill run may use: the configuration (live drills only) and the environment.

Offline drills ignore the configuration on purpose: they build every server, store and
policy they need in their own sandbox, so a user's ``claudesec.toml`` can neither break them
nor be touched by them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claudesec.config import Config


@dataclass(frozen=True)
class DrillSettings:
    config: Config | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Builds a boto3 client for live drills: ``client_factory("iam")``. Tests point it at
    # moto (whose IAM has no policy simulator) with a stubbed simulator.
    client_factory: Callable[[str], Any] | None = None
