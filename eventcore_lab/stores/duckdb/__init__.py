"""The DuckDB store: the embedded default, one file and no server, strong at analytics.

A DuckDB transaction costs a millisecond or more while a columnar insert of many rows is cheap, so this
store keeps what the write path needs in the process and talks to DuckDB in batches:

* every stream's version lives in memory (a DuckDB file has one writing process, so it cannot go stale);
  appends are validated against it under a lock, without a DuckDB round trip;
* concurrent appends are **group-committed**: each validated append joins a queue, a writer thread
  commits everything queued in one DuckDB transaction (one appender flush, or Arrow inserts for large
  groups) while the appenders wait, and every append returns only after its group has committed, so a
  successful append is durable; the writer waits for the appenders of its last commit while they come
  back quickly, so that busy clients share one commit instead of alternating between two;
* recently read or written streams (an LRU bounded by ``cache_events``) and the newest events of the log
  (``tail_events``) are served from memory, so the executor and tailing subscribers rarely touch DuckDB;
* every event's position is indexed in memory by tag and by event type (loaded on open, extended as
  groups are published), so append conditions are checked and ``read_query`` finds its events without
  an SQL filter over the tags column (about 8 bytes a position per tag and per type).

Positions are handed out in queue order and groups commit in that order, so the log grows without holes
and a tailing reader can never miss an event. If a group fails to commit, its appends are committed
again one by one: an append DuckDB refuses fails alone, with its own error chained to DuckDB's (a
:class:`TransactionError`, retriable only for DuckDB's transient errors; a file import's own error, such
as a Parquet file that changed, stays that error), appends that were validated against its versions
fail with a retriable :class:`VersionConflict`, and every other append commits, moved down to keep the
positions without holes.

``read_streams`` is one snapshot: cached streams, versions and the head are taken together, and
streams read from DuckDB are read up to that head, so a group committed meanwhile is in none of them.

Analytics and tools (for the notebooks and the projections package):

* ``store.sql("select stream_id, count(*) from events group by 1")`` runs one read-only query and returns a
  pandas DataFrame; ``events`` is the log table (payload and metadata as JSON text).
* ``store.events_frame(after=0, ...)`` is the log as a DataFrame, filtered in SQL.
* ``store.checkpoint_load(name) -> int`` and ``store.checkpoint_save(name, position)`` keep projection
  checkpoints in the same file (table ``checkpoints``); ``store.checkpoints()`` lists them.
* ``with store.connection() as con:`` lends a DuckDB cursor under the store's lock, for a projection's own
  tables; never write to ``events`` through it.
* ``store.export_events(path)`` and ``store.import_file(path)`` move Parquet/JSON Lines files in bulk;
  ``store.import_events(events)`` loads StoredEvents with one Arrow insert (see :mod:`.bulk`).
* ``store.events_table(...)`` is the log as an Arrow table with payload fields expanded by DuckDB;
  ``projections.events_frame`` builds its DataFrame from it instead of from Python objects.

A second process opening the same file for writing gets :class:`ConnectionFailed` naming the file and the
process that holds it. ``read_only=True`` opens a file for analysis when no writer holds it (DuckDB lets
several read-only processes share a file, but not alongside a writer).

Modules, one concern each: ``_connection`` (claiming, opening and migrating the file), ``_batches``
(what waits in the commit queue), ``_writer`` (the group commit and its recovery), ``_reading``
(snapshot reads, the tail), ``_analytics`` (SQL, frames, checkpoints, bulk files), ``_base`` (the
shared state), ``_store`` (the class that puts them together); the stream cache is shared with the
PostgreSQL store (``stores._stream_cache``).
"""

from ._connection import SCHEMA_VERSION
from ._store import DuckDBStore

__all__ = ["SCHEMA_VERSION", "DuckDBStore"]
