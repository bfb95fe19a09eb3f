"""Crypto-shredding on every store: after forget(subject) no plaintext and no key of theirs remains."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from eventcore_lab import Executor, MemoryStore
from eventcore_lab.examples.customers import (
    ChangeEmail,
    CustomerEmailChanged,
    CustomerRegistered,
    RegisterCustomer,
)
from eventcore_lab.projections import Projection, ProjectionRunner, handles
from eventcore_lab.security import (
    REDACTED,
    DuckDBKeyStore,
    MemoryKeyStore,
    PostgresKeyStore,
    ProtectedStore,
    UserDataErased,
)
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

ADA = ("c-ada", "Ada Lovelace", "ada.lovelace@example.com", "ada@analytical.engine")
GRACE = ("c-grace", "Grace Hopper", "grace.hopper@example.com", "grace@cobol.example")


class Directory(Projection):
    """A read model of names and emails by customer id."""

    def __init__(self) -> None:
        self.people: dict[str, dict[str, str]] = {}

    @handles(CustomerRegistered)
    def registered(self, event: Any) -> None:
        p = event.payload
        self.people[p.customer_id] = {"name": p.name, "email": p.email}

    @handles(CustomerEmailChanged)
    def changed(self, event: Any) -> None:
        self.people[event.payload.customer_id]["email"] = event.payload.email


def _fill(store: ProtectedStore) -> None:
    executor = Executor(store)
    for cid, name, email, new_email in (ADA, GRACE):
        executor.execute(
            RegisterCustomer.new(cid, name, email, store.blind_index("email", email)), user="clerk"
        )
        store.rotate_key(cid)  # the change uses a second key: history spans a rotation
        executor.execute(ChangeEmail.new(cid, new_email, store.blind_index("email", new_email)), user=cid)


def _shred_and_check(store: ProtectedStore) -> list[bytes]:
    """The shared part: fill, export, forget Ada, and check reads, projections, exports. Returns the
    material of Ada's destroyed keys, so that callers can look for it in raw files."""
    _fill(store)
    ada_keys = [store.keys.get(k) for k in store.keys.key_ids("c-ada")]
    materials = [k.material for k in ada_keys if k is not None]
    assert len(materials) == 2
    before = store.export_subject("c-ada")
    assert [r["event_type"] for r in before] == ["CustomerRegistered", "CustomerEmailChanged"]
    assert before[0]["payload"]["email"] == ADA[2] and before[1]["payload"]["email"] == ADA[3]
    assert before[1]["user_id"] == "c-ada"

    erased = store.forget("c-ada", user_id="dpo")
    assert isinstance(erased.payload, UserDataErased) and erased.payload.keys_destroyed == 2
    assert erased.stream_id == "erasure-c-ada" and erased.metadata.user_id == "dpo"

    runner = ProjectionRunner(store, Directory())
    runner.run_until_caught_up()
    rebuilt = runner.rebuild()
    assert rebuilt.people["c-ada"] == {"name": REDACTED, "email": REDACTED}
    assert rebuilt.people["c-grace"] == {"name": GRACE[1], "email": GRACE[3]}
    after = store.export_subject("c-ada")
    assert [r["event_type"] for r in after] == [
        "CustomerRegistered",
        "CustomerEmailChanged",
        "UserDataErased",
    ]
    assert all(ADA[1] not in str(r) and ADA[2] not in str(r) and ADA[3] not in str(r) for r in after)
    # A new wrapper (another process, empty cache) sees the same.
    fresh = ProtectedStore(store.inner, store.keys)
    assert {e.payload.email for e in fresh.read_all() if isinstance(e.payload, CustomerRegistered)} == {
        REDACTED,
        GRACE[2],
    }
    # Commands still run on the shredded stream, and Ada can be given new data under a new key.
    Executor(store).execute(ChangeEmail.new("c-ada", "new@example.com", "i"))
    assert store.read_all()[-1].payload.email == "new@example.com"
    assert all(store.keys.get(k.key_id) is None for k in ada_keys if k is not None)
    return materials


def _plaintexts() -> list[bytes]:
    return [v.encode() for v in ADA[1:]]


def test_memory_store_shredding() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    _shred_and_check(store)
    raw = repr(store.inner.read_all()).encode()
    assert not any(p in raw for p in _plaintexts())
    assert len(store.keys.key_ids("c-ada")) == 1  # a new key, only for the data written after


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "shred.duckdb") as store:
        yield store


def test_duckdb_file_holds_no_plaintext_and_no_shredded_key(duck: DuckDBStore, tmp_path: Path) -> None:
    store = ProtectedStore(duck, DuckDBKeyStore(duck))
    secrets = _shred_and_check(store)
    export = tmp_path / "after.jsonl"
    duck.export_events(export)
    with duck.connection() as cur:
        cur.execute("checkpoint")
    data = Path(duck.path).read_bytes() + export.read_bytes()
    for wal in tmp_path.glob("*.wal"):
        data += wal.read_bytes()
    assert not any(p in data for p in _plaintexts())
    assert not any(secret in data for secret in secrets)
    assert GRACE[1].encode() not in data  # nobody's plaintext is stored, shredded or not
    frame = duck.events_frame()
    assert not frame.astype(str).apply(lambda col: col.str.contains("Ada Lovelace")).any().any()


def test_postgres_tables_hold_no_plaintext_after_forget(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=4) as inner:
        inner.migrate()
        keys = PostgresKeyStore(lambda: psycopg.connect(pg_url), pg_schema)
        try:
            store = ProtectedStore(inner, keys)
            _shred_and_check(store)
            assert keys.key_ids("c-ada") != [] and keys.get("missing") is None
            with psycopg.connect(pg_url) as conn:
                tables = conn.execute(
                    "select table_name from information_schema.tables where table_schema = %s", [pg_schema]
                ).fetchall()
                assert ("eventcore_keys",) in tables
                dump = []
                for (table,) in tables:
                    query = sql.SQL("select t::text from {}.{} t").format(
                        sql.Identifier(pg_schema), sql.Identifier(table)
                    )
                    dump += [row[0] for row in conn.execute(query).fetchall()]
            text = "\n".join(dump)
            assert "pd1:" in text  # the events are there, as tokens
            for value in ADA[1:] + GRACE[1:]:
                assert value not in text
        finally:
            keys.close()
