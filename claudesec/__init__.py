"""claudesec: zero-trust control for Anthropic Claude API deployments.

Importing this package is cheap: nothing heavy (anthropic, boto3, rich) is imported here, so
the CLI and the scanner start fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
