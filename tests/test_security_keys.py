"""Key stores: the same behaviour in memory, in a DuckDB file and in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


class Recording:
    """Lends a PostgresStore's connections (the key store's public seam) and records every statement."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.schema = store.schema
        self.statements: list[str] = []

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self.store.connection() as conn:
            yield _Recorder(conn, self.statements)


class _Recorder:
    """A connection or cursor that records the statements it executes and wraps the cursors it opens."""

    def __init__(self, inner: Any, statements: list[str]) -> None:
        self._inner, self._statements = inner, statements

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        with self._inner.cursor() as cur:
            yield _Recorder(cur, self._statements)

    def execute(self, query: str, params: Any = None) -> Any:
        self._statements.append(query)
        return self._inner.execute(query, params)


def test_a_first_key_skips_the_flush_wait_and_forget_does_not(pg_url: str, pg_schema: str) -> None:
    """A subject's first key commits without waiting for its WAL flush (the first event that uses it
    flushes it); that setting stays in the key's statement: the store's connection, which appends
    events next, still waits; and deleting keys always waits, so a forgotten key cannot come back."""
    with PostgresStore(pg_url, schema=pg_schema, pool_max=1) as events:
        events.migrate()
        seam = Recording(events)
        keys = PostgresKeyStore(seam)
        seam.statements.clear()
        key = keys.ensure_key("c1")
        assert any("'synchronous_commit', 'off', true" in q for q in seam.statements)
        with events.connection() as conn:  # the only pooled connection: the one the key used
            assert conn.execute("show synchronous_commit").fetchone() == ("on",)
        other = PostgresKeyStore(lambda: psycopg.connect(pg_url), pg_schema)
        found = other.get(key.key_id)  # committed: visible to another session at once
        assert found is not None and found.material == key.material
        assert keys.ensure_key("c1").key_id == key.key_id
        seam.statements.clear()
        assert keys.forget("c1") == 1
        assert seam.statements and not any("synchronous_commit" in q for q in seam.statements)
        assert other.get(key.key_id) is None
        other.close()
