"""Workload identity federation as code: issuers, service accounts and rules declared in the
config, compared with the organisation (``plan``), applied idempotently (``apply``), listed and
linted against a catalogue of dangerous rule shapes.

The modules: :mod:`.presets` (the catalogue of issuer presets), :mod:`.spec` (the config tables
into typed, validated specs), :mod:`.org` (the organisation's live objects, read through the
SDK), :mod:`.plan` and :mod:`.apply` (the diff and its execution), :mod:`.lint` with
:mod:`.lint_catalogue` (the misconfiguration catalogue) and :mod:`.sarif`. No typer or rich
here: the CLI (:mod:`claudesec.cli.federation`) renders.
"""
