"""DuckDB store beyond the contract: threads, crashes, second writers, hostile input, analytics."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from eventcore_lab import (
    Event,
    EventToWrite,
    Executor,
    ExpectedVersion,
    MemoryStore,
    RetryConfig,
    ValidationFailed,
)
from eventcore_lab.core.errors import InvalidFormat, MigrationError
from eventcore_lab.errors import ConnectionFailed, StoreError, TransactionError
from eventcore_lab.examples.banking import OpenAccount, TransferMoney, account_stream, apply_to_accounts
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.testing.contract import StoreContract, note, write

PYTHON = sys.executable


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.duckdb"


@pytest.fixture
def store(path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(path) as store:
        yield store


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout
    )


def assert_gap_free(store: Any) -> None:
    everything = store.read_all()
    assert [e.position for e in everything] == list(range(1, store.head() + 1))
    streams: dict[str, list[int]] = {}
    for event in everything:
        streams.setdefault(event.stream_id, []).append(event.version)
    for stream_id, versions in streams.items():
        assert versions == list(range(1, len(versions) + 1)), stream_id
        assert store.stream_version(stream_id) == len(versions)


class TestDuckDBSmallCacheContract(StoreContract):
    """With caches of a few events, reads go to DuckDB: the contract must hold all the same."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[DuckDBStore]:
        with DuckDBStore(tmp_path / "small.duckdb", cache_events=2, tail_events=3) as store:
            yield store


# -- concurrency ------------------------------------------------------------------------------------------


