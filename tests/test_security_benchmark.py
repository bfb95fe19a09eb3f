"""The security benchmark at a tiny size, so that it never rots (it judges no speed)."""

from __future__ import annotations

import pytest

from benchmarks import security


def test_security_benchmark_runs_every_variant(capsys: pytest.CaptureFixture[str], pg_url: str) -> None:
    assert security.main(["--commands", "20", "--pg-commands", "5", "--repeats", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("| memory") or line.startswith("| postgres")]
    [first_keys] = [line for line in out if line.startswith("| one new subject per call")]
    waits, no_wait = (float(c.strip().replace(",", "")) for c in first_keys.split("|")[2:4])
    assert waits > 0 and no_wait > 0
    assert [tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows] == [
        ("memory", "register"),
        ("memory", "change"),
        ("postgres", "register"),
        ("postgres", "change"),
    ]
    for row in rows:
        plain, wrapped, encrypted, ratio = (cell.strip() for cell in row.split("|")[3:7])
        assert all(float(v.replace(",", "")) > 0 for v in (plain, wrapped, encrypted)) and ratio.endswith("%")


def test_security_benchmark_interleaved_register_runs(
    capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    assert security.main(["--interleaved", "--repeats", "1"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| median of 1 ")]
    cells = [cell.strip() for cell in row.split("|")[2:5]]
    assert all(float(cell.split()[0]) > 0 for cell in cells) and "of plain" in cells[1]
