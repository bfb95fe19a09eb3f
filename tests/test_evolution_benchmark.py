"""The upcasting benchmark at a tiny size, so that it never rots (it never judges speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_upcast_benchmark_runs_every_path_and_they_agree(tmp_path: Path) -> None:
    out = tmp_path / "upcast.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.upcast", "--events", "3000", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]  # a path giving other balances exits non-zero
    result = json.loads(out.read_text())
    assert result["events"] == 3000
    cases = {(row["log"], row["path"]) for row in result["rows"]}
    assert len(cases) == 6 and {path for _, path in cases} == {"per event", "vectorised"}
    assert all(row["events_per_s"] > 0 for row in result["rows"])
    assert "| half need one upcast | per event |" in done.stdout
