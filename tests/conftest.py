"""Shared test rig: every later test builds on these fixtures (see tests/fixtures/)."""

pytest_plugins = [
    "tests.fixtures.isolation",
    "tests.fixtures.cli",
    "tests.fixtures.git",
    "tests.fixtures.aws",
    "tests.fixtures.keyring",
    "tests.fixtures.emulator",
    "tests.fixtures.oidc",
    "tests.fixtures.federation",
    "tests.fixtures.keys",
    "tests.fixtures.sinks",
    "tests.fixtures.kafka",
]
