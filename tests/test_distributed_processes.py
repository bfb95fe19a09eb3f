"""Must-show: worker processes share a projection on PostgreSQL while writers append; one is SIGKILLed.

The size is small in the suite; the full run is one command::

    EVENTCORE_SCALE_EVENTS=1000000 pytest tests/test_distributed_processes.py -s -p no:nbval

The takeover time (SIGKILL to the last of the dead worker's partitions claimed by another worker) is
printed and recorded as a test property.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from eventcore_lab.distributed import DurableReadModel, PartitionWorker
from eventcore_lab.distributed.demo import ApplicationCounts
from eventcore_lab.stores.paging import iter_events
from eventcore_lab.stores.postgres import PostgresStore

ROOT = Path(__file__).resolve().parents[1]
EVENTS = int(os.environ.get("EVENTCORE_SCALE_EVENTS", "4000"))
WRITERS, WORKERS, PARTITIONS, LEASE = 4, 3, 12, 1.0


def demo(role: str, *args: str, pg_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "EVENTCORE_DATABASE_URL": pg_url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "eventcore_lab.distributed.demo", role, *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def owners(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    rows = conn.execute(
        f"SELECT owner, count(*) FROM {schema}.ec_leases WHERE owner IS NOT NULL AND expires_at > now() "
        "GROUP BY owner"
    ).fetchall()
    return {str(o): int(c) for o, c in rows}


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def replay_schema(pg_url: str, pg_schema: str) -> Iterator[str]:
    name = f"{pg_schema}_replay"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.mark.timeout(max(600, EVENTS // 200))  # the suite's 600 s is too short for 1,000,000
def test_three_workers_one_killed_equal_a_single_process_replay(
    pg_url: str, pg_schema: str, replay_schema: str, record_property: pytest.RecordProperty
) -> None:
    store = PostgresStore(pg_url, schema=pg_schema, pool_max=2)
    model = DurableReadModel(pg_url, ApplicationCounts(), schema=pg_schema, partitions=PARTITIONS)
    conn = psycopg.connect(pg_url, autocommit=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        common = ["--store-schema", pg_schema, "--partitions", str(PARTITIONS), "--lease-seconds", str(LEASE)]
        workers = [demo("work", *common, "--owner", f"w{i}", pg_url=pg_url) for i in range(WORKERS)]
        procs += workers
        wait_for(lambda: len(owners(conn, pg_schema)) == WORKERS, 60, "three workers holding partitions")
        share = EVENTS // WRITERS
        writers = [
            demo("write", "--store-schema", pg_schema, "--events", str(share + (i < EVENTS % WRITERS)),
                 "--streams", "500", "--seed", str(i), pg_url=pg_url)
            for i in range(WRITERS)
        ]  # fmt: skip
        procs += writers

        wait_for(lambda: model.position() >= EVENTS // 2, 600, "half of the events applied")
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        victim.wait()

        def taken_over() -> bool:
            held = owners(conn, pg_schema)
            return "w0" not in held and sum(held.values()) == PARTITIONS

        wait_for(taken_over, 60, "the dead worker's partitions taken over")
        takeover = time.monotonic() - killed
        held = owners(conn, pg_schema)
        assert set(held) == {"w1", "w2"} and sum(held.values()) == PARTITIONS

        for writer in writers:
            assert writer.wait(timeout=600) == 0, writer.stderr.read() if writer.stderr else ""
        head = store.head()
        wait_for(lambda: model.position() >= head, 600, "the survivors to reach the head")
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, worker.stderr.read() if worker.stderr else ""

        positions = [e.position for e in iter_events(store, page_size=5000)]  # constant memory at 1M
        assert len(positions) == EVENTS
        applications = model.frame("applications")
        assert sorted(applications.position) == positions  # every event applied ...
        assert set(applications.n) == {1}  # ... and none twice
        streams = model.frame("streams").sort_values("stream_id").reset_index(drop=True)
        assert int(streams.out_of_order.sum()) == 0  # per-stream order kept across the takeover

        with DurableReadModel(pg_url, ApplicationCounts(), schema=replay_schema, partitions=1) as replay:
            with PartitionWorker(store, replay, batch_size=2000) as single:
                single.run_until_caught_up(timeout=600)
            expected = replay.frame("streams").sort_values("stream_id").reset_index(drop=True)
        assert streams.equals(expected)

        record_property("takeover_seconds", round(takeover, 3))
        print(
            f"\n{EVENTS} events, {WORKERS} workers, lease {LEASE} s: takeover after SIGKILL {takeover:.2f} s"
        )
        assert (
            takeover < LEASE + 30
        )  # bounded: a lease plus a heartbeat, with generous slack on a busy machine
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        conn.close()
        model.close()
        store.close()
