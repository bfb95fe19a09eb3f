"""The processes benchmark in quick mode (memory only), so that it never rots; it judges no speed."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.processes import main


def test_processes_benchmark_runs_and_reports_every_case(tmp_path: Path) -> None:
    out = tmp_path / "processes.json"
    assert main(["--quick", "--no-postgres", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["backend"], r["runners"]) for r in rows] == [("memory", 1), ("memory", 8)]
    for row in rows:
        assert row["processes"] == 2 * row["orders"]
        assert row["steps"] == 12 * row["orders"]  # every order's two processes ran to the end
        assert row["seconds"] > 0 and row["steps_per_s"] > 0
