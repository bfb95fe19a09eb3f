"""Key stores: one AES-256 key per data subject (rotatable), plus one key for blind indexes.

A key store is the only place key material lives. Deleting a subject's keys is what makes its data
unreadable everywhere at once (crypto-shredding), so keys are kept apart from the events: in memory next
to a MemoryStore, in a separate table of the event store's own database for DuckDB and PostgreSQL, or in
a KMS/Vault through the :class:`KeyStore` protocol. No class here prints key material: reprs, errors and
log lines name key ids only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, runtime_checkable

from ._errors import KeyStoreError

KEY_BYTES = 32  # AES-256
INDEX_SUBJECT = ""  # the row holding the blind-index key; subjects are non-empty


class SubjectKey:
    """A key of one subject. The material is deliberately absent from ``repr`` and ``str``."""

    __slots__ = ("_cipher", "_material", "key_id", "subject")

    def __init__(self, key_id: str, subject: str, material: bytes) -> None:
        if len(material) != KEY_BYTES:
            raise KeyStoreError(f"key {key_id} has {len(material)} bytes; AES-256 needs {KEY_BYTES}")
        self.key_id = key_id
        self.subject = subject
        self._material = bytes(material)
        self._cipher: Any = None  # the AES-GCM object, made once per key by the crypto module

    @property
    def material(self) -> bytes:
        return self._material

    def __repr__(self) -> str:
        return f"SubjectKey(key_id={self.key_id!r}, subject={self.subject!r}, material=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("SubjectKey cannot be pickled: keys must stay in their key store")


def new_key(subject: str) -> SubjectKey:
    """A fresh key for ``subject``: a 128-bit random id as 32 hex digits (the shape of a uuid4 hex, at
    a fraction of ``uuid4``'s cost) and 256 random bits of material, both from one call to the OS's
    random source (48 bytes; a call costs more than splitting them), so neither tells anything of the
    other."""
    raw = os.urandom(16 + KEY_BYTES)
    return SubjectKey(raw[:16].hex(), subject, raw[16:])


@runtime_checkable
class KeyStore(Protocol):
    """Where subject keys live. Implement it over a KMS or Vault to keep keys out of the database.

    ``active_key`` is the key new data of the subject is encrypted with (None before the first);
    ``rotate`` makes a new active key while older ones still decrypt history; ``get`` finds any
    key by id (None once forgotten); ``forget`` destroys every key of the subject and returns how many.
    """

    def active_key(self, subject: str) -> SubjectKey | None: ...

    def ensure_key(self, subject: str) -> SubjectKey:
        """The active key, created first if the subject has none (one round trip where possible)."""
        ...

    def rotate(self, subject: str) -> SubjectKey: ...

    def get(self, key_id: str) -> SubjectKey | None: ...

    def forget(self, subject: str) -> int: ...

    def key_ids(self, subject: str) -> list[str]: ...

    def index_key(self) -> bytes: ...


class MemoryKeyStore:
    """Keys in a dict: the companion of MemoryStore, and the reference for the others."""

    def __init__(self) -> None:
        self._keys: dict[str, SubjectKey] = {}
        self._by_subject: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._index = os.urandom(KEY_BYTES)

    def __repr__(self) -> str:
        return f"<MemoryKeyStore {len(self._by_subject)} subjects>"

    def active_key(self, subject: str) -> SubjectKey | None:
        ids = self._by_subject.get(subject)
        return self._keys[ids[-1]] if ids else None

    def ensure_key(self, subject: str) -> SubjectKey:
        with self._lock:
            key = self.active_key(subject)
            if key is None:
                key = new_key(subject)
                self._keys[key.key_id] = key
                self._by_subject[subject] = [key.key_id]
        return key

    def rotate(self, subject: str) -> SubjectKey:
        key = new_key(subject)
        with self._lock:
            self._keys[key.key_id] = key
            self._by_subject.setdefault(subject, []).append(key.key_id)
        return key

    def get(self, key_id: str) -> SubjectKey | None:
        return self._keys.get(key_id)

    def forget(self, subject: str) -> int:
        with self._lock:
            ids = self._by_subject.pop(subject, [])
            for key_id in ids:
                del self._keys[key_id]
        return len(ids)

    def key_ids(self, subject: str) -> list[str]:
        return list(self._by_subject.get(subject, ()))

    def index_key(self) -> bytes:
        return self._index


class _SQLKeyStore:
    """The key table, written once for DuckDB and PostgreSQL (they differ in placeholders and connections).

    ``generation`` orders a subject's keys; the highest is the active one.
    """

    _placeholder = "?"

    def _cursor(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _table(self) -> str:
        return "eventcore_keys"

    def _sql(self, text: str) -> str:
        return text.replace("{t}", self._table()).replace("?", self._placeholder)

    def _create(self) -> None:
        with self._cursor() as cur:
            cur.execute(
                self._sql(
                    "create table if not exists {t} (key_id varchar primary key, subject varchar not null, "
                    "generation integer not null, material bytea not null, unique (subject, generation))"
                ).replace("bytea", self._blob_type)
            )

    _blob_type = "blob"

    def _one(self, query: str, params: list[Any]) -> tuple[Any, ...] | None:
        with self._cursor() as cur:
            cur.execute(self._sql(query), params)
            row = cur.fetchone()
        return tuple(row) if row is not None else None

    def active_key(self, subject: str) -> SubjectKey | None:
        row = self._one(
            "select key_id, material from {t} where subject = ? order by generation desc limit 1", [subject]
        )
        return SubjectKey(row[0], subject, bytes(row[1])) if row else None

    def ensure_key(self, subject: str) -> SubjectKey:
        key = self.active_key(subject)
        return key if key is not None else self.rotate(subject)

    def rotate(self, subject: str) -> SubjectKey:
        key = new_key(subject)
        for _ in range(5):  # another process may take the same generation: take the next one
            try:
                with self._cursor() as cur:
                    cur.execute(
                        self._sql(
                            "insert into {t} select ?, ?, coalesce(max(generation), 0) + 1, ? "
                            "from {t} where subject = ?"
                        ),
                        [key.key_id, subject, key.material, subject],
                    )
                return key
            except Exception as exc:
                error: Exception = exc
        raise KeyStoreError(f"could not create a key for subject {subject!r}: {type(error).__name__}")

    def get(self, key_id: str) -> SubjectKey | None:
        row = self._one("select subject, material from {t} where key_id = ?", [key_id])
        return SubjectKey(key_id, row[0], bytes(row[1])) if row else None

    def key_ids(self, subject: str) -> list[str]:
        with self._cursor() as cur:
            cur.execute(self._sql("select key_id from {t} where subject = ? order by generation"), [subject])
            return [r[0] for r in cur.fetchall()]

    def _atomic(self) -> AbstractContextManager[Any]:
        return self._cursor()

    def forget(self, subject: str) -> int:
        if subject == INDEX_SUBJECT:
            raise KeyStoreError("the blind-index key is not a subject's key and cannot be forgotten")
        with self._atomic() as cur:
            cur.execute(self._sql("select count(*) from {t} where subject = ?"), [subject])
            count = int(cur.fetchone()[0])
            # Overwrite before deleting, so the old bytes do not linger in a freed page of the file.
            cur.execute(
                self._sql("update {t} set material = ? where subject = ?"), [bytes(KEY_BYTES), subject]
            )
            cur.execute(self._sql("delete from {t} where subject = ?"), [subject])
        self._after_forget()
        return count

    def _after_forget(self) -> None:
        pass

    def index_key(self) -> bytes:
        key = self.active_key(INDEX_SUBJECT)
        if key is None:
            key = self.rotate(INDEX_SUBJECT)
            key = self.active_key(INDEX_SUBJECT) or key  # a concurrent creator wins: use the stored one
        return key.material


class DuckDBKeyStore(_SQLKeyStore):
    """Keys in the table ``eventcore_keys`` of a DuckDBStore's own file, through its ``connection()``."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._create()

    def __repr__(self) -> str:
        return f"<DuckDBKeyStore of {self._store!r}>"

    def _cursor(self) -> AbstractContextManager[Any]:
        return self._store.connection()

    def _after_forget(self) -> None:
        # A checkpoint writes the overwritten and deleted rows out of the WAL into the file now.
        with self._cursor() as cur:
            cur.execute("checkpoint")


class _LendsConnections(Protocol):
    """What PostgresKeyStore needs of a PostgresStore (kept structural: security does not import psycopg)."""

    schema: str

    def connection(self) -> AbstractContextManager[Any]: ...


class PostgresKeyStore(_SQLKeyStore):
    """Keys in ``<schema>.eventcore_keys`` of a PostgreSQL database.

    Give it the PostgresStore itself (``PostgresKeyStore(store)``: it borrows the store's pooled
    connections per call and uses its schema), or a connection factory (e.g.
    ``lambda: psycopg.connect(dsn)``) and a schema, for use apart from a store; then one connection is
    opened lazily and reused under a lock.
    """

    _placeholder = "%s"
    _blob_type = "bytea"

    def __init__(self, connect: Callable[[], Any] | _LendsConnections, schema: str | None = None) -> None:
        store = connect if hasattr(connect, "connection") and hasattr(connect, "schema") else None
        if store is not None:
            if schema is not None and schema != store.schema:
                raise KeyStoreError(f"schema {schema!r} differs from the store's schema {store.schema!r}")
            schema = store.schema
        if not schema or not schema.replace("_", "").isalnum():
            raise KeyStoreError(f"schema must be a plain identifier, got {schema!r}")
        self._store: _LendsConnections | None = store
        self._connect = connect
        self.schema = schema
        self._conn: Any = None
        self._lock = threading.Lock()
        self._create()

    def __repr__(self) -> str:
        return f"<PostgresKeyStore schema={self.schema!r}>"

    def _table(self) -> str:
        return f'"{self.schema}".eventcore_keys'

    def _atomic(self) -> AbstractContextManager[Any]:
        return self._session(transaction=True)

    def _create(self) -> None:
        # No DDL when the table exists: an application role without CREATE rights can then use it.
        if self._one("select to_regclass(%s) is not null", [self._table()]) == (True,):
            return
        if self._one("select to_regnamespace(%s) is not null", [f'"{self.schema}"']) != (True,):
            with self._cursor() as cur:  # the store may not have migrated its schema yet
                cur.execute(f'create schema "{self.schema}"')
        super()._create()

    def _cursor(self) -> AbstractContextManager[Any]:
        return self._session(transaction=False)

    @contextmanager
    def _session(self, *, transaction: bool) -> Iterator[Any]:
        """A cursor on a connection the store lends, or on the one own connection; single statements
        autocommit (one round trip each)."""
        if self._store is not None:
            with self._store.connection() as conn:
                if transaction:
                    with conn.transaction(), conn.cursor() as cur:
                        yield cur
                else:
                    with conn.cursor() as cur:
                        yield cur
            return
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()  # type: ignore[operator]
                self._conn.autocommit = True
            if transaction:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            else:
                with self._conn.cursor() as cur:
                    yield cur

    def ensure_key(self, subject: str) -> SubjectKey:
        """One statement: insert a first key unless the subject has one, and return the active key.

        Given the store, that statement commits without waiting for its WAL flush (``synchronous_commit``
        off for it alone): a subject's first key is then not one more disk flush on the path of its
        first command. Safe because the key and the events live in one server: an event encrypted with
        the key is appended after the key's commit, so its own (flushed) commit flushes the WAL up to
        and past the key's; a crash can lose only a key that no stored event uses. Deleting keys
        (``forget``) always waits for its flush: a forgotten key must never come back.
        """
        fresh = new_key(subject)
        t = self._table()
        same_server = self._store is not None
        no_flush_wait = (
            "cfg as materialized (select set_config('synchronous_commit', 'off', true)), "
            if same_server
            else ""
        )
        query = (
            f"with {no_flush_wait}ins as (insert into {t} select %s, %s, 1, %s"
            f"{' from cfg' if same_server else ''} where not exists "
            f"(select 1 from {t} where subject = %s) on conflict do nothing returning key_id, material) "
            f"select key_id, material from ins union all (select key_id, material from {t} "
            "where subject = %s order by generation desc limit 1) limit 1"
        )
        row = self._one(query, [fresh.key_id, subject, fresh.material, subject, subject])
        if row is None:  # lost a race with a concurrent first key: read the winner's
            return self.active_key(subject) or self.rotate(subject)
        return SubjectKey(row[0], subject, bytes(row[1]))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
