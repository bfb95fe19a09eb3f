"""Key stores: the same behaviour in memory, in a DuckDB file and in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from eventcore_lab.security import DuckDBKeyStore, KeyStore, KeyStoreError, MemoryKeyStore, PostgresKeyStore
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore


@pytest.fixture(params=["memory", "duckdb", "postgres", "postgres-store"])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[KeyStore, Any]]:
    """A key store, and a function that opens a second handle on the same keys (another process)."""
    if request.param == "memory":
        store = MemoryKeyStore()
        yield store, lambda: store
    elif request.param == "duckdb":
        with DuckDBStore(tmp_path / "keys.duckdb") as events:
            yield DuckDBKeyStore(events), lambda: DuckDBKeyStore(events)
    elif request.param == "postgres-store":  # on the store's own pool; the second handle by DSN
        url = request.getfixturevalue("pg_url")
        schema = request.getfixturevalue("pg_schema")
        with PostgresStore(url, schema=schema, pool_max=1) as events:
            on_store = PostgresKeyStore(events)
            by_dsn = PostgresKeyStore(lambda: psycopg.connect(url), schema)
            yield on_store, lambda: by_dsn
            on_store.close()  # closes nothing of the store's
            assert events.head() == 0
            by_dsn.close()
    else:
        url = request.getfixturevalue("pg_url")
        schema = request.getfixturevalue("pg_schema")
        opened: list[PostgresKeyStore] = []

        def open_one() -> PostgresKeyStore:
            opened.append(PostgresKeyStore(lambda: psycopg.connect(url), schema))
            return opened[-1]

        yield open_one(), open_one
        for handle in opened:
            handle.close()


def test_rotate_get_forget(keys: tuple[KeyStore, Any]) -> None:
    store, reopen = keys
    assert isinstance(store, KeyStore)
    assert store.active_key("alice") is None and store.key_ids("alice") == []
    first = store.rotate("alice")
    second = store.rotate("alice")
    bob = store.rotate("bob")
    other = reopen()
    active = other.active_key("alice")
    assert active is not None and active.key_id == second.key_id and active.material == second.material
    assert other.key_ids("alice") == [first.key_id, second.key_id]
    found = other.get(first.key_id)
    assert found is not None and found.subject == "alice" and found.material == first.material
    assert len({first.material, second.material, bob.material}) == 3
    assert other.index_key() == store.index_key() and len(store.index_key()) == 32
    assert store.forget("alice") == 2
    assert other.get(first.key_id) is None and other.active_key("alice") is None
    assert store.forget("alice") == 0
    assert other.get(bob.key_id) is not None  # other subjects keep their keys
    made = store.ensure_key("carol")
    assert other.ensure_key("carol").key_id == made.key_id == store.active_key("carol").key_id
    assert other.key_ids("carol") == [made.key_id]
    newer = other.rotate("carol")
    assert store.ensure_key("carol").key_id == newer.key_id
    assert "material=<hidden>" in repr(bob) and bob.material.hex() not in repr(store)


def test_the_index_key_is_not_a_subject() -> None:
    with DuckDBStore(":memory:") as events, pytest.raises(KeyStoreError, match="blind-index key"):
        DuckDBKeyStore(events).forget("")


def test_duckdb_forget_removes_the_key_bytes_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "k.duckdb"
    with DuckDBStore(path) as events:
        keys = DuckDBKeyStore(events)
        key = keys.rotate("alice")
        with events.connection() as cur:
            cur.execute("checkpoint")
        assert key.material in path.read_bytes()  # the check below can fail
        keys.forget("alice")
        assert key.material not in path.read_bytes()


def test_postgres_key_store_refuses_odd_schema_names() -> None:
    with pytest.raises(KeyStoreError, match="plain identifier"):
        PostgresKeyStore(lambda: None, 'x"; drop table y; --')


def test_a_postgres_key_store_on_a_store_takes_the_store_schema(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=1) as events:
        assert PostgresKeyStore(events).schema == pg_schema
        with pytest.raises(KeyStoreError, match="differs from the store's schema"):
            PostgresKeyStore(events, "other_schema")
