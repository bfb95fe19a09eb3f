"""The timeline slider on a long log: the picture counted by the store, states folded from pages of the
log (equal to a plain fold at every position, on and between kept states, on every kind of source),
and the background fold that gets a far state ready."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from benchmarks.domain import BenchCredited
from benchmarks.ours import make_history
from eventcore_lab import MemoryStore
from eventcore_lab.modeling import timeline
from eventcore_lab.modeling._overview import ROWS, Density
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.widgets import TimelineSlider
from eventcore_lab.widgets._folds import CHECKPOINT_EVENTS, Folds, list_reader

STEP = CHECKPOINT_EVENTS
HISTORY = make_history(3 * STEP + 17, 50)  # 50 streams: more than the overview draws as rows


def total(events: list[Any], position: int) -> int:
    """The plain fold: every credit up to ``position``."""
    return sum(
        e.payload.amount for e in events if e.position <= position and isinstance(e.payload, BenchCredited)
    )


class Total:
    def __init__(self) -> None:
        self.amount = 0

    def apply(self, event: Any) -> None:
        if isinstance(event.payload, BenchCredited):
            self.amount += event.payload.amount


def shown(model: Any) -> str:
    return f"total {model.amount}"


@pytest.fixture(params=["memory", "duckdb", "list"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "list":
        yield list(reversed(HISTORY))  # any order: the slider sorts a list by position
        return
    store = (
        MemoryStore()
        if request.param == "memory"
        else DuckDBStore(tmp_path / "s.duckdb", show_progress=False)
    )
    store.import_events(HISTORY)
    yield store
    store.close()


POSITIONS = (len(HISTORY), 5, STEP, STEP + 1, 2 * STEP - 1, 3 * STEP + 3, 1, 0, 2 * STEP + 7, STEP - 1)


def test_every_state_is_the_plain_fold_on_and_between_kept_states(source: Any) -> None:
    slider = TimelineSlider(source, Total, view=shown)
    for position in POSITIONS:
        slider.slider.value = position
        assert slider.current.amount == total(HISTORY, position), position
        assert slider.state_at(position).amount == total(HISTORY, position), position
    assert slider.wait(timeout=60)
    for position in POSITIONS:  # again, now from the states the background fold kept
        slider.slider.value = position
        assert slider.state.value == f"total {total(HISTORY, position)}", position
    assert slider.state_at(len(HISTORY) + 5).amount == total(HISTORY, len(HISTORY))  # up to the head
    assert slider.current is not slider.current  # a new model each time, never a kept one


def test_a_log_with_gaps_between_positions_folds_exactly() -> None:
    """Kept states are every CHECKPOINT_EVENTS events, not positions: gaps change nothing."""
    events = [msgspec.structs.replace(e, position=3 * e.position + e.version % 2) for e in HISTORY]
    head = events[-1].position
    folds = Folds(Total, list_reader(events), head)
    for position in (head, 7, 3 * STEP, 3 * STEP + 1, 6 * STEP + 2, 0, head - 1):
        assert folds.state_at(position).amount == total(events, position), position
    folds.fold_ahead(lambda: None, threading.Event())
    assert folds.done and folds.folded == events[3 * STEP - 1].position
    for position in (head, 7, 3 * STEP + 1, 9 * STEP, 9 * STEP + 40):
        assert folds.state_at(position).amount == total(events, position), position


def test_a_model_that_cannot_be_copied_is_folded_from_the_start() -> None:
    class Locked(Total):
        def __init__(self) -> None:
            super().__init__()
            self.lock = threading.Lock()

    slider = TimelineSlider(HISTORY, Locked, view=shown)
    assert slider.wait(timeout=60)
    assert slider.state.value == f"total {total(HISTORY, len(HISTORY))}"
    for position in POSITIONS:
        slider.slider.value = position
        assert slider.state.value == f"total {total(HISTORY, position)}", position
    assert slider.folds.folded == 0  # nothing kept


class Gate:
    """A projection whose fold stops at ``position`` (``reached`` is set) until ``opened``, or fails
    there."""

    def __init__(self, position: int, *, fail: bool = False) -> None:
        self.position, self.fail = position, fail
        self.reached, self.opened = threading.Event(), threading.Event()

    def factory(self) -> Callable[[], Total]:
        gate = self

        class Gated(Total):
            def apply(self, event: Any) -> None:
                if event.position == gate.position:
                    if gate.fail:
                        raise RuntimeError("the projection failed here")
                    gate.reached.set()
                    assert gate.opened.wait(timeout=60)
                super().apply(event)

        return Gated


def test_a_far_state_is_folded_in_the_background_and_a_near_one_at_once() -> None:
    store = MemoryStore()
    store.import_events(HISTORY)
    gate = Gate(STEP + 5)
    slider = TimelineSlider(store, gate.factory(), view=shown)
    assert "folding the log up to position" in slider.state.value  # the head is 3 pages away
    slider.slider.value = 10  # near the start: folded at once
    assert slider.state.value == f"total {total(HISTORY, 10)}"
    slider.slider.value = 3 * STEP  # past the page the fold is stuck in
    assert f"folding the log up to position {3 * STEP:,}" in slider.state.value
    gate.opened.set()
    assert slider.wait(timeout=60) and slider.folds.done
    assert slider.state.value == f"total {total(HISTORY, 3 * STEP)}"
    assert f"position {3 * STEP}" in slider.picture.value


def test_closing_the_slider_stops_its_background_fold() -> None:
    gate = Gate(STEP + 5)
    slider = TimelineSlider(HISTORY, gate.factory(), view=shown)
    assert gate.reached.wait(timeout=60)  # the fold is in its second page
    slider.close()
    gate.opened.set()
    assert slider.wait(timeout=60)
    assert slider.folds.folded == HISTORY[2 * STEP - 1].position and not slider.folds.done


def test_a_projection_failing_in_the_background_fold_says_so_in_the_pane() -> None:
    slider = TimelineSlider(HISTORY, Gate(STEP + 5, fail=True).factory(), view=shown)
    assert slider.wait(timeout=60)
    assert "folding failed" in slider.state.value and "the projection failed here" in slider.state.value
    slider.slider.value = 10
    assert slider.state.value == f"total {total(HISTORY, 10)}"
    with pytest.raises(RuntimeError, match="failed here"):
        slider.state_at(STEP + 5)


class Reads:
    """A DuckDB store that counts the events read through its protocol (the SQL it runs is not)."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store, self.events = store, 0

    def head(self) -> int:
        return self.store.head()

    def sql(self, query: str, params: Any = None) -> Any:
        return self.store.sql(query, params)

    def read_all(self, **options: Any) -> list[Any]:
        events = self.store.read_all(**options)
        self.events += len(events)
        return events


def test_the_overview_of_a_duckdb_log_is_counted_in_sql_and_draws_the_same_picture(tmp_path: Path) -> None:
    memory = MemoryStore()
    memory.import_events(HISTORY)
    with DuckDBStore(tmp_path / "s.duckdb", show_progress=False) as duck:
        duck.import_events(HISTORY)
        store = Reads(duck)
        for end in (None, 2 * STEP + 3):
            counted, plain = timeline(store, end=end, title="t"), timeline(memory, end=end, title="t")
            assert counted.overview is not None and counted.svg() == plain.svg()
            assert counted.with_marker(STEP).svg() == plain.with_marker(STEP).svg()
            assert repr(counted) == repr(plain) and store.events == 0  # no event read
            assert [e.event_id for e in counted.events] == [e.event_id for e in plain.events]
            store.events = 0
        density = Density.of_store(duck, 2 * STEP + 3, 7)
        assert density == Density.of_events(HISTORY[: 2 * STEP + 3], 7) and density is not None
        assert len(density.shown) == ROWS and density.stream_count == 50
        assert timeline(store, detail_limit=None).overview is None  # every event asked for: read
        assert timeline(store, detail_limit=len(HISTORY)).overview is None and store.events > 0
