"""The query-vs-streams benchmark at a tiny size, so that it never rots (it judges no speed)."""

from __future__ import annotations

import pytest

from benchmarks import queries


def test_queries_benchmark_runs_both_variants_on_both_stores(
    capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    assert queries.main(["--joins", "16", "--pg-joins", "16", "--repeats", "1", "--clients", "1,2"]) == 0
    rows = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith(("| duckdb", "| postgres"))
    ]
    assert [tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows] == [
        ("duckdb", "1"),
        ("duckdb", "2"),
        ("postgres", "1"),
        ("postgres", "2"),
    ]
    for row in rows:
        streams, by_query, ratio = (cell.strip() for cell in row.split("|")[3:6])
        assert float(streams.replace(",", "")) > 0 and float(by_query.replace(",", "")) > 0
        assert ratio.endswith("%")


def test_every_planned_join_is_distinct_so_every_join_succeeds() -> None:
    for clients in (1, 8):
        plans = queries.joins("queries", clients, 800)
        pairs = [(c.student_id, c.course_id) for plan in plans for c in plan]  # type: ignore[attr-defined]
        assert len(pairs) == len(set(pairs)) == 800
