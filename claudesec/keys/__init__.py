"""Managed Anthropic keys: stores, the pool of spares, crash-safe rotation, scope policies.

Domain code only: nothing here imports typer or rich, and the heavy libraries (boto3,
keyring) are imported by the store that needs them, when it is opened.

Consumers need one function: ``current_key(name)`` (see :mod:`claudesec.keys.consumer`).
"""

from claudesec.keys.consumer import DEFAULT_TTL_S, clear_cache, current_key

__all__ = ["DEFAULT_TTL_S", "clear_cache", "current_key"]
