"""PostgreSQL least privilege and database-enforced log integrity, as SQL the operator runs once.

Two roles. The **migration role** owns the schema, its tables, sequence and functions: it runs
``PostgresStore.migrate()`` (DDL) and nothing else. The **application role** gets only what appending,
reading, projecting and key handling need: it owns nothing, so it cannot ALTER the tables, disable their
triggers or drop them. On top, a trigger makes the database itself refuse inserts that break the log's
rules, whoever sends them: versions consecutive per stream, positions drawn from the store's sequence,
event ids unique. It costs one index probe per inserted row (see benchmarks/README.md).

Order of operations for an operator (all as a superuser or the schema's current owner):

1. ``PostgresStore(dsn, schema=...).migrate()`` with the migration role (or a superuser);
2. run :func:`least_privilege_sql` (creates the roles if missing, transfers ownership, grants);
3. run :func:`integrity_sql` (the insert guard and the unique index on event ids);
4. start the application with a DSN that logs in as the application role.

On a schema already at its version, ``PostgresStore`` only reads the recorded version at start (no DDL,
no lock), so the application role opens it as it is; with a migration pending it refuses to start with
MigrationError until the migration role has run ``migrate()``. ``PostgresKeyStore`` and
``PostgresSnapshots`` run DDL only when their table is missing: create it once with the migration role
before hardening. ``DurableReadModel`` only reads when its tables exist: set it up (and rebuild it) with
the migration role, ``DurableReadModel(migration_dsn, ...).migrate(grant_to=app_role)``, and open it with
the application role.
"""

from __future__ import annotations

import re
from typing import Any

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"{what} must be a lower-case SQL identifier (letters, digits, _), got {name!r}")
    return f'"{name}"'


def least_privilege_sql(schema: str, *, app_role: str, migration_role: str, keys_table: bool = True) -> str:
    """SQL creating both roles (without passwords: set them with ALTER ROLE) and granting each its rights.

    ``keys_table``: also grant the key table of :class:`PostgresKeyStore` (``eventcore_keys``), which
    forget() deletes from; create it first (as the migration role) if keys are kept in this database.
    """
    s, app, mig = (
        _ident(schema, "schema"),
        _ident(app_role, "app_role"),
        _ident(migration_role, "migration_role"),
    )
    keys = (
        f"""
CREATE TABLE IF NOT EXISTS {s}.eventcore_keys (key_id varchar PRIMARY KEY, subject varchar NOT NULL,
    generation integer NOT NULL, material bytea NOT NULL, UNIQUE (subject, generation));
ALTER TABLE {s}.eventcore_keys OWNER TO {mig};
GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.eventcore_keys TO {app};"""
        if keys_table
        else ""
    )
    return f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{migration_role}') THEN
        CREATE ROLE {mig} LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app_role}') THEN
        CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
END $$;
-- the migration role owns everything in the schema, the application role nothing
ALTER SCHEMA {s} OWNER TO {mig};
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'S', 'p') LOOP
        EXECUTE format(CASE r.relkind WHEN 'S' THEN 'ALTER SEQUENCE %I.%I OWNER TO %I'
                                      ELSE 'ALTER TABLE %I.%I OWNER TO %I' END,
                       '{schema}', r.relname, '{migration_role}');
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = '{schema}' LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO %I', r.f, '{migration_role}');
    END LOOP;
END $$;
REVOKE ALL ON SCHEMA {s} FROM PUBLIC;
GRANT USAGE ON SCHEMA {s} TO {app};
REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {app};
GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {app};
GRANT INSERT ON {s}.events TO {app};
GRANT INSERT, UPDATE ON {s}.checkpoints TO {app};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {app};
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {app};
-- what later migrations (run by the migration role) create is usable by the application at once
ALTER DEFAULT PRIVILEGES FOR ROLE {mig} IN SCHEMA {s} GRANT SELECT ON TABLES TO {app};
ALTER DEFAULT PRIVILEGES FOR ROLE {mig} IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {app};
ALTER DEFAULT PRIVILEGES FOR ROLE {mig} IN SCHEMA {s} GRANT EXECUTE ON FUNCTIONS TO {app};{keys}
"""


def integrity_sql(schema: str) -> str:
    """SQL for the insert guard on ``events`` and a unique index on event ids (run as the owner)."""
    s = _ident(schema, "schema")
    return f"""
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id_key ON {s}.events (event_id);

CREATE OR REPLACE FUNCTION {s}.guard_event_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
BEGIN
    -- rows inserted earlier by the same statement are visible here, so a batch is checked row by row
    SELECT coalesce(max(e.version), 0) INTO v_last FROM {s}.events e WHERE e.stream_id = NEW.stream_id;
    IF NEW.version <> v_last + 1 THEN
        RAISE EXCEPTION 'forged event refused: stream % is at version %, an insert of version % breaks the '
                        'consecutive versions', NEW.stream_id, v_last, NEW.version USING ERRCODE = 'ECI02';
    END IF;
    IF NEW.position < 1 OR NEW.position > (SELECT last_value FROM {s}.positions) THEN
        RAISE EXCEPTION 'forged event refused: position % was not drawn from %.positions', NEW.position,
                        TG_TABLE_SCHEMA USING ERRCODE = 'ECI02';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS events_guard_insert ON {s}.events;
CREATE TRIGGER events_guard_insert BEFORE INSERT ON {s}.events
    FOR EACH ROW EXECUTE FUNCTION {s}.guard_event_insert();
"""


def harden(conn: Any, schema: str, *, app_role: str, migration_role: str, keys_table: bool = True) -> None:
    """Apply :func:`least_privilege_sql` and :func:`integrity_sql` on a psycopg connection (superuser or
    owner), in one transaction."""
    with conn.transaction():
        conn.execute(integrity_sql(schema))
        conn.execute(
            least_privilege_sql(
                schema, app_role=app_role, migration_role=migration_role, keys_table=keys_table
            )
        )
