"""benchmarks.hot_path (instruction counts of the in-memory hot path) runs and does what it says."""

from __future__ import annotations

import pytest

from benchmarks import hot_path


@pytest.mark.parametrize(("kind", "events"), [("update", 5), ("create", 10), ("transfer", 10)])
def test_hot_path_runs_the_commands_it_names(kind: str, events: int) -> None:
    before = hot_path.run(kind, 0).head()
    assert hot_path.run(kind, 5).head() == before + events


def test_hot_path_refuses_an_unknown_kind() -> None:
    with pytest.raises(SystemExit, match="kind must be one of"):
        hot_path.main(["delete", "1"])
