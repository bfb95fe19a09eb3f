"""Must-show: a runner with a type filter over many events applies exactly the matching ones, receives
only those from the store, and its checkpoint reaches the head; on every store.

Small in CI; the full size (100,000 events) with ``EVENTCORE_FILTER_EVENTS=100000``:

    EVENTCORE_FILTER_EVENTS=100000 pytest tests/test_filtered_replay.py -q
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _every_store import KINDS, open_store
from psycopg import sql

from eventcore_lab import Event, EventToWrite
from eventcore_lab.core.events import StoredEvent
from eventcore_lab.projections.base import Projection, handles
from eventcore_lab.projections.checkpoints import MemoryCheckpoints
from eventcore_lab.projections.runner import ProjectionRunner
from eventcore_lab.stores.filters import FilteredRead
from eventcore_lab.stores.postgres import PostgresStore
from eventcore_lab.testing.contract import write

SIZE = int(os.environ.get("EVENTCORE_FILTER_EVENTS", "3000"))
MATCH_EVERY = 10  # one event in ten is a Deposited


class Opened(Event):
    registration = "on_first_use"
    event_type = "filtered_replay.Opened"
    owner: str


class Deposited(Event):
    registration = "on_first_use"
    event_type = "filtered_replay.Deposited"
    amount: int


class Viewed(Event):
    registration = "on_first_use"
    event_type = "filtered_replay.Viewed"
    page: str


class Deposits(Projection):
    """Counts how often each event is applied, so a double application shows."""

    def __init__(self) -> None:
        self.applied: Counter[int] = Counter()
        self.total = 0

    @handles(Deposited)
    def _deposited(self, event: StoredEvent) -> None:
        self.applied[event.position] += 1
        self.total += event.payload.amount


class CountingReads:
    """Passes every call through, counting the events the store hands to the runner."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.delivered = 0

    def read_filtered(self, **options: Any) -> FilteredRead:
        read: FilteredRead = self.inner.read_filtered(**options)
        self.delivered += len(read.events)
        return read

    def read_all(self, **options: Any) -> list[StoredEvent]:
        events: list[StoredEvent] = self.inner.read_all(**options)
        self.delivered += len(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _history(start: int, count: int) -> list[EventToWrite]:
    writes = []
    for n in range(start, start + count):
        account = f"account-{n % 97}"
        if n % MATCH_EVERY == 3:
            writes.append(EventToWrite(account, Deposited(amount=n)))
        elif n % MATCH_EVERY == 5:
            writes.append(EventToWrite(account, Opened(owner=f"o{n}")))
        else:
            writes.append(EventToWrite(f"page-{n % 13}", Viewed(page=str(n))))
    return writes


def _load(store: Any, count: int) -> None:
    done = store.head()
    while done < count:
        batch = min(1000, count - done)
        store.append(_history(done, batch))
        done += batch
    store.append([write("page-tail", "not a deposit") for _ in range(3)])  # the head is no match


def _deposits(store: Any) -> list[int]:
    """The reference: every Deposited position, from an unfiltered read in pages."""
    positions, after = [], 0
    while page := store.read_all(after=after, limit=5000):
        positions += [e.position for e in page if e.event_type == "filtered_replay.Deposited"]
        after = page[-1].position
    return positions


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from open_store(request, tmp_path)


def test_a_type_filtered_runner_applies_exactly_the_matches_and_reaches_the_head(store: Any) -> None:
    _load(store, SIZE)
    expected = _deposits(store)
    assert len(expected) == SIZE // MATCH_EVERY
    counting = CountingReads(store)
    checkpoints = MemoryCheckpoints()
    runner = ProjectionRunner(counting, Deposits(), checkpoints=checkpoints, batch_size=500)
    assert runner.event_types == (Deposited,)
    runner.run_until_caught_up()
    projection: Deposits = runner.projection
    assert sorted(projection.applied) == expected  # exactly the matching events...
    assert set(projection.applied.values()) == {1}  # ...each applied once
    assert counting.delivered == len(expected)  # and the store handed over nothing else
    assert runner.position == store.head() == checkpoints.load(runner.name)

    # live: more history whose last events do not match; the checkpoint still follows the head
    _load(store, store.head() + 500)
    runner.start()
    try:
        assert runner.wait_until(store.head(), timeout=30), runner.error
    finally:
        runner.stop()
    assert sorted(projection.applied) == _deposits(store)
    assert set(projection.applied.values()) == {1}
    assert checkpoints.load(runner.name) == store.head()

    # a restart from the checkpoint applies nothing again
    again = ProjectionRunner(store, Deposits(), checkpoints=checkpoints)
    assert again.run_until_caught_up() == 0 and again.position == store.head()


def test_a_filtered_read_never_passes_a_pending_gap_on_postgres(pg_url: str, pg_schema: str) -> None:
    """A filtered reader must not move its position past a write still in flight: that event might
    match. It stops before the gap, and continues once the writer ends."""
    with PostgresStore(pg_url, schema=pg_schema) as store:
        store.migrate()
        with psycopg.connect(pg_url) as slow:
            slow.execute(
                sql.SQL(
                    "SELECT {}.append_events(ARRAY['account-slow'], ARRAY[gen_random_uuid()], "
                    "ARRAY['filtered_replay.Deposited'], ARRAY['{{\"amount\": 1}}'], "
                    "ARRAY['{{\"correlation_id\": \"c\"}}'], '{{}}', '{{}}', '{{}}')"
                ).format(sql.Identifier(pg_schema))
            )
            [fast] = store.append([EventToWrite("account-fast", Deposited(amount=2))])
            assert fast.position == 2
            read = store.read_filtered(event_types=[Deposited])
            assert read.events == [] and read.position == 0
            seen: list[int] = []
            with store.subscribe(event_types=[Deposited]) as sub:
                reader = threading.Thread(target=lambda: seen.extend(_take(sub, 2)))
                reader.start()
                slow.commit()
                reader.join(15)
        assert seen == [1, 2]
        read = store.read_filtered(event_types=[Deposited], categories=["account"])
        assert [e.position for e in read.events] == [1, 2] and read.position == 2


def _take(sub: Any, count: int) -> list[int]:
    got = []
    while len(got) < count:
        event = sub.poll(timeout=10)
        if event is None:
            break
        got.append(event.position)
    return got
