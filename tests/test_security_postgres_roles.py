"""PostgreSQL least privilege and database-enforced log integrity, on the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql

from eventcore_lab import Command, Event, EventToWrite, Executor, emit, stream
from eventcore_lab.core.errors import MigrationError
from eventcore_lab.examples.customers import RegisterCustomer
from eventcore_lab.projections import ProjectionRunner, fold
from eventcore_lab.security import PostgresKeyStore, ProtectedStore, harden
from eventcore_lab.stores.postgres import PostgresStore
from eventcore_lab.stores.postgres._migrations import MIGRATIONS


class Counted(Event, frozen=True):
    event_type = "security_roles_test.Counted"
    n: int


class Count(Command):
    counter: str = stream()
    n: int = 1

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: Any) -> int:
        return state + event.payload.n

    def handle(self, state: int, ctx: Any) -> list[Any]:
        return [emit(self.counter, Counted(n=self.n)), emit(self.counter, Counted(n=self.n))]


class Total:
    def __init__(self) -> None:
        self.total = 0

    def apply(self, event: Any) -> None:
        if isinstance(event.payload, Counted):
            self.total += event.payload.n


def _as(url: str, role: str) -> str:
    return psycopg.conninfo.make_conninfo(url, user=role)


@pytest.fixture
def hardened(request: pytest.FixtureRequest, pg_url: str, pg_schema: str) -> Iterator[tuple[str, str, str]]:
    """A migrated, hardened schema; yields (application DSN, migration DSN, application role).

    Parametrised indirectly with "behind", the schema stops one migration short of the code's, as a
    schema written by the previous release would."""
    suffix = uuid.uuid4().hex[:10]
    app, mig = f"ectest_app_{suffix}", f"ectest_mig_{suffix}"
    behind = getattr(request, "param", None) == "behind"
    with PostgresStore(pg_url, schema=pg_schema, pool_max=1) as store:
        store.migrate(up_to=MIGRATIONS[-2][0] if behind else None)
    if not behind:  # (this release's code cannot append to a schema one migration behind)
        with PostgresStore(pg_url, schema=pg_schema, pool_max=1) as store:
            store.append([EventToWrite("before", Counted(n=1))])
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            harden(conn, pg_schema, app_role=app, migration_role=mig)
        yield _as(pg_url, app), _as(pg_url, mig), app
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(pg_schema)))
            for role in (app, mig):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_the_application_role_appends_reads_projects_and_shreds(
    hardened: tuple[str, str, str], pg_schema: str
) -> None:
    app_dsn, _, _ = hardened
    with PostgresStore(app_dsn, schema=pg_schema, pool_max=2) as store:
        executor = Executor(store)
        for _ in range(3):
            executor.execute(Count("c", 2))
        assert [e.version for e in store.read_stream("c")] == [1, 2, 3, 4, 5, 6]
        assert fold(Total(), store.read_all()).total == 13
        runner = ProjectionRunner(store, Total())
        runner.run_until_caught_up()
        assert runner.projection.total == 13
        store.checkpoint_save("total", store.head())
        assert store.checkpoint_load("total") == store.head()
        copies = [
            msgspec.structs.replace(e, stream_id="imported", event_id=uuid.uuid4())
            for e in store.read_stream("c")
        ]
        assert store.import_events(copies) == 6  # the bulk path (COPY) passes the insert guard too
        imported = store.read_stream("imported")
        assert [e.version for e in imported] == [1, 2, 3, 4, 5, 6]
        with PostgresStore(app_dsn, schema=pg_schema, pool_max=1) as again:
            assert again.head() == store.head()
        keys = PostgresKeyStore(store)  # borrows the store's pooled connections, as the application role
        try:
            protected = ProtectedStore(store, keys)
            Executor(protected).execute(RegisterCustomer.new("c1", "Ada", "ada@example.com", "i"))
            protected.forget("c1")
            assert protected.read_stream("customer-c1")[0].payload.name == "[redacted]"
        finally:
            keys.close()
        assert len(imported) == 6


INSERT = (
    "INSERT INTO {s}.events (position, stream_id, version, event_id, event_type, payload, metadata, "
    "recorded_at) "
)
FORGERIES = {
    "position 0": INSERT + "VALUES (0, 'c', 1, %s, 'X', '{{}}', '{{}}', now())",
    "a version gap": INSERT
    + "VALUES (nextval('{s}.positions'), 'before', 3, %s, 'X', '{{}}', '{{}}', now())",
    "a version restart": INSERT
    + "VALUES (nextval('{s}.positions'), 'new', 2, %s, 'X', '{{}}', '{{}}', now())",
    "a position never drawn": INSERT + "VALUES (999999, 'fresh', 1, %s, 'X', '{{}}', '{{}}', now())",
    "a duplicate event id": INSERT
    + "SELECT nextval('{s}.positions'), 'before', 2, event_id, 'X', '{{}}', '{{}}', "
    "now() FROM {s}.events WHERE position = 1 AND %s IS NOT NULL",
}


def test_the_application_role_opens_a_current_schema_without_ddl(
    hardened: tuple[str, str, str], pg_url: str, pg_schema: str
) -> None:
    app_dsn, _, _ = hardened
    with psycopg.connect(app_dsn, autocommit=True) as conn:  # the role really may not run the DDL
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(pg_schema)))
        assert refused.value.sqlstate == "42501"
    with PostgresStore(app_dsn, schema=pg_schema, pool_max=1) as store:
        assert store.migrate() == MIGRATIONS[-1][0]
        assert store.head() == 1


@pytest.mark.parametrize("hardened", ["behind"], indirect=True)
def test_the_application_role_cannot_apply_a_pending_migration(
    hardened: tuple[str, str, str], pg_url: str, pg_schema: str
) -> None:
    app_dsn, mig_dsn, _ = hardened
    q = sql.Identifier(pg_schema)
    versions = sql.SQL("SELECT array_agg(version ORDER BY version) FROM {}.schema_version").format(q)
    before = [version for version, _ in MIGRATIONS[:-1]]
    with (
        PostgresStore(app_dsn, schema=pg_schema, pool_max=1) as store,
        pytest.raises(MigrationError, match=pg_schema),
    ):
        store.head()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute(versions).fetchone() == (before,)  # the refused attempt changed nothing
    with PostgresStore(mig_dsn, schema=pg_schema, pool_max=1) as owner:  # the migration role's job
        assert owner.migrate() == MIGRATIONS[-1][0]
    with PostgresStore(app_dsn, schema=pg_schema, pool_max=1) as store:
        assert store.head() == 0
        assert Executor(store).execute(Count("after")).events_written[-1].position == 2


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_inserts_are_refused_by_the_database(
    hardened: tuple[str, str, str], pg_schema: str, forgery: str
) -> None:
    app_dsn, _, _ = hardened
    statement = FORGERIES[forgery].replace("{s}", f'"{pg_schema}"').replace("{{}}", "{}")
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(statement, [uuid.uuid4()])
        assert refused.value.sqlstate in {"ECI02", "23505"}, refused.value
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.events").format(sql.Identifier(pg_schema))
        ).fetchone()
        assert count is not None and count[0] == 1
        # a correct hand-written insert still passes the guard: the rules, not the client, are checked
        conn.execute(
            sql.SQL(
                "INSERT INTO {s}.events VALUES (nextval({seq}), 'before', 2, %s, 'X', '{{}}', '{{}}', %s)"
            ).format(s=sql.Identifier(pg_schema), seq=sql.Literal(f'"{pg_schema}".positions')),
            [uuid.uuid4(), datetime.now(UTC)],
        )


def test_the_application_role_cannot_alter_triggers_or_tables(
    hardened: tuple[str, str, str], pg_schema: str
) -> None:
    app_dsn, mig_dsn, app = hardened
    s = sql.Identifier(pg_schema)
    attempts = [
        sql.SQL("ALTER TABLE {}.events DISABLE TRIGGER events_guard_insert").format(s),
        sql.SQL("ALTER TABLE {}.events DISABLE TRIGGER ALL").format(s),
        sql.SQL("DROP TRIGGER events_immutable ON {}.events").format(s),
        sql.SQL("CREATE TABLE {}.sneaky (x int)").format(s),
        sql.SQL("UPDATE {}.events SET stream_id = 'x'").format(s),
        sql.SQL("DELETE FROM {}.events").format(s),
    ]
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        for attempt in attempts:
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(attempt)
            assert refused.value.sqlstate in {"42501", "ECI01"}, (attempt, refused.value)
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 'events'", [pg_schema]
        ).fetchone()
        assert owner is not None and owner[0] != app
    with psycopg.connect(mig_dsn, autocommit=True) as conn:  # the owner still can, for migrations
        conn.execute(sql.SQL("ALTER TABLE {}.events DISABLE TRIGGER events_guard_insert").format(s))
        conn.execute(sql.SQL("ALTER TABLE {}.events ENABLE TRIGGER events_guard_insert").format(s))
