"""Event ids in ``events_frame``: their canonical text, made from their bytes by array operations."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa

from eventcore_lab import EventToWrite, MemoryStore, Metadata
from eventcore_lab.core.ids import new_event_id
from eventcore_lab.examples import banking
from eventcore_lab.projections import events_frame
from eventcore_lab.projections._columns import id_strings, uuid_strings
from eventcore_lab.stores.duckdb import DuckDBStore

IDS = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID(int=0x0123456789ABCDEF << 64)]
IDS += [uuid.uuid4() for _ in range(50)] + [new_event_id() for _ in range(50)]


def test_ids_become_the_text_str_gives_them_whatever_the_arrow_layout() -> None:
    expected = [str(u) for u in IDS]
    column = pa.array([u.bytes for u in IDS], pa.binary())
    assert id_strings(column).tolist() == expected
    assert id_strings(column.cast(pa.binary(16))).tolist() == expected
    assert id_strings(pa.chunked_array([column[:7], column[7:]])).tolist() == expected
    assert id_strings(column.slice(5, 9)).tolist() == expected[5:14]  # an offset into the buffer
    assert uuid_strings(IDS).tolist() == expected
    assert id_strings(pa.array([], pa.binary())).tolist() == uuid_strings([]).tolist() == []


def test_event_ids_are_text_that_joins_the_causation_column(tmp_path: Path) -> None:
    memory = MemoryStore()
    (opened,) = memory.append([EventToWrite("account-a", banking.AccountOpened("ann"))])
    caused = Metadata(correlation_id="c-1", causation_id=str(opened.event_id))
    memory.append([EventToWrite("account-a", banking.MoneyDeposited(5), metadata=caused)])
    with DuckDBStore(tmp_path / "ids.duckdb", show_progress=False) as duck:
        duck.import_events(memory.read_all(), progress=False)
        for store in (memory, duck):
            frame = events_frame(store)
            assert frame["event_id"].tolist() == [str(e.event_id) for e in memory.read_all()]
            assert frame["event_id"].dtype == object
            joined = frame.merge(frame, left_on="causation_id", right_on="event_id", suffixes=("", "_cause"))
            assert joined[["position", "position_cause"]].values.tolist() == [[2, 1]]
