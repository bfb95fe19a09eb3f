"""Backups: full and incremental, restore into every store kind (to a point in time), verify, integrity.

The PostgreSQL round trip is parameterised by size: small in the suite, and at full size with
``EVENTCORE_BACKUP_EVENTS=1000000 pytest tests/test_backup.py -k round_trip -s -p no:nbval`` (about 15
minutes on 2 cores; ``-s`` prints the time of each step).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _ops_helpers import bank_history

from eventcore_lab.backup import (
    BackupError,
    backup,
    chain_content_hash,
    check_integrity,
    restore,
    store_content_hash,
    verify,
)
from eventcore_lab.core.events import EventToWrite, Metadata
from eventcore_lab.core.executor import Executor
from eventcore_lab.examples.banking import MoneyDeposited
from eventcore_lab.stores import MemoryStore
from eventcore_lab.stores.bulk import iter_store
from eventcore_lab.stores.duckdb import DuckDBStore

ROOT = Path(__file__).resolve().parents[1]
SIZE = int(os.environ.get("EVENTCORE_BACKUP_EVENTS", "3000"))


def fill(store: Any, events: int, streams: int = 200, batch: int = 5000) -> None:
    """``events`` deposits spread over ``streams`` streams, appended in batches, with varied metadata."""
    written = 0
    while written < events:
        n = min(batch, events - written)
        store.append(
            [
                EventToWrite(
                    f"account-{(written + i) % streams}",
                    MoneyDeposited(amount=written + i, reference=f"ref {written + i} ünï"),
                    Metadata(
                        correlation_id=f"c{written + i}", user_id="u" if i % 2 else None, custom={"i": i}
                    ),
                )
                for i in range(n)
            ]
        )
        written += n


def same_events(source: Any, target: Any) -> int:
    """Assert both logs hold equal events in the same order (positions may be renumbered)."""
    count = 0
    for a, b in zip(iter_store(source), iter_store(target), strict=True):
        assert (a.event_id, a.stream_id, a.version, a.event_type) == (
            b.event_id,
            b.stream_id,
            b.version,
            b.event_type,
        )
        assert a.payload == b.payload
        assert a.metadata == b.metadata
        assert a.recorded_at == b.recorded_at
        count += 1
    return count


@pytest.fixture
def bank() -> MemoryStore:
    store = MemoryStore()
    bank_history(Executor(store), accounts=6, rounds=5)
    return store


def test_full_and_incremental_backups_restore_into_memory_and_duckdb(
    bank: MemoryStore, tmp_path: Path
) -> None:
    full = backup(bank, tmp_path / "full", events_per_file=17)
    assert full.kind == "full" and full.event_count == bank.head() and len(full.files) > 1
    assert full.first_position == 1 and full.last_position == bank.head()
    bank_history(Executor(bank), accounts=6, rounds=2, open_accounts=False)
    inc = backup(bank, tmp_path / "inc", after=full.last_position)
    assert inc.kind == "incremental" and inc.first_position == full.last_position + 1
    assert verify(tmp_path / "full").ok and verify(tmp_path / "inc").ok
    chain = [tmp_path / "full", tmp_path / "inc"]
    assert chain_content_hash(chain) == store_content_hash(bank)
    for target in (MemoryStore(), DuckDBStore(tmp_path / "copy.duckdb")):
        result = restore(target, chain)
        assert result.events == bank.head() == target.head()
        assert same_events(bank, target) == bank.head()
        assert check_integrity(target).ok
        target.close()


def test_restore_to_a_point_in_time(bank: MemoryStore, tmp_path: Path) -> None:
    backup(bank, tmp_path / "full")
    events = list(iter_store(bank))
    by_position = MemoryStore()
    restore(by_position, tmp_path / "full", until_position=20)
    assert [e.event_id for e in iter_store(by_position)] == [e.event_id for e in events[:20]]
    moment = events[29].recorded_at
    by_time = MemoryStore()
    restore(by_time, tmp_path / "full", until_time=moment)
    expected = [e.event_id for e in events if e.recorded_at <= moment]
    assert [e.event_id for e in iter_store(by_time)] == expected[: len(list(iter_store(by_time)))]
    assert by_time.head() >= 30
    before_all = MemoryStore()
    restore(before_all, tmp_path / "full", until_time=events[0].recorded_at - timedelta(seconds=1))
    assert before_all.head() == 0


def damage(path: Path, line: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))


def test_one_changed_byte_fails_verify_naming_the_file_and_first_bad_event(
    bank: MemoryStore, tmp_path: Path
) -> None:
    backup(bank, tmp_path / "full", events_per_file=20)
    victim = list(iter_store(bank))[26]  # line 7 of the second file
    damage(tmp_path / "full" / "events-000002.jsonl", 7, b'"reference":"', b'"reference":"X')
    report = verify(tmp_path / "full")
    assert not report.ok
    assert "events-000002.jsonl" in report.problem
    assert "line 7" in report.problem and str(victim.event_id) in report.problem
    target = MemoryStore()
    with pytest.raises(BackupError, match=r"events-000002\.jsonl"):
        restore(target, tmp_path / "full")
    assert target.head() == 0  # nothing half-restored
    restore(target, [tmp_path / "full"], until_position=20)  # the intact prefix still restores
    assert target.head() == 20


def test_a_changed_line_hash_names_the_lines_file(bank: MemoryStore, tmp_path: Path) -> None:
    backup(bank, tmp_path / "full")
    path = tmp_path / "full" / "events-000001.lines"
    data = bytearray(path.read_bytes())
    data[33 * 4] = ord("0") if data[33 * 4] != ord("0") else ord("1")  # first hex digit of line 5
    path.write_bytes(bytes(data))
    report = verify(tmp_path / "full")
    assert not report.ok and "events-000001.lines is damaged" in report.problem and "line 5" in report.problem


def test_a_missing_manifest_or_broken_chain_is_refused(bank: MemoryStore, tmp_path: Path) -> None:
    full = backup(bank, tmp_path / "full")
    inc = backup(bank, tmp_path / "inc", after=full.last_position - 5)
    with pytest.raises(BackupError, match="full backup"):
        restore(MemoryStore(), tmp_path / "inc")
    assert inc.event_count == 5
    with pytest.raises(BackupError, match="ends at"):
        restore(MemoryStore(), [tmp_path / "full", tmp_path / "inc"])
    with pytest.raises(BackupError, match="not empty"):
        restore(bank, tmp_path / "full")
    with pytest.raises(BackupError, match=r"no manifest\.json"):
        verify(tmp_path)
    with pytest.raises(BackupError, match="already exists"):
        backup(bank, tmp_path / "full")
    (tmp_path / "full" / "events-000001.jsonl").unlink()
    assert "missing" in (verify(tmp_path / "full").problem or "")


def test_integrity_check_finds_a_broken_version_sequence(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "bad.duckdb"
    store = DuckDBStore(path)
    fill(store, 50, streams=5)
    assert check_integrity(store).ok
    store.close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE events SET version = 99 WHERE position = 13")
    con.execute(
        "UPDATE events SET event_id = (SELECT event_id FROM events WHERE position = 2) WHERE position = 40"
    )
    con.close()
    store = DuckDBStore(path)
    report = check_integrity(store)
    store.close()
    assert not report.ok
    assert any("version 99 at position 13" in p for p in report.problems)
    assert any("used twice" in p and "position 40" in p for p in report.problems)


@pytest.mark.timeout(600 + SIZE // 250)
def test_postgres_round_trip_into_duckdb_and_a_fresh_postgres_schema(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    import psycopg

    from eventcore_lab.stores.postgres import PostgresStore

    source = PostgresStore(pg_url, schema=pg_schema)
    fresh_schema = pg_schema + "_r"
    clock = Stopwatch()
    try:
        fill(source, SIZE)
        clock.lap("fill PostgreSQL")
        manifest = backup(source, tmp_path / "full")
        clock.lap("backup PostgreSQL")
        assert manifest.event_count == SIZE
        assert verify(tmp_path / "full").ok
        clock.lap("verify")
        duck = DuckDBStore(tmp_path / "restored.duckdb")
        assert restore(duck, tmp_path / "full").events == SIZE
        clock.lap("restore into DuckDB")
        assert same_events(source, duck) == SIZE
        clock.lap("compare DuckDB with the source")
        duck.close()
        again = PostgresStore(pg_url, schema=fresh_schema)
        try:
            assert restore(again, tmp_path / "full").events == SIZE
            clock.lap("restore into a fresh PostgreSQL schema")
            assert same_events(source, again) == SIZE
            clock.lap("compare PostgreSQL with the source")
            assert store_content_hash(again) == (manifest.content_hash, SIZE)
        finally:
            again.close()
    finally:
        source.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema}" CASCADE')


class Stopwatch:
    """Prints how long each step took (shown with ``-s``): the figures quoted for the full-size run."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        print(f"{step}: {now - self.last:.1f} s ({SIZE / max(now - self.last, 1e-9):,.0f} events/s)")
        self.last = now


KILLED = textwrap.dedent(
    """
    import sys
    import eventcore_lab.examples.banking
    from eventcore_lab.backup import restore
    from eventcore_lab.stores.postgres import PostgresStore
    store = PostgresStore(sys.argv[1], schema=sys.argv[2])
    print("restoring", flush=True)
    restore(store, sys.argv[3])
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.3, 1.0])
def test_a_restore_killed_by_sigkill_leaves_an_empty_or_complete_target(
    pg_url: str, pg_schema: str, tmp_path: Path, delay: float
) -> None:
    from eventcore_lab.stores.postgres import PostgresStore

    source = MemoryStore()
    fill(source, 40_000)
    manifest = backup(source, tmp_path / "full")
    target_schema = pg_schema
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, pg_url, target_schema, str(tmp_path / "full")],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"restoring"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    target = PostgresStore(pg_url, schema=target_schema)
    try:
        head = target.head()
        if head:  # it finished before the kill: then it must be complete and equal
            assert store_content_hash(target) == (manifest.content_hash, manifest.event_count)
        else:
            assert list(iter_store(target)) == []
            assert restore(target, tmp_path / "full").events == manifest.event_count  # and it can be redone
    finally:
        target.close()
