"""The example classic charm, 4 units as real subprocesses in jujusim's process runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "examples" / "classic-rolling-restart"


@pytest.mark.slow
def test_classic_example_rolling_restart_in_the_process_runtime(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    done = subprocess.run(
        [sys.executable, "-m", "jujusim", "run", str(EXAMPLE), "--units", "4",
         "--scenario", "rolling-restart", "--runtime", "process", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["completed"] is True
    assert data["violations"] == []
    assert data["max_concurrent"] == 1
    assert data["operations"] == 4
    assert data["failed_hooks"] == 0
