"""Opening a DuckDB file for the store: one writer per file, the tables, their schema version.

DuckDB hands a second connection in the same process the same database, and two stores each believing
they own the stream versions would corrupt the log; so files open for writing are claimed here, and a
file held by another process is reported with that process's name and PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

import duckdb

from ...core.errors import (
    ConnectionFailed,
    MigrationError,
)
from ._base import _DuckDBBase

#: Version of the tables this module writes; stored in ``eventcore_schema`` for future migrations.
SCHEMA_VERSION = 3
#: Adds the schema version column to a table made by schema version 1; its rows read as version 1.
#: (Also run on a fresh file, in case an events table was made there beforehand.)
_MIGRATE_1_TO_2 = "alter table events add column if not exists schema_version integer default 1"
#: Adds the tags list column (schema version 3); rows written before it carry no tags.
_MIGRATE_2_TO_3 = "alter table events add column if not exists tags varchar[] default []"
_UPGRADES = {1: (_MIGRATE_1_TO_2, _MIGRATE_2_TO_3), 2: (_MIGRATE_2_TO_3,)}


_SCHEMA = """
create table if not exists eventcore_schema (
    version integer not null,
    applied_at timestamptz not null
);
create table if not exists events (
    position bigint primary key,
    event_id uuid not null,
    stream_id varchar not null,
    version bigint not null,
    event_type varchar not null,
    payload json not null,
    metadata json not null,
    recorded_at timestamptz not null,
    schema_version integer not null default 1,
    tags varchar[] not null default []
);
create table if not exists checkpoints (
    name varchar primary key,
    position bigint not null,
    updated_at timestamptz not null
);
"""


# Files open for writing by a DuckDBStore of this process: DuckDB would hand a second store the same
# database, and two stores each believing they own the versions would corrupt the log.
_open_files: dict[str, str] = {}


_open_files_lock = threading.Lock()


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def _connect(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the file, turning DuckDB's errors into ConnectionFailed messages a person can act on."""
    if read_only and path != ":memory:" and not Path(path).exists():
        raise ConnectionFailed(
            f"DuckDB file {path} does not exist; cannot open it read-only", retriable=False
        )
    try:
        con = duckdb.connect(path, read_only=read_only)
    except duckdb.IOException as exc:
        holder = _LOCK_HOLDER.search(str(exc))
        if holder:
            raise ConnectionFailed(
                f"DuckDB file {path} is in use by another process "
                f"({holder['program']}, PID {holder['pid']}): "
                "a DuckDB file has a single writing process. Stop that process, or share its store; "
                "read-only opening also needs the writer to be gone",
                retriable=False,
            ) from exc
        raise ConnectionFailed(f"cannot open DuckDB file {path}: {exc}", retriable=False) from exc
    except duckdb.Error as exc:
        raise ConnectionFailed(
            f"cannot open DuckDB file {path}: {exc}. In one process, open a file once and share the store",
            retriable=False,
        ) from exc
    con.execute("set TimeZone = 'UTC'")
    con.execute("set threads = 1")
    return con


class _ConnectionMixin(_DuckDBBase):
    """Claiming, migrating and loading the store's file."""

    @staticmethod
    def _claim(path: str, read_only: bool) -> str | None:
        if path == ":memory:" or path.startswith(":memory:") or read_only:
            return None
        key = os.path.realpath(path)
        with _open_files_lock:
            if key in _open_files:
                raise ConnectionFailed(
                    f"DuckDB file {path} is already open for writing by another DuckDBStore in this process; "
                    "share that store or close it first",
                    retriable=False,
                )
            _open_files[key] = path
        return key

    def _release(self) -> None:
        if self._key is not None:
            with _open_files_lock:
                _open_files.pop(self._key, None)
            self._key = None

    def _migrate(self) -> None:
        con = self._con
        try:
            tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
            if "eventcore_schema" in tables:
                row = con.execute("select max(version) from eventcore_schema").fetchall()[0]
                found = row[0] or 0
                if found > SCHEMA_VERSION:
                    raise MigrationError(
                        f"DuckDB file {self.path} has schema version {found}, newer than this eventcore-lab "
                        f"understands ({SCHEMA_VERSION}); upgrade eventcore-lab"
                    )
                if found == SCHEMA_VERSION:
                    return
                if found in _UPGRADES and not self.read_only:
                    con.execute("begin")
                    for statement in _UPGRADES[found]:
                        con.execute(statement)
                    con.execute("insert into eventcore_schema values (?, now())", [SCHEMA_VERSION])
                    con.execute("commit")
                    return
            if self.read_only:
                raise MigrationError(
                    f"DuckDB file {self.path} holds no eventcore-lab event store (schema version "
                    f"{SCHEMA_VERSION}); open it once for writing to create one"
                )
            con.execute("begin")
            con.execute(_SCHEMA)
            con.execute(_MIGRATE_1_TO_2)
            con.execute(_MIGRATE_2_TO_3)
            con.execute("insert into eventcore_schema values (?, now())", [SCHEMA_VERSION])
            con.execute("commit")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("rollback")
            raise MigrationError(f"cannot create the event tables in {self.path}: {exc}") from exc

    def _load(self) -> None:
        """Read every stream's version and the head position: all the write path needs."""
        rows = self._con.execute(
            "select stream_id, max(version) from events group by stream_id order by min(position)"
        ).fetchall()
        self._versions = dict(rows)
        self._head = self._con.execute("select coalesce(max(position), 0) from events").fetchall()[0][0]
        self._next_position = self._head + 1
        self._tail_start = self._head + 1
