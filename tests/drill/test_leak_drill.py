"""The leak-to-dead-key drill: real git, a real pre-commit hook running `scan --staged
--revoke`, the emulator as the Anthropic API (issue 16 item 8)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_committed_canary_key_answers_401_and_the_time_is_reported(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("ANTHROPIC_ADMIN_KEY", None)  # the drill passes its own canary admin key
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "claudesec", "drill", "run"),
            *("scan-leak-to-dead-key", "-j", "1", "--json", "out.json"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (drill,) = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["drills"]
    assert drill["status"] == "blocked"
    (evidence,) = drill["evidence"]
    # The figure is reported, never judged: any duration passes, a live key does not.
    assert re.search(r"git commit to HTTP 401 in \d+ ms \(commit exited 1, blocked\)", evidence)
    assert drill["time_to_block_ms"] is not None
    assert "sk-ant-" not in proc.stdout + proc.stderr + json.dumps(drill)
