"""The round-2 benchmarks in quick mode (so they never rot), and the workbench widgets on a large
DuckDB store, checked for what they show (never for speed).

``EVENTCORE_WORKBENCH_EVENTS`` sizes the store (default 3,000; the must-show size is 1,000,000:
``EVENTCORE_WORKBENCH_EVENTS=1000000 pytest tests/test_benchmarks_workbench.py -k large -p no:nbval``);
the timings of the same interactions are in ``python -m benchmarks.workbench`` and benchmarks/README.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks import scaling, workbench
from benchmarks.domain import BenchCredited
from benchmarks.ours import make_history
from benchmarks.workbench import Total

EVENTS = int(os.environ.get("EVENTCORE_WORKBENCH_EVENTS", "3000"))


def test_workbench_quick_measures_every_part(tmp_path: Path, pg_url: str) -> None:
    out = tmp_path / "workbench.json"
    assert workbench.main(["--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["simulator_commands_per_s"]) == {"memory", "memory + chaos"}
    assert all(rate > 0 for rate in result["simulator_commands_per_s"].values())
    assert set(result["simulator_direct_commands_per_s"]) == {"memory", "memory + chaos"}
    assert all(rate > 0 for rate in result["simulator_direct_commands_per_s"].values())
    assert result["drawing"]["timeline_svg_s"] > 0
    assert set(result["widgets"]) == {
        "explorer_open_s",
        "explorer_pick_stream_s",
        "explorer_filter_s",
        "slider_open_s",
        "slider_state_at_head_s",
        "slider_move_while_folding_s",
        "slider_move_s",
        "slider_move_max_s",
    }
    assert result["frame"]["events_frame_pg_events_per_s"] > 0


def test_scaling_quick_draws_every_curve(tmp_path: Path, pg_url: str) -> None:
    assert scaling.main(["--quick", "--out", str(tmp_path)]) == 0
    curves = json.loads((tmp_path / "scaling.json").read_text())
    assert set(curves["clients"]) == {"duckdb", "postgres"}
    stores = {"memory", "duckdb", "postgres"}
    assert (
        set(curves["stream"])
        == set(curves["log"])
        == set(curves["log_fill"])
        == set(curves["log_bytes"])
        == set(curves["log_p50_ms"])
        == stores
    )
    assert all(set(curves["log"][store]) == {"1000", "2000"} for store in stores)
    assert all(rate > 0 for kind in curves.values() for points in kind.values() for rate in points.values())
    for name in ("clients", "stream", "log", "log_fill", "log_bytes"):
        assert (tmp_path / f"scaling-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # one curve re-run alone replaces only its own points
    assert scaling.main(["--quick", "--only", "stream", "--backends", "memory", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "scaling.json").read_text())
    assert set(again["stream"]) == {"memory"} and again["log"] == curves["log"]


def test_log_blocks_are_a_valid_log_of_ten_event_streams() -> None:
    from eventcore_lab import MemoryStore
    from eventcore_lab.stores import bulk

    blocks = list(scaling.log_blocks(2 * scaling.BLOCK_STREAMS * scaling.STREAM_EVENTS + 30, "t"))
    assert [b.num_rows for b in blocks] == [scaling.BLOCK_STREAMS * scaling.STREAM_EVENTS] * 2 + [30]
    store = MemoryStore()
    for block in blocks:
        assert block.schema == bulk.ARROW_SCHEMA
        store.import_events(list(bulk.arrow_to_events(block, store.registry)))  # versions follow on
    stream = store.read_stream(scaling.log_stream("t", scaling.BLOCK_STREAMS + 1))
    assert [e.event_type for e in stream] == ["BenchOpened"] + ["BenchCredited"] * 9
    assert [e.version for e in stream] == list(range(1, 11))
    assert store.head() == 2 * scaling.BLOCK_STREAMS * scaling.STREAM_EVENTS + 30


def test_large_duckdb_store_in_the_explorer_and_the_slider(tmp_path: Path) -> None:
    from eventcore_lab.stores.duckdb import DuckDBStore
    from eventcore_lab.widgets.explorer import StreamExplorer
    from eventcore_lab.widgets.slider import TimelineSlider

    history = make_history(EVENTS, max(1, EVENTS // 100))
    chosen = history[1].stream_id
    half = EVENTS // 2
    expected_total = sum(e.payload.amount for e in history[:half] if isinstance(e.payload, BenchCredited))
    expected_stream = [e.event_id for e in history if e.stream_id == chosen]
    with DuckDBStore(tmp_path / "large.duckdb", show_progress=False) as store:
        store.import_events(history, progress=False)
        del history
        explorer = StreamExplorer(store)
        explorer.stream_picker.value = chosen
        assert [e.event_id for e in explorer.events] == expected_stream
        explorer.show(next(s for s in explorer.all_streams if s != chosen))
        explorer.stream_filter.value = chosen  # typed in full: shown, however many streams there are
        assert explorer.stream == chosen and [e.event_id for e in explorer.events] == expected_stream
        slider = TimelineSlider(store, Total)
        slider.slider.value = half
        assert slider.current.amount == expected_total
        assert f"position {half}" in slider.picture.value


def test_the_slider_state_is_the_fold_up_to_the_position_whichever_way_it_moves(tmp_path: Path) -> None:
    """States resume from kept copies every CHECKPOINT_EVENTS events; every move must equal a fresh fold."""
    from eventcore_lab.stores.memory import MemoryStore
    from eventcore_lab.widgets import slider as slider_module
    from eventcore_lab.widgets.slider import TimelineSlider

    history = make_history(3 * slider_module.CHECKPOINT_EVENTS + 17, 50)
    store = MemoryStore()
    store.import_events(history)
    slider = TimelineSlider(store, Total)
    step = slider_module.CHECKPOINT_EVENTS
    for position in (len(history), 5, step, step + 1, 2 * step - 1, 3 * step + 3, 1, 0, step * 2 + 7):
        slider.slider.value = position
        expected = sum(e.payload.amount for e in history[:position] if isinstance(e.payload, BenchCredited))
        assert slider.current.amount == expected, position
    assert slider.current is not slider.current  # a new model each time, never a kept one
