"""The PostgreSQL store: many processes and machines sharing one event log.

Connect with a DSN (or ``EVENTCORE_DATABASE_URL``)::

    store = PostgresStore("postgresql://user@host:5432/db", schema="eventcore")

**Schema.** Everything lives in one PostgreSQL schema (default ``eventcore``), so several stores and
parallel test runs share a database. :meth:`PostgresStore.migrate` creates or upgrades it; it also runs
on first use. Applied versions are recorded in ``<schema>.schema_version``; a concurrent migrator waits
on an advisory lock, so many processes may start at once.

**One round trip per append.** ``append`` calls the plpgsql function ``<schema>.append_events`` with the
events as arrays and the expected version of every checked stream (streams only read too). The function
takes ``pg_advisory_xact_lock`` per stream in sorted key order (no deadlocks, no table lock: appends on
disjoint streams never wait for each other), checks the versions, numbers the events and inserts them.
A failed check raises SQLSTATE ``ECV01``, mapped to :class:`VersionConflict` naming each stream with
what was expected and its actual version. The function runs with ``plan_cache_mode =
force_generic_plan``: with the default, PostgreSQL re-planned its statements on every call for their
array parameters, which was half its server time (about 290 -> 145 µs of backend CPU per call; a bare
one-row INSERT is about 35). The per-stream checks and numbering are plain plpgsql expressions rather
than one more query, since an append names few streams. Since migration 6 the store calls
``append_events_within`` for every append (lock timeout NULL without a deadline: one plpgsql call, no
wrapper), hashes the lock names it sends inside the lock statement, and skips the tags subquery for
untagged events: 0.68-0.88x of migration 5's server CPU per two-event create in a server-side loop
(``python -m benchmarks.pg_append``, which also splits a command's time into client and server CPU).

**Positions safe for tailers.** Positions come from a sequence, drawn in the order writers ask, which
is not the order they commit: position 7 may commit after 8, and a reader that moved past 8 would skip
7 forever. Readers therefore stop at a gap until it is settled. Every writer, after its stream locks and
checks, takes a per-schema advisory key in shared mode and its transaction id, and only then draws
positions; so a missing
position below a visible one belongs to a transaction that started before the reader noticed the gap.
``<schema>.settle_gap`` takes a transaction id for the reader when it first sees the gap (remembered per
gap), and answers *pending* while any older transaction still holds the writer key, else *filled* or
*permanent* (rolled back: skipped). ``read_all`` returns events up to a pending gap, and a tailer just
reads again later. Why this and not the alternatives: a one-row position counter updated inside the
append (tried first) hands out positions in commit order but makes appends commit one at a time,
WAL flush included, so 8 clients were no faster than one; a table lock (the ``eventsourcing``
library's choice) serialises whole appends; filtering readers by ``pg_snapshot_xmin`` alone is wrong
(a running writer whose transaction id is newer than every finished one is in no snapshot's list) and
stalls behind any long transaction in the database. The cost here: a shared advisory lock and a
transaction id per append; a reader that meets a gap pays one more round trip (which looks at
``pg_locks``) and waits for the writers that were running when it saw the gap, typically a
millisecond; rolled-back appends (after their positions were drawn) leave permanent gaps, so positions
are increasing but not always consecutive. ``head()`` is the highest committed position, which a
pending gap may keep ``read_all`` from reaching yet.

**Queries and append conditions** (migration 4). Events carry ``tags text[]`` (GIN index; an
``(event_type, position)`` index serves items naming types only). ``append(..., condition=...)`` checks
the condition inside the append function after the stream versions, in the same round trip, and
raises SQLSTATE ``ECA01`` (AppendConditionFailed). Because positions commit out of order, the check is
serialised by advisory locks, not by positions alone: writers hold shared keys of the types and tags
they write, conditions and ``read_query`` take exclusive keys of their query items, all in the one
sorted pass with the stream locks (the argument is written in ``_schema_4.sql``; the lock names come
from ``lock_names`` in ``_reading.py``). So ``read_query(...).position`` is a safe ``after``.

**Immutability.** Triggers refuse UPDATE, DELETE and TRUNCATE on ``<schema>.events``.

**Subscriptions.** After its writes commit, each store NOTIFYs channel ``eventcore_<schema>`` from a
background thread (one NOTIFY per burst; a NOTIFY inside the append would serialise commits on the
notification queue lock). The payload is JSON: the head, a token naming the sending store, and the
streams written in the burst (null when too many for the 8000-byte limit). One listener thread
per store wakes :meth:`wait_for_events`, which returns
once ``read_all`` has something; the shared :class:`Subscription` runs on top. Without a listener
(connection lost) waiters poll.

**Stream cache** (opt-in: ``cache_events=N``). A command costs a read round trip and an append round
trip; with the cache, ``read_streams`` (what the executor calls) serves streams this store recently read
or wrote from memory, so a command on cached streams needs only the append. This is safe for commands
because the executor appends with the exact version of every stream it read: if another process wrote
meanwhile, the append fails with VersionConflict, the store drops the streams it names (and all streams
of any failed append) and the executor's retry reads them afresh. To keep such conflicts rare, the
listener drops streams named in other stores' NOTIFYs, and everything when it (re)connects or is not
connected. The price, and why it is off by default: ``read_streams`` may return a stream as it was
before another process's latest append, until that process's NOTIFY arrives (typically a millisecond;
never, if it died between commit and NOTIFY). Own appends are always visible. ``read_stream``,
``stream_version``, ``read_all`` and subscriptions never use the cache. Entries only move forward
(own appends extend a stream only if the cached copy ends right before them), and a database read that
raced with an invalidation is not kept. ``N`` bounds the events held (an empty stream counts as one).
Reads stay one snapshot with the cache: entries carry a stamp naming the statement that read or wrote
them (an own append stamps the streams it wrote and those it checked exactly, all current at its
commit), cached streams are combined only when their stamps agree, and otherwise one statement reads
the missing streams together with whatever follows the cached ones (shared cache: ``_stream_cache``).

**Guessing new streams** (with the cache, on unless ``guess_unseen=False``). A command on a stream this
store has never seen (every create) would still need a read round trip; instead the executor's read
(``read_streams_guessing``) treats such streams as empty, and serves cached streams from different
moments as they are (rather than re-reading them as one snapshot), so the command costs only the
append. That never decides wrongly: the append checks the exact version of every stream read, so a
wrong guess ends in VersionConflict, and any other outcome of an attempt that guessed (a refusal, an
empty decision, an append refusing the events) is not reported either: the executor runs the command
again at once on a real read (``core._guessing``).
A stream once confirmed, cached, written or dropped is never guessed again (the cache remembers the
streams it saw, bounded). ``read_streams`` itself never guesses. ``guess_stats`` counts guesses and
confirmations (see ``benchmarks/README.md`` for what this saves and costs).

**Checkpoints** for projection runners, in ``<schema>.checkpoints``: ``checkpoint_load(name) -> int``
(0 when never saved) and ``checkpoint_save(name, position)`` (an upsert, in its own transaction).

**Bulk paths.** :meth:`import_events` checks versions (each stream must continue at its current version
+ 1, without gaps), draws positions and COPYs the rows in binary form, all in one transaction.
:meth:`copy_out` streams the log out with COPY TO, and :meth:`export_events` writes it to a JSON Lines
or Parquet file (``stores.bulk``).

**Time budgets.** A command's store calls end with its time budget (the executor publishes its
deadline, see ``core._deadline``): the append (always) and the reads then go through
``append_events_within`` / ``read_streams_within`` (migration 2), which set the time left as the call's
``lock_timeout`` before taking any lock, so a call blocked on another session's lock ends as
:class:`Timeout` on the server, at no extra round trip; waiting for a pooled connection is bounded the
same way.

**Errors.** An unreachable server or a wrong DSN fails within ``connect_timeout`` with
:class:`ConnectionFailed` naming host, port, database and user (never the password; the driver's error
is chained with secrets removed). It is retriable when the connection was refused, unreachable or timed
out, or the server was starting, stopping or full, and not when the server refused this DSN (unknown
database or role, failed authentication, bad option) or the DSN itself is malformed. No free pooled
connection within ``pool_timeout`` is :class:`ConnectionPoolExhausted`; serialization failures,
deadlocks, lock timeouts and cancelled statements outside a budget are a retriable
:class:`TransactionError`.

Modules, one layer each, each building on the ones before: ``_base`` (the shared state),
``_connection`` (pool, probe, bounded statements, error translation), ``_migrations`` (with the SQL
files ``_schema_1.sql`` and ``_schema_2.sql``), ``_notify`` (NOTIFY/LISTEN), ``_reading``, ``_writer``,
and ``_store`` (the class). The stream cache is shared with the DuckDB store (``stores._stream_cache``).
"""

from ._connection import DSN_ENV
from ._migrations import MIGRATIONS
from ._store import PostgresStore

__all__ = ["DSN_ENV", "MIGRATIONS", "PostgresStore"]
