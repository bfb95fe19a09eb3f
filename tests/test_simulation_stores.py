"""The banking workload conserves money on the durable stores too, in every mode they support."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from eventcore_lab import RetryConfig
from eventcore_lab.simulation import (
    balances,
    bank_total,
    banking_workload,
    run_processes,
    run_threads,
    simulate,
)
from eventcore_lab.stores.chaos import ChaosStore
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore
from eventcore_lab.testing import assert_valid_log

RETRY = RetryConfig(max_attempts=10, initial_delay=0.001, max_delay=0.02)


def check_conserved(store: object, result_succeeded: int) -> None:
    events = store.read_all()  # type: ignore[attr-defined]
    assert_valid_log(events)
    assert sum(balances(events).values()) == bank_total(events)
    assert min(balances(events).values()) >= 0
    assert result_succeeded > 0


def workload(commands: int = 300):  # type: ignore[no-untyped-def]
    return banking_workload(clients=50, commands=commands, accounts=10, keys="zipf", seed=9)


@pytest.fixture
def duck() -> Iterator[DuckDBStore]:
    with DuckDBStore() as store:
        yield store


@pytest.fixture
def pg(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=10) as store:
        yield store


def test_duckdb_simulated_with_chaos(duck: DuckDBStore) -> None:
    result = simulate(workload(), ChaosStore(duck, seed=1), retry=RETRY)
    check_conserved(duck, result.summary()["succeeded"])


def test_duckdb_threads(duck: DuckDBStore) -> None:
    result = run_threads(workload(), duck, retry=RETRY)
    check_conserved(duck, result.summary()["succeeded"])
    assert result.summary()["conflicts"] >= 0


def test_postgres_simulated(pg: PostgresStore) -> None:
    result = simulate(workload(150), pg, retry=RETRY)
    check_conserved(pg, result.summary()["succeeded"])


def test_postgres_threads(pg: PostgresStore) -> None:
    result = run_threads(workload(), pg, retry=RETRY)
    check_conserved(pg, result.summary()["succeeded"])


def test_postgres_processes(pg_url: str, pg_schema: str) -> None:
    factory = functools.partial(PostgresStore, pg_url, schema=pg_schema, pool_max=5)
    result = run_processes(workload(), factory, processes=2, retry=RETRY)
    assert result.mode == "processes" and len(result.frame) == 300
    assert set(result.frame["client"]) == set(range(50))
    with factory() as store:
        check_conserved(store, result.summary()["succeeded"])