def test_banking_transfers_from_four_threads(path: Path) -> None:
    accounts = [account_stream(i) for i in range(20)]
    store = DuckDBStore(path, tail_events=200)  # small tail: the subscriber also reads from DuckDB
    executor = Executor(store, retry=RetryConfig(max_attempts=200, initial_delay=0.001, max_delay=0.01))
    for account in accounts:
        executor.execute(OpenAccount(account, owner=account, initial_balance=1_000))
    seen: list[int] = []
    stop = threading.Event()

    def subscriber() -> None:
        with store.subscribe(after=0, batch_size=50) as subscription:
            while not (stop.is_set() and subscription.position >= store.head()):
                event = subscription.poll(timeout=0.1)
                if event is not None:
                    seen.append(event.position)

    def client(seed: int, refused: list[int]) -> None:
        rng = random.Random(seed)
        for _ in range(500):
            source, target = rng.sample(accounts, 2)
            try:
                executor.execute(TransferMoney(source, target, amount=rng.randint(1, 300)))
            except ValidationFailed:
                refused.append(1)  # insufficient funds: a legitimate refusal, nothing written

    reader = threading.Thread(target=subscriber)
    reader.start()
    refusals: list[list[int]] = [[] for _ in range(4)]
    clients = [threading.Thread(target=client, args=(seed, refusals[seed])) for seed in range(4)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    stop.set()
    reader.join(timeout=60)
    assert not reader.is_alive()

    transfers = sum(e.event_type == "MoneyTransferred" for e in store.read_all()) // 2
    assert transfers + sum(len(r) for r in refusals) == 2000
    assert transfers > 1000
    assert seen == list(range(1, store.head() + 1))  # every event once, in position order
    store.close()

    with DuckDBStore(path) as again:  # and it all survives a reopen
        balances: dict[str, Any] = {}
        for event in again.read_all():
            apply_to_accounts(balances, event)
        assert sum(account.balance for account in balances.values()) == 20 * 1_000
        assert all(account.balance >= 0 for account in balances.values())
        assert_gap_free(again)


def test_a_failed_group_commit_fails_its_appends_and_the_store_recovers(path: Path) -> None:
    disk_full = threading.Event()

    def commit_hook(rows: int) -> None:  # the disk fills up under the writer's next commits
        if disk_full.is_set():
            raise duckdb.IOException("disk full (simulated)")

    store = DuckDBStore(path, commit_hook=commit_hook)
    store.append([write("before", "1")])
    disk_full.set()
    with pytest.raises(TransactionError, match="disk full") as error:
        store.append([write("lost", "x"), write("before", "2")])
    assert error.value.retriable
    assert store.stream_version("lost") == 0 and store.stream_version("before") == 1
    disk_full.clear()
    [event] = store.append([write("before", "2")], {"before": ExpectedVersion.exact(1)})
    assert (event.version, event.position) == (2, 2)
    assert [e.stream_id for e in store.read_all()] == ["before", "before"]
    store.close()


# -- crash safety -----------------------------------------------------------------------------------------

CRASHING_WRITER = """
import sys, threading
from eventcore_lab import EventToWrite
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.testing.contract import note

store = DuckDBStore(sys.argv[1])
counter = iter(range(10**9))
lock = threading.Lock()

def writer():
    while True:
        with lock:
            n = next(counter)
        streams = [f"a-{n % 5}", f"b-{n % 7}", "shared"]
        store.append([EventToWrite(s, note(f"batch-{n}", number=n)) for s in streams])
        if n == 300:
            print("running", flush=True)

for _ in range(4):
    threading.Thread(target=writer, daemon=True).start()
threading.Event().wait()
"""


def test_writer_killed_mid_stream_leaves_no_partial_append(path: Path) -> None:
    child = subprocess.Popen([PYTHON, "-c", CRASHING_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "running"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with DuckDBStore(path) as store:
        events = store.read_all()
        assert len(events) > 300
        by_batch: dict[int, list[str]] = {}
        for event in events:
            by_batch.setdefault(event.payload.number, []).append(event.stream_id)
        assert all(len(streams) == 3 for streams in by_batch.values())  # whole appends only
        assert_gap_free(store)
        head = store.head()
        version = store.stream_version("shared")
        store.append([write("shared", "after the crash")], {"shared": ExpectedVersion.exact(version)})
        assert store.head() == head + 1
    with DuckDBStore(path) as again:
        assert again.stream_version("shared") == version + 1


# -- one writing process ----------------------------------------------------------------------------------

OPEN_FOR_WRITING = """
import sys
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.errors import ConnectionFailed
try:
    DuckDBStore(sys.argv[1])
except ConnectionFailed as exc:
    print(type(exc).__name__, exc.code, exc.retriable)
    print(exc.message)
"""


def test_second_writer_process_gets_a_clear_error(store: DuckDBStore, path: Path) -> None:
    store.append([write("s", "held")])
    result = run_python(OPEN_FOR_WRITING, str(path))
    first, message = result.stdout.splitlines()[:2]
    assert first == "ConnectionFailed ES002 False"
    assert str(path) in message and f"PID {os.getpid()}" in message and "single writing process" in message


def test_second_store_on_the_same_file_in_one_process_is_refused(store: DuckDBStore, path: Path) -> None:
    with pytest.raises(ConnectionFailed, match="already open for writing"):
        DuckDBStore(path)
    store.close()
    with DuckDBStore(path) as again:  # closing released the file
        assert again.head() == 0


READ_ONLY_ANALYSIS = """
import sys
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.testing.contract import write
from eventcore_lab.errors import TransactionError
with DuckDBStore(sys.argv[1], read_only=True) as store:
    print(store.head(), store.stream_version("s"), [e.payload.text for e in store.read_stream("s")])
    print(store.sql("select count(*) as n from events")["n"].iloc[0])
    try:
        store.append([write("s", "nope")])
    except TransactionError as exc:
        print("refused", "read-only" in exc.message)
"""


def test_read_only_opening_for_analysis(path: Path) -> None:
    with DuckDBStore(path) as store:
        store.append([write("s", "a"), write("s", "b")])
    lines = run_python(READ_ONLY_ANALYSIS, str(path)).stdout.splitlines()
    assert lines == ["2 2 ['a', 'b']", "2", "refused True"]


def test_read_only_needs_an_existing_event_store(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFailed, match="does not exist"):
        DuckDBStore(tmp_path / "missing.duckdb", read_only=True)
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    with pytest.raises(MigrationError, match="no eventcore-lab event store"):
        DuckDBStore(other, read_only=True)


def test_newer_schema_is_refused(path: Path) -> None:
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("insert into eventcore_schema values (99, now())")
    con.close()
    with pytest.raises(MigrationError, match="schema version 99"):
        DuckDBStore(path)
    con = duckdb.connect(str(path))  # the failed open released the file
    con.execute("delete from eventcore_schema where version = 99")
    con.close()
    with DuckDBStore(path) as store:
        assert store.head() == 0


# -- hostile input ----------------------------------------------------------------------------------------


class DropTables(Event):
    event_type = '\'; DROP TABLE events; --\x00"quoted"'
    text: str


HOSTILE_IDS = [
    "'; DROP TABLE events; --",
    "x'); DELETE FROM events; SELECT ('",
    'double "quoted" id',
    "€" * 255,
    "𝄞" * 255,
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_hostile_stream_ids_are_stored_verbatim_and_never_executed(path: Path, hostile: str) -> None:
    with DuckDBStore(path) as store:
        store.append([write("victim", "safe")])
        store.append([write(hostile, "1"), EventToWrite(hostile, DropTables(text="2"))])
    with DuckDBStore(path) as store:  # read back from the file, not from a cache
        assert [e.payload for e in store.read_stream(hostile)] == [note("1"), DropTables(text="2")]
        assert store.read_stream(hostile)[1].event_type == DropTables.event_type
        assert store.stream_version("victim") == 1 and store.head() == 3
        frame = store.events_frame(stream_ids=[hostile])
        assert list(frame["stream_id"]) == [hostile, hostile]
        assert (
            store.sql("select count(*) as n from events where event_type = ?", [DropTables.event_type])[
                "n"
            ].iloc[0]
            == 1
        )


def test_nul_bytes_in_ids_are_refused_and_change_nothing(store: DuckDBStore) -> None:
    store.append([write("ok", "1")])
    with pytest.raises(InvalidFormat, match="control character"):
        store.append([write("ok", "2"), write("evil\x00; DROP TABLE events", "3")])
    assert store.head() == 1 and store.stream_version("ok") == 1
    store.append([write("ok", "2")])
    assert store.stream_version("ok") == 2


def test_failed_appends_leave_the_store_working(store: DuckDBStore) -> None:
    from eventcore_lab.core.errors import SerializationError, TooLong
    from eventcore_lab.testing.contract import Unserializable

    with pytest.raises(TooLong, match="limit"):
        store.append([write("s", "x"), EventToWrite("s", note("y" * (2 << 20)))])
    with pytest.raises(SerializationError):
        store.append([EventToWrite("s", Unserializable(value=object()))])
    assert store.head() == 0
    store.append([write("s", "fine")])
    assert [e.payload.text for e in store.read_all()] == ["fine"]


# -- analytics and checkpoints -----------------------------------------------------------------------------


def test_sql_is_read_only(store: DuckDBStore) -> None:
    store.append([write("a", "1"), write("b", "2"), write("a", "3")])
    counts = store.sql("select stream_id, count(*) as n from events group by 1 order by 1")
    assert counts.to_dict("records") == [{"stream_id": "a", "n": 2}, {"stream_id": "b", "n": 1}]
    with pytest.raises(InvalidFormat, match="DELETE"):
        store.sql("delete from events")
    with pytest.raises(InvalidFormat, match="exactly one statement"):
        store.sql("select 1; drop table events")
    with pytest.raises(InvalidFormat, match="cannot parse"):
        store.sql("selec nothing")
    assert store.head() == 3 and len(store.read_all()) == 3


def test_events_frame_filters_in_sql(store: DuckDBStore) -> None:
    store.append([write("a", "1"), write("b", "2"), EventToWrite("a", DropTables(text="3"))])
    frame = store.events_frame(after=1, stream_ids=["a"])
    assert list(frame["position"]) == [3] and list(frame["event_type"]) == [DropTables.event_type]
    assert '"text":"3"' in frame["payload"].iloc[0]
    assert list(store.events_frame(until=2)["stream_id"]) == ["a", "b"]
    assert len(store.events_frame(event_types=["eventcore.contract.Note"])) == 2


def test_checkpoints_persist(path: Path) -> None:
    with DuckDBStore(path) as store:
        assert store.checkpoint_load("balances") == 0
        store.checkpoint_save("balances", 7)
        store.checkpoint_save("balances", 9)
        store.checkpoint_save("other", 1)
        with pytest.raises(InvalidFormat):
            store.checkpoint_save("bad", -1)
    with DuckDBStore(path) as store:
        assert store.checkpoint_load("balances") == 9
        assert list(store.checkpoints()["name"]) == ["balances", "other"]
        with store.connection() as con:
            con.execute("create table my_projection as select stream_id, count(*) n from events group by 1")
        assert store.sql("select count(*) as n from my_projection")["n"].iloc[0] == 0


def test_closed_store_refuses_work(path: Path) -> None:
    store = DuckDBStore(path)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.append([write("s", "late")])
    with pytest.raises(StoreError, match="closed"):
        store.sql("select 1")


# -- cache behaviour ---------------------------------------------------------------------------------------


def test_stream_cache_stays_consistent_under_eviction(path: Path) -> None:
    """Interleave reads and writes over more streams than the cache holds; compare with MemoryStore."""
    reference = MemoryStore()
    rng = random.Random(5)
    with DuckDBStore(path, cache_events=5, tail_events=4) as store:
        for step in range(200):
            stream_id = f"s-{rng.randrange(12)}"
            if rng.random() < 0.5:
                for target in (store, reference):
                    target.append([write(stream_id, str(step))])
            got = store.read_streams([stream_id, f"s-{rng.randrange(12)}"])
            want = reference.read_streams(got.versions)
            assert [(e.stream_id, e.version, e.payload) for e in got.events] == [
                (e.stream_id, e.version, e.payload) for e in want.events
            ]
            assert got.versions == want.versions
        after = rng.randrange(store.head())
        assert [e.payload for e in store.read_all(after=after, limit=7)] == [
            e.payload for e in reference.read_all(after=after, limit=7)
        ]


# -- bulk and group-commit paths ----------------------------------------------------------------------------


def test_a_parquet_file_changed_after_its_check_is_refused(
    store: DuckDBStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = DuckDBStore(tmp_path / "source.duckdb")
    source.append([write(f"s-{i % 3}", str(i)) for i in range(9)])
    path = tmp_path / "events.parquet"
    source.export_events(path)
    source.close()
    real = DuckDBStore._check_parquet

    def check_then_change(self: DuckDBStore, con: Any, parquet: Any) -> Any:
        result = real(self, con, parquet)
        os.utime(path, ns=(0, 0))  # another writer replaces the file between check and insert
        return result

    monkeypatch.setattr(DuckDBStore, "_check_parquet", check_then_change)
    with pytest.raises(InvalidFormat, match="changed while it was being imported"):
        store.import_file(path)
    assert store.head() == 0 and store.stream_version("s-0") == 0
    monkeypatch.setattr(DuckDBStore, "_check_parquet", real)
    assert store.import_file(path) == 9
    assert [e.version for e in store.read_stream("s-1")] == [1, 2, 3]


def test_many_threads_share_group_commits_and_every_append_is_durable(tmp_path: Path) -> None:
    path = tmp_path / "groups.duckdb"
    sizes: list[int] = []
    store = DuckDBStore(path, commit_hook=sizes.append)  # the rows of each commit

    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            for i in range(25):
                [event] = store.append([write(f"c-{n}", f"{i}")], {f"c-{n}": ExpectedVersion.exact(i)})
                assert store.read_all(after=event.position - 1, limit=1)[0].event_id == event.event_id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(sizes) == 200 and max(sizes) > 1  # appends were grouped
    store.close()
    with DuckDBStore(path) as again:
        assert again.head() == 200
        assert all(again.stream_version(f"c-{n}") == 25 for n in range(8))
