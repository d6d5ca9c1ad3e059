"""Secret scanning: the engine (bytes in, findings out), sources (directory, staged index,
history, stdin), suppression (baseline, inline allow, config allowlists), reports and optional
live verification.

Kept import-light on purpose: ``claudesec scan --staged`` runs in a pre-commit hook on every
commit, so nothing here may pull in rich, typer, boto3 or anthropic at import time.
"""
