"""Durable read models on PostgreSQL: exactly-once effect, dead letters, retries, fencing, blue/green."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

import pytest

from eventcore_lab.core.events import StoredEvent
from eventcore_lab.distributed import (
    DurableReadModel,
    PartitionWorker,
    ReadModelError,
    RetryPolicy,
    Sql,
    TableProjection,
    partition_of,
    sql,
)
from eventcore_lab.distributed.demo import ApplicationCounts, FixedApplicationCounts, ScaleOutTick, write
from eventcore_lab.projections import handles
from eventcore_lab.stores.paging import iter_events
from eventcore_lab.stores.postgres import PostgresStore


@pytest.fixture
def store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=4) as s:
        yield s


def expected_streams(store: PostgresStore) -> dict[str, tuple[int, int]]:
    """The reference fold in plain Python: stream -> (events, total)."""
    result: dict[str, tuple[int, int]] = {}
    for event in store.read_all():
        events, total = result.get(event.stream_id, (0, 0))
        result[event.stream_id] = (events + 1, total + event.payload.amount)
    return result


def model_streams(model: DurableReadModel) -> dict[str, tuple[int, int]]:
    frame = model.frame("streams")
    return {r.stream_id: (int(r.events), int(r.total)) for r in frame.itertuples()}


def test_partition_of_is_stable_and_in_range() -> None:
    assert partition_of("tick-1", 8) == partition_of("tick-1", 8)
    seen = Counter(partition_of(f"s-{i}", 8) for i in range(4000))
    assert set(seen) == set(range(8))
    assert min(seen.values()) > 350  # an even enough spread (500 expected per partition)


def test_one_worker_applies_every_event_once_and_matches_plain_fold(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    write(store, events=1500, streams=40)
    with DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=4) as model:
        with PartitionWorker(store, model, batch_size=200) as worker:
            assert worker.run_until_caught_up() == 1500
            assert worker.partitions == [0, 1, 2, 3]
        applications = model.frame("applications")
        assert sorted(applications.position) == [e.position for e in store.read_all()]
        assert set(applications.n) == {1}
        assert model_streams(model) == expected_streams(store)
        assert int(model.frame("streams").out_of_order.sum()) == 0
        assert model.position() == store.head()


def test_a_restarted_worker_continues_from_the_committed_checkpoint(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    write(store, events=600, streams=10)
    with DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=2) as model:
        first = PartitionWorker(store, model, batch_size=100)
        first.refresh()
        first.step()
        first.step()
        first.close()
        assert model.position() == 200
        write(store, events=300, streams=10, seed=1)
        with PartitionWorker(store, model, batch_size=100) as second:
            assert second.run_until_caught_up() == 700
        assert set(model.frame("applications").n) == {1}
        assert model_streams(model) == expected_streams(store)


class Flaky(TableProjection):
    """Fails the first ``failures`` attempts at position 2 (all of them when ``failures`` is None)."""

    name = "flaky"
    tables: ClassVar[dict[str, str]] = {"seen": "position BIGINT PRIMARY KEY"}

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.attempts = 0

    @handles(ScaleOutTick)
    def tick(self, event: StoredEvent) -> Sql:
        if event.position == 2:
            self.attempts += 1
            if self.failures is None or self.attempts <= self.failures:
                raise RuntimeError("not yet")
        return sql("INSERT INTO {seen} VALUES (?)", event.position)


def test_an_event_that_keeps_failing_is_retried_with_backoff_then_dead_lettered(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    write(store, events=3, streams=1)
    waits: list[float] = []
    retry = RetryPolicy(retries=3, backoff=0.5, factor=3.0, max_delay=2.0)
    projection = Flaky(failures=None)
    with DurableReadModel(pg_url, projection, schema=pg_schema, retry=retry, sleep=waits.append) as model:
        with PartitionWorker(store, model) as worker:
            worker.run_until_caught_up()
            assert (worker.applied, worker.dead) == (2, 1)
        assert waits == [0.5, 1.5, 2.0]  # backoff times factor, capped at max_delay
        assert projection.attempts == 1 + 4  # the batch's fast pass, then 1 try + 3 retries
        assert list(model.dead_letters().position) == [2]
        assert sorted(model.frame("seen").position) == [1, 3]


def test_a_transient_failure_is_retried_and_applied(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    write(store, events=3, streams=1)
    waits: list[float] = []
    retry = RetryPolicy(retries=3, backoff=0.5)
    projection = Flaky(failures=2)  # the fast pass and the first careful try fail
    with DurableReadModel(pg_url, projection, schema=pg_schema, retry=retry, sleep=waits.append) as model:
        with PartitionWorker(store, model) as worker:
            worker.run_until_caught_up()
            assert (worker.applied, worker.dead) == (3, 0)
        assert waits == [0.5]
        assert sorted(model.frame("seen").position) == [1, 2, 3]
        assert model.dead_letters().empty


def test_dead_letters_are_kept_listed_and_requeued_once_in_order(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    write(store, events=900, streams=30, poison_every=250)
    retry = RetryPolicy(retries=1, backoff=0.0)
    with DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=3, retry=retry) as model:
        with PartitionWorker(store, model, batch_size=128) as worker:
            worker.run_until_caught_up()
            assert (worker.applied, worker.dead) == (897, 3)
        dead = model.dead_letters()
        assert list(dead.position) == [250, 500, 750]
        assert all("poisoned tick" in e for e in dead.error) and set(dead.attempts) == {2}
        assert model.position() == store.head()  # the checkpoint went past the dead letters

        still_broken = model.requeue(store)  # same fold: fails again, stays dead
        assert still_broken.applied == [] and still_broken.failed == [250, 500, 750]
        assert list(model.dead_letters().attempts) == [4, 4, 4]

        done = model.requeue(store, FixedApplicationCounts())
        assert done.applied == [250, 500, 750] and done.failed == []
        assert model.requeue(store, FixedApplicationCounts()).applied == []  # once each
        applications = model.frame("applications")
        assert len(applications) == 900 and set(applications.n) == {1}
        assert model_streams(model) == expected_streams(store)
        assert model.dead_letters().empty
        assert list(model.dead_letters(status=None).status) == ["applied"] * 3


def test_a_database_error_in_one_event_dead_letters_only_that_event(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    class Strict(TableProjection):
        name = "strict"
        tables: ClassVar[dict[str, str]] = {
            "amounts": "position BIGINT PRIMARY KEY, amount INT CHECK (amount < 95)"
        }

        @handles(ScaleOutTick)
        def tick(self, event: StoredEvent) -> Sql:
            return sql("INSERT INTO {amounts} VALUES (?, ?)", event.position, event.payload.amount)

    write(store, events=400, streams=5)
    big = {e.position for e in store.read_all() if e.payload.amount >= 95}
    assert big  # the seeded amounts include some the CHECK refuses
    retry = RetryPolicy(retries=0)
    with DurableReadModel(pg_url, Strict(), schema=pg_schema, retry=retry) as model:
        with PartitionWorker(store, model, batch_size=100) as worker:
            worker.run_until_caught_up()
        assert set(model.dead_letters().position) == big
        assert set(model.frame("amounts").position) == set(range(1, 401)) - big
        assert all("CheckViolation" in e for e in model.dead_letters().error)


def test_a_slow_worker_that_lost_its_lease_writes_nothing(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    write(store, events=300, streams=20)
    with DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=2) as model:
        slow = PartitionWorker(store, model, lease_seconds=0.2, heartbeat=3600, batch_size=100)
        assert slow.refresh() == [0, 1]
        fast = PartitionWorker(store, model, lease_seconds=30, batch_size=100)
        threading.Event().wait(0.4)  # the slow worker's leases expire without a heartbeat
        assert fast.refresh() == [0, 1]  # taken over, tokens bumped
        assert slow.partitions == [0, 1]  # the slow worker does not know yet
        assert slow.step() == 100  # it reads, but the fence drops every partition
        assert slow.applied == 0 and slow.partitions == []
        fast.run_until_caught_up()
        assert set(model.frame("applications").n) == {1} and len(model.frame("applications")) == 300
        slow.close()
        fast.close()


def test_leader_mode_one_active_one_standing_by(store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    write(store, events=200, streams=10)
    with DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=4) as model:
        leader = PartitionWorker(store, model, leader=True, lease_seconds=0.3)
        standby = PartitionWorker(store, model, leader=True, lease_seconds=0.3)
        assert leader.refresh() == [0, 1, 2, 3]
        assert standby.refresh() == []
        assert standby.step() == 0  # standing by applies nothing
        leader.run_until_caught_up()
        leader.close(release=False)  # dies without giving its leases back
        assert standby.refresh() == []  # not yet expired
        threading.Event().wait(0.4)
        assert standby.refresh() == [0, 1, 2, 3]
        write(store, events=100, streams=10, seed=2)
        assert standby.run_until_caught_up() == 100
        assert len(model.frame("applications")) == 300 and set(model.frame("applications").n) == {1}
        standby.close()


def test_shared_workers_split_the_partitions_fairly(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    with DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=6) as model:
        a = PartitionWorker(store, model, lease_seconds=30)
        b = PartitionWorker(store, model, lease_seconds=30)
        assert a.refresh() == [0, 1, 2, 3, 4, 5]  # alone: everything
        b.refresh()  # b is a member now, but everything is taken
        assert a.refresh() == [0, 1, 2]  # a gives back what is above its share
        assert b.refresh() == [3, 4, 5]
        a.close()
        assert b.refresh() == [0, 1, 2, 3, 4, 5]  # released leases are free at once
        b.close()


def test_a_statement_naming_an_undeclared_table_becomes_a_dead_letter_that_says_so(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    class Typo(TableProjection):
        name = "typo"
        tables: ClassVar[dict[str, str]] = {"seen": "position BIGINT PRIMARY KEY"}

        @handles(ScaleOutTick)
        def tick(self, event: StoredEvent) -> Sql:
            return sql("INSERT INTO {sene} VALUES (?)", event.position)

    write(store, events=2, streams=1)
    with DurableReadModel(pg_url, Typo(), schema=pg_schema, retry=RetryPolicy(retries=0)) as model:
        with PartitionWorker(store, model) as worker:
            worker.run_until_caught_up()
        errors = list(model.dead_letters().error)
        assert len(errors) == 2 and all("names a table that is not declared ('sene')" in e for e in errors)
        assert model.frame("seen").empty


def test_bad_declarations_and_changed_partition_counts_are_refused(pg_url: str, pg_schema: str) -> None:
    class NoTables(TableProjection):
        name = "no_tables"

    class BadName(TableProjection):
        name = "Bad-Name"
        tables: ClassVar[dict[str, str]] = {"t": "x INT"}

    with pytest.raises(ReadModelError, match="declares no tables"):
        DurableReadModel(pg_url, NoTables(), schema=pg_schema)
    with pytest.raises(ReadModelError, match="projection name"):
        DurableReadModel(pg_url, BadName(), schema=pg_schema)
    with pytest.raises(ReadModelError, match="is a table projection"):
        ApplicationCounts().apply(None)  # type: ignore[arg-type]
    DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=4).close()
    with pytest.raises(ReadModelError, match="4 partitions, not 8"):
        DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=8)


class CountsV2(ApplicationCounts):
    """A changed fold: a new version with an extra table."""

    name = "application_counts"
    version = 2
    tables: ClassVar[dict[str, str]] = {
        **ApplicationCounts.tables,
        "totals": "id INT PRIMARY KEY, total BIGINT NOT NULL",
    }

    @handles(ScaleOutTick)
    def tick(self, event: StoredEvent) -> list[Sql]:
        return [
            *super().tick(event),
            sql(
                "INSERT INTO {totals} AS t VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET total = t.total + excluded.total",
                event.payload.amount,
            ),
        ]


REBUILD_EVENTS = int(os.environ.get("EVENTCORE_REBUILD_EVENTS", "3000"))  # 1000000 for the full must-show


@pytest.mark.timeout(max(600, REBUILD_EVENTS // 200))  # the suite's 600 s is too short for 1,000,000
def test_blue_green_rebuild_readers_never_see_a_partial_model(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    write(store, events=REBUILD_EVENTS, streams=50, batch=1000)
    total = sum(e.payload.amount for e in iter_events(store, page_size=5000))  # constant memory at 1M
    with DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=2) as model:
        with PartitionWorker(store, model, batch_size=500) as worker:
            worker.run_until_caught_up(timeout=max(60.0, REBUILD_EVENTS / 500))  # 1M events: ~30 min allowed
        seen: list[tuple[int, int]] = []
        stop = threading.Event()

        def read() -> None:
            reader = DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=2)
            try:
                while not stop.is_set():
                    (row,) = reader.query("SELECT count(*), coalesce(sum(total), 0) FROM {streams}")
                    seen.append((int(row[0]), int(row[1])))
            finally:
                reader.close()

        thread = threading.Thread(target=read)
        thread.start()
        try:
            assert model.rebuild(store, CountsV2(), batch_size=300) == 2
        finally:
            stop.set()
            thread.join()
        assert len(seen) > 1
        assert {s[1] for s in seen} == {total}  # every read saw a complete model, old or new
        assert model.live_generation() == 2
        assert model.query("SELECT total FROM {totals}") == [(total,)]
        # the old fold may no longer write to the rebuilt model
        write(store, events=10, streams=5, seed=3)
        old = PartitionWorker(store, model, ApplicationCounts())
        with pytest.raises(ReadModelError, match="fold version 2"):
            old.run_until_caught_up()
        old.close()
        with PartitionWorker(store, model, CountsV2()) as new:
            assert new.run_until_caught_up() == 10
        applications = model.frame("applications")
        assert set(applications.n) == {1} and len(applications) == REBUILD_EVENTS + 10


def test_a_read_model_on_the_store_borrows_and_returns_its_pooled_connections(
    pg_url: str, pg_schema: str
) -> None:
    # three connections: the model's, one worker's (or a rebuild's), and one for the store's own reads; a
    # connection a closed worker kept would exhaust the pool for the next one
    with PostgresStore(pg_url, schema=pg_schema, pool_max=3, pool_timeout=2) as store:
        write(store, events=300, streams=10)
        with DurableReadModel(store, ApplicationCounts(), partitions=2) as model:
            assert model.names.schema == pg_schema
            for _ in range(2):
                with PartitionWorker(store, model, batch_size=100) as worker:
                    worker.run_until_caught_up()
                write(store, events=50, streams=10, seed=1)
            assert model.rebuild(store) == 2
            assert model_streams(model) == expected_streams(store)
            assert model.position() == store.head() == 400
        with pytest.raises(ReadModelError, match="differs from the store's schema"):
            DurableReadModel(store, ApplicationCounts(), schema="elsewhere")
        assert store.head() == 400  # the store's pool is whole again
