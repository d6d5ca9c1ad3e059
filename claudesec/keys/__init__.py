"""Managed Anthropic keys: stores, the pool of spares, crash-safe rotation, scope policies.

Domain code only: nothing here imports typer or rich, and the heavy libraries (boto3,
keyring) are imported by the store that needs them, when it is opened.
"""
