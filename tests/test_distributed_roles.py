"""A durable read model under the hardened roles: the migration role sets it up (DDL), the application
role, which owns nothing and may not create anything, opens it and runs workers; rebuilds are DDL too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from eventcore_lab.distributed import DurableReadModel, PartitionWorker, ReadModelError
from eventcore_lab.distributed.demo import ApplicationCounts, write
from eventcore_lab.security import harden
from eventcore_lab.stores.postgres import PostgresStore


def _as(url: str, role: str) -> str:
    return psycopg.conninfo.make_conninfo(url, user=role)


@pytest.fixture
def roles(pg_url: str, pg_schema: str) -> Iterator[tuple[str, str, str]]:
    """A migrated, hardened store schema holding 300 events: (application DSN, migration DSN, app role)."""
    suffix = uuid.uuid4().hex[:10]
    app, mig = f"ectest_app_{suffix}", f"ectest_mig_{suffix}"
    with PostgresStore(pg_url, schema=pg_schema, pool_max=2) as store:
        store.migrate()
        write(store, events=300, streams=12)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            harden(conn, pg_schema, app_role=app, migration_role=mig)
        yield _as(pg_url, app), _as(pg_url, mig), app
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(pg_schema)))
            for role in (app, mig):
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _counts(model: DurableReadModel) -> dict[str, int]:
    return {row.stream_id: int(row.events) for row in model.frame("streams").itertuples()}


def _reference(store: PostgresStore) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in store.read_all():
        counts[event.stream_id] = counts.get(event.stream_id, 0) + 1
    return counts


def test_the_application_role_cannot_set_up_a_read_model(roles: tuple[str, str, str], pg_schema: str) -> None:
    app_dsn, _, _ = roles
    with pytest.raises(ReadModelError, match=r"not set up.*migration role"):
        DurableReadModel(app_dsn, ApplicationCounts(), schema=pg_schema, partitions=2, migrate=False)
    with pytest.raises(ReadModelError, match=r"cannot be set up.*migration role"):
        DurableReadModel(app_dsn, ApplicationCounts(), schema=pg_schema, partitions=2)


def test_the_migration_role_sets_up_and_the_application_role_runs_workers(
    roles: tuple[str, str, str], pg_schema: str
) -> None:
    app_dsn, mig_dsn, app = roles
    with DurableReadModel(mig_dsn, ApplicationCounts(), schema=pg_schema, partitions=2) as setup:
        setup.migrate(grant_to=app)
        setup.migrate(grant_to=app)  # idempotent
    with (
        PostgresStore(app_dsn, schema=pg_schema, pool_max=3) as store,
        DurableReadModel(
            app_dsn, ApplicationCounts(), schema=pg_schema, partitions=2, migrate=False
        ) as model,
    ):
        assert model.is_set_up()
        with PartitionWorker(store, model, batch_size=50) as worker:
            assert worker.run_until_caught_up() == 300
        assert _counts(model) == _reference(store)
        assert model.position() == store.head()
        with pytest.raises(psycopg.errors.InsufficientPrivilege), model.transaction() as conn:
            conn.execute(sql.SQL("CREATE TABLE {}.sneaky (x int)").format(sql.Identifier(pg_schema)))

        # a blue/green rebuild is DDL: the migration role runs it and grants the new generation
        with (
            PostgresStore(mig_dsn, schema=pg_schema, pool_max=2) as owner_store,
            DurableReadModel(mig_dsn, ApplicationCounts(), schema=pg_schema, partitions=2) as owner,
        ):
            generation = owner.rebuild(owner_store, grant_to=app)
        assert model.live_generation() == generation == 2
        write(store, events=60, streams=12, seed=1)
        with PartitionWorker(store, model, batch_size=50) as worker:
            assert worker.run_until_caught_up() == 60
        assert _counts(model) == _reference(store)
