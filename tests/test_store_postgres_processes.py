"""PostgreSQL shared by several processes: concurrent banking writers, a tailer, and a killed writer."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from eventcore_lab import Executor, ExpectedVersion, StoredEvent
from eventcore_lab.examples.banking import OpenAccount, account_stream, apply_to_accounts
from eventcore_lab.stores.postgres import PostgresStore
from eventcore_lab.testing.contract import write

ACCOUNTS = 20
OPENING_BALANCE = 1_000

TRANSFER_WORKER = """
import json, random, sys
from eventcore_lab import Executor, RetryConfig, ValidationFailed
from eventcore_lab.examples.banking import TransferMoney, account_stream
from eventcore_lab.stores.postgres import PostgresStore

dsn, schema = sys.argv[1], sys.argv[2]
seed, count, accounts = map(int, sys.argv[3:6])
cache_events = int(sys.argv[6]) if len(sys.argv) > 6 else 0
rng = random.Random(seed)
retry = RetryConfig(max_attempts=100, initial_delay=0.001, max_delay=0.05)
done = refused = attempts = 0
with PostgresStore(dsn, schema=schema, pool_max=2, cache_events=cache_events) as store:
    executor = Executor(store, retry=retry, rng=rng)
    for i in range(count):
        source, target = rng.sample(range(accounts), 2)
        amount = rng.randint(1, 150)
        command = TransferMoney(account_stream(source), account_stream(target), amount, f"{seed}-{i}")
        try:
            attempts += executor.execute(command).attempts
            done += 1
        except ValidationFailed:
            refused += 1
print(json.dumps({"done": done, "refused": refused, "attempts": attempts}))
"""

CRASH_WORKER = """
import sys
from eventcore_lab.stores.postgres import PostgresStore
from eventcore_lab.testing.contract import write

dsn, schema = sys.argv[1], sys.argv[2]
filler = "x" * 20_000
with PostgresStore(dsn, schema=schema, pool_max=1) as store:
    batch = 0
    while True:
        streams = [f"crash-{batch % 5}", f"crash-{(batch + 1) % 5}", "crash-log"]
        store.append([write(s, f"{batch}|{filler}") for s in streams] + [write("crash-log", f"{batch}|end")])
        print(batch, flush=True)
        batch += 1
"""


@pytest.fixture
def pg_store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=4) as store:
        yield store


def spawn(code: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_versions_gap_free(events: list[StoredEvent]) -> None:
    by_stream: dict[str, list[int]] = collections.defaultdict(list)
    for event in events:
        by_stream[event.stream_id].append(event.version)
    for stream_id, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), stream_id


def test_processes_with_stream_caches_writing_the_same_accounts_keep_every_invariant(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    """Each worker serves reads from its cache; the other worker's writes make them stale all the time
    (3 accounts, so most commands race). The version checks must turn every stale read into a retry."""
    accounts = 3
    executor = Executor(pg_store)
    for n in range(accounts):
        executor.execute(OpenAccount(account_stream(n), f"owner {n}", OPENING_BALANCE))
    workers = [spawn(TRANSFER_WORKER, pg_url, pg_schema, seed, 300, accounts, 10_000) for seed in (11, 12)]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))

    everything = pg_store.read_all()
    transfers = sum(report["done"] for report in reports)
    assert transfers > 200
    assert sum(report["attempts"] for report in reports) > transfers  # stale caches were caught, retried
    assert len(everything) == accounts + 2 * transfers
    balances: dict = {}
    for event in everything:
        balances = apply_to_accounts(balances, event)
    assert sum(account.balance for account in balances.values()) == accounts * OPENING_BALANCE
    assert all(account.balance >= 0 for account in balances.values())
    assert_versions_gap_free(everything)


def test_four_processes_of_transfers_conserve_money_and_a_tailer_sees_every_event_once(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    executor = Executor(pg_store)
    for n in range(ACCOUNTS):
        executor.execute(OpenAccount(account_stream(n), f"owner {n}", OPENING_BALANCE))

    seen: list[StoredEvent] = []
    target: list[int] = []
    deadline = time.monotonic() + 120

    def tail() -> None:
        with pg_store.subscribe(after=0, batch_size=64) as subscription:
            while time.monotonic() < deadline:
                event = subscription.poll(timeout=0.5)
                if event is not None:
                    seen.append(event)
                elif target and len(seen) >= target[0]:
                    return

    tailer = threading.Thread(target=tail)
    tailer.start()
    workers = [spawn(TRANSFER_WORKER, pg_url, pg_schema, seed, 500, ACCOUNTS) for seed in range(4)]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    target.append(pg_store.head())
    tailer.join(timeout=60)
    assert not tailer.is_alive()

    everything = pg_store.read_all()
    transfers = sum(report["done"] for report in reports)
    assert sum(report["done"] + report["refused"] for report in reports) == 4 * 500
    assert transfers > 1000  # most transfers go through; the rest were refused for lack of funds
    assert len(everything) == ACCOUNTS + 2 * transfers
    assert [e.position for e in everything] == list(range(1, len(everything) + 1))

    accounts: dict = {}
    for event in everything:
        accounts = apply_to_accounts(accounts, event)
    assert sum(account.balance for account in accounts.values()) == ACCOUNTS * OPENING_BALANCE
    assert all(account.balance >= 0 for account in accounts.values())
    assert_versions_gap_free(everything)
    for n in range(ACCOUNTS):
        assert pg_store.stream_version(account_stream(n)) == len(pg_store.read_stream(account_stream(n)))

    assert [e.position for e in seen] == [e.position for e in everything]  # each once, in order
    assert [e.event_id for e in seen] == [e.event_id for e in everything]


def test_a_writer_killed_mid_stream_leaves_no_partial_append(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    pg_store.migrate()
    worker = spawn(CRASH_WORKER, pg_url, pg_schema)
    acknowledged = -1
    assert worker.stdout is not None
    try:
        for line in worker.stdout:
            acknowledged = int(line)
            if acknowledged >= 30:
                break
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=30)
        worker.stdout.close()
        assert worker.stderr is not None
        worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL and acknowledged >= 30

    def complete_batches() -> dict[str, int]:
        batches: collections.Counter[str] = collections.Counter()
        for event in pg_store.read_all():
            batches[event.payload.text.split("|")[0]] += 1
        return dict(batches)

    # The killed client's server session may still be finishing its last append: wait until it is gone.
    deadline = time.monotonic() + 30
    while pg_store.wait_for_events(pg_store.head(), timeout=0.3) and time.monotonic() < deadline:
        pass
    batches = complete_batches()
    assert all(count == 4 for count in batches.values()), batches  # every append whole or absent
    assert set(range(acknowledged + 1)) <= {int(b) for b in batches}  # acknowledged appends are durable
    assert len(batches) <= acknowledged + 2  # at most the one in flight committed unacknowledged
    everything = pg_store.read_all()
    assert_versions_gap_free(everything)
    positions = [e.position for e in everything]
    assert positions == sorted(set(positions))

    # The store works afterwards: no stream stays locked, versions continue.
    versions = {s: pg_store.stream_version(s) for s in ("crash-0", "crash-log")}
    after = pg_store.append(
        [write("crash-0", "after|"), write("crash-log", "after|")],
        {s: ExpectedVersion.exact(v) for s, v in versions.items()},
    )
    assert [e.version for e in after] == [versions["crash-0"] + 1, versions["crash-log"] + 1]
