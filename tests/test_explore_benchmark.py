"""The exploration benchmark in quick mode, so that it never rots; it checks figures agree, never speed."""

from __future__ import annotations

from benchmarks import explore as bench


def test_quick_benchmark_runs_every_case_and_the_counts_agree() -> None:
    rows = bench.run(quick=True, repeats=1)
    by = {(r.case, r.method): r for r in rows}
    tiny = "prove 2x1 Pay, 1 retry"
    # the naive baseline and the unreduced explorer count the same complete interleavings
    assert (
        by[(tiny, "naive re-run of every prefix")].interleavings
        == by[(tiny, "explore (unreduced)")].interleavings
    )
    assert by[("find 2x1 PayFast", "explore (reduced)")].verdict == "broken in 6 steps"
    pairs = "prove 4 disjoint pairs x1"
    assert by[(pairs, "all interleavings (formula)")].interleavings == 369_600
    assert by[(pairs, "explore (reduced)")].interleavings == 1
    table = bench.markdown(rows)
    assert table.count("\n") == len(rows) + 1
    assert any("interleavings explored / all" in line for line in bench.ratios(rows))


def test_the_command_line_prints_the_table(capsys: object) -> None:
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "| case | method |" in out and "naive/unreduced time" in out
