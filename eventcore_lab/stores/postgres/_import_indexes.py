"""An import into an empty store builds the events table's indexes once, after its COPY.

Kept up to date row by row, the secondary indexes (unique (stream_id, version), (event_type, position),
category, GIN tags) cost the server about three times the COPY itself (100,000 events: 0.95 s with
them, 0.25 s without them plus 0.29 s to build them afterwards); even the primary key, whose positions
ascend, costs more kept than built (COPY with it 0.37-0.56 s; without it and then built, 0.32-0.38 s).
So an import into an empty table drops them inside its transaction and builds them, from the
definitions the catalog holds, after the rows are in: a failed import rolls this DDL back with the
rows, leaving the store exactly as it was.

Taken only when it is safe and pays: the table is empty (no reader loses access to existing events,
and building beats maintaining), the role owns it (DDL needs that), no foreign key points at it, and
no user-defined INSERT trigger runs on it (a hardened store's insert guard looks each stream's
version up through the unique index). The table lock (ACCESS EXCLUSIVE, needed to drop an index) is
taken after the import's '*' advisory key, the order every append takes its keys and then the table,
so it cannot deadlock with them; readers of the empty table wait for the import to commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import sql

#: Memory for building the indexes (sorts, the GIN accumulator), for this transaction only: the
#: server default (64 MB) spills the sorts of a 1,000,000-event import to disk.
_BUILD_MEMORY = "256MB"

_MORE_MEMORY = """
SELECT set_config('maintenance_work_mem', %s, true)
 WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes(%s)
"""

# One statement: whether the fast path applies. Ownership, triggers and foreign keys from the catalog;
# emptiness from the table, stable here since the import holds '*' (every writer takes it first).
_APPLIES = """
SELECT pg_has_role(t.relowner, 'USAGE')
   AND NOT EXISTS (SELECT 1 FROM pg_trigger g
                    WHERE g.tgrelid = t.oid AND NOT g.tgisinternal AND g.tgtype & 4 <> 0)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = t.oid AND f.contype = 'f')
   AND NOT EXISTS (SELECT 1 FROM {table})
  FROM pg_class t WHERE t.oid = %s::regclass
"""

# Every index, with the constraint it backs if any (primary key first), and the definitions that rebuild
# either.
_DEFINITIONS = """
SELECT x.relname, c.conname, pg_get_indexdef(i.indexrelid), pg_get_constraintdef(c.oid)
  FROM pg_index i
  JOIN pg_class x ON x.oid = i.indexrelid
  LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
 WHERE i.indrelid = %s::regclass
 ORDER BY NOT i.indisprimary, c.conname IS NULL, x.relname
"""


@contextmanager
def indexes_built_after(conn: Any, schema: str) -> Iterator[None]:
    """Inside an import's transaction, after its '*' lock: the body's rows go into the events table
    without its indexes, which are built when the body returns, when the table is empty
    (see the module docstring); otherwise the body runs with the indexes as they are."""
    table = sql.Identifier(schema, "events")
    name = table.as_string(conn)
    [[applies]] = conn.execute(sql.SQL(_APPLIES).format(table=table), [name]).fetchall()
    if not applies:
        yield
        return
    conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
    rebuild: list[sql.Composable] = []
    for index, constraint, index_sql, constraint_sql in conn.execute(_DEFINITIONS, [name]).fetchall():
        if constraint is None:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, index)))
            rebuild.append(sql.SQL(index_sql))  # pg_get_indexdef: complete and schema-qualified
        else:
            alter = sql.SQL("ALTER TABLE {} {} CONSTRAINT {} {}")
            key = sql.Identifier(constraint)
            conn.execute(alter.format(table, sql.SQL("DROP"), key, sql.SQL("")))
            rebuild.append(alter.format(table, sql.SQL("ADD"), key, sql.SQL(constraint_sql)))
    yield
    conn.execute(_MORE_MEMORY, [_BUILD_MEMORY, _BUILD_MEMORY])
    for statement in rebuild:
        conn.execute(statement)
