"""Creating and upgrading the store's schema: versioned SQL files applied in order, each in its own
transaction, under an advisory lock so that many processes may start at once.

A schema that is already current is only read (two plain SELECTs), never locked or altered, so an
application role without CREATE rights starts on a schema its migration role prepared."""

from __future__ import annotations

import re
import zlib
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import PoolTimeout

from ...core.errors import (
    ConnectionPoolExhausted,
    InvalidArgument,
    MigrationError,
)
from ._connection import _ConnectionMixin

#: (version, SQL file next to this module); applied in order, each in its own transaction.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, "_schema_1.sql"),
    (2, "_schema_2.sql"),
    (3, "_schema_3.sql"),
    (4, "_schema_4.sql"),
    (5, "_schema_5.sql"),
    (6, "_schema_6.sql"),
)


_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


_WRITER_KEY = 0x45434C42  # first half of the two-int advisory key writers hold; the second is per schema


class _MigrationMixin(_ConnectionMixin):
    """Schema creation and upgrades."""

    def migrate(self, *, up_to: int | None = None) -> int:
        """Create or upgrade this store's schema; safe to call any number of times, from any process.

        ``up_to`` stops at that schema version: to upgrade in steps, or to reproduce the schema an
        older release made (this store then migrates the rest on its next use). Returns the schema
        version now in place.
        """
        latest = MIGRATIONS[-1][0]
        known = [version for version, _ in MIGRATIONS]
        if up_to is not None and (isinstance(up_to, bool) or up_to not in known):
            raise InvalidArgument(f"up_to must be one of the schema versions {known}, got {up_to!r}")
        target = latest if up_to is None else up_to
        with self._migrate_lock:
            version = self._migrate(target)
            self._migrated = version >= latest
            return version

    def _migrate(self, target: int) -> int:
        q = self._q
        latest = MIGRATIONS[-1][0]
        try:
            current = self._recorded_version()
            if current is not None and current >= target:
                self._refuse_newer(current, latest)
                return current
            with self._pool.connection() as conn, conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"migrate:{self.schema}"]
                )
                found = "SELECT to_regnamespace(%s) IS NOT NULL"
                exists = conn.execute(found, [q.as_string(conn)]).fetchone()
                if not (exists and exists[0]):  # a schema owner without CREATE on the database may migrate
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(q))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {}.schema_version "
                        "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                    ).format(q)
                )
                row = conn.execute(sql.SQL("SELECT max(version) FROM {}.schema_version").format(q)).fetchone()
                current = (row[0] if row else None) or 0
                self._refuse_newer(current, latest)
                for version, filename in MIGRATIONS:
                    if current < version <= target:
                        self._apply(conn, version, filename)
                return max(current, target)
        except MigrationError:
            raise
        except PoolTimeout:
            raise ConnectionPoolExhausted(f"no connection free to migrate schema {self.schema!r}") from None
        except psycopg.Error as exc:
            raise MigrationError(
                f"could not migrate schema {self.schema!r} at {self._where}: {self._scrub(exc)}"
            ) from exc

    def _recorded_version(self) -> int | None:
        """The schema version recorded in the database, read without DDL or locks; None when the schema
        or its version table does not exist yet (pending work, done under the lock)."""
        with self._pool.connection() as conn:
            table = f"{self._q.as_string(conn)}.schema_version"
            found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
            if not (found and found[0]):
                return None
            row = conn.execute(
                sql.SQL("SELECT max(version) FROM {}.schema_version").format(self._q)
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def _refuse_newer(self, current: int, latest: int) -> None:
        if current > latest:
            raise MigrationError(
                f"schema {self.schema!r} is at version {current}, newer than this eventcore-lab "
                f"knows ({latest}); upgrade eventcore-lab"
            )

    def _apply(self, conn: psycopg.Connection[Any], version: int, filename: str) -> None:
        seed = zlib.crc32(self.schema.encode())
        channel = sql.Literal(self.channel).as_string(conn)
        sequence = sql.Literal(f"{self._q.as_string(conn)}.positions").as_string(conn)
        try:
            text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
            body = (
                text.replace("__SCHEMA__", self._q.as_string(conn))
                .replace("__LOCK_SEED__", str(seed))
                .replace("__CHANNEL__", channel)
                .replace("__SEQUENCE__", sequence)
                .replace("__WRITER_KEY__", f"{_WRITER_KEY}, {seed & 0x7FFFFFFF}")
            )
            with conn.transaction():
                conn.execute(body.encode())
                conn.execute(
                    sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)").format(self._q), [version]
                )
        except (psycopg.Error, OSError) as exc:
            raise MigrationError(
                f"migration {version} ({filename}) of schema {self.schema!r} failed: {self._scrub(exc)}"
            ) from exc

    def _ready(self) -> None:
        if not self._migrated:
            self.migrate()
