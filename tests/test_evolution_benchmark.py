"""The upcasting benchmark at a small size, so that it never rots (it never judges speed).

``EVENTCORE_UPCAST_EVENTS`` sets the size: 3,000 by default; the must-show run is
``EVENTCORE_UPCAST_EVENTS=1000000 pytest tests/test_evolution_benchmark.py -s -p no:nbval`` (the same as
``python -m benchmarks.upcast``, with the table printed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("EVENTCORE_UPCAST_EVENTS", "3000"))


def test_the_upcast_benchmark_runs_every_path_and_they_agree(tmp_path: Path) -> None:
    out = tmp_path / "upcast.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.upcast", "--events", str(EVENTS), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=max(300, EVENTS // 500),
    )
    assert done.returncode == 0, done.stderr[-3000:]  # a path giving other balances exits non-zero
    print(done.stdout)
    result = json.loads(out.read_text())
    assert result["events"] == EVENTS
    cases = {(row["log"], row["path"]) for row in result["rows"]}
    assert len(cases) == 12
    assert {path for _, path in cases} == {"per event", "vectorised (pandas)", "vectorised (Arrow)"}
    assert all(row["events_per_s"] > 0 for row in result["rows"])
    assert "| half need one upcast (rename_field: SQL) | vectorised (Arrow) |" in done.stdout
