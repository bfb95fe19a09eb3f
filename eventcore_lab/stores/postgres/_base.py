"""The state every part of the PostgreSQL store shares (set by ``PostgresStore.__init__``).

The store is assembled in layers, one module per concern, each building on the ones before it:
connection and errors, migrations, notifications, reading, writing. This base names the attributes
they share, so that each module can be read (and type-checked) on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from psycopg import sql
from psycopg_pool import ConnectionPool

from ...core.registry import EventRegistry
from .._stream_cache import StreamCache


class _PostgresBase:
    """The attributes the layers of the store share."""

    schema: str
    registry: EventRegistry
    max_payload_bytes: int
    channel: str
    _dsn: str
    _where: str
    _connect_kwargs: dict[str, Any]
    _pool_timeout: float
    _pool_max: int
    _pool: ConnectionPool
    _q: sql.Identifier
    _sql_append: str
    _sql_read_all: str
    _sql_read_stream: str
    _sql_read_streams: str
    _sql_read_after: str
    _sql_read_within: str
    _sql_read_query: str
    _sql_version: str
    _sql_notify: str
    _sql_head: str
    _sql_settle: str
    _table: str
    _sql_window: str
    _sql_positions: str
    _migrated: bool
    _migrate_lock: threading.Lock
    _changed: threading.Condition
    _known_head: int
    _gaps: dict[int, str]
    _skipped: dict[int, int]
    _listener: threading.Thread | None
    _listening: threading.Event
    _notifier: threading.Thread | None
    _notify_wanted: threading.Condition
    _notify_pending: bool
    _notify_busy: bool
    _notify_streams: set[str] | None
    _token: str
    _cache: StreamCache | None
    _guess_unseen: bool
    _read_hook: Callable[[list[str]], None] | None
    _closed: threading.Event
