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
    "tests.fixtures.rsyslog",
]

# No test may depend on the machine's speed: Hypothesis' per-example deadline (200 ms) and its
# "too slow" health check fail property tests on a loaded CI machine, not on a wrong answer.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("claudesec", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("claudesec")
