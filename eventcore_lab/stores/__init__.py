"""Event stores: the protocol, the in-memory reference store, and the durable stores.

The durable stores are imported lazily, so that ``import eventcore_lab`` stays light and PostgreSQL
support is needed only by those who use it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidArgument
from ..core.registry import EventRegistry
from .base import (
    BulkExport,
    BulkImport,
    Checkpoints,
    ColumnarAccess,
    EventStore,
    SQLAccess,
    StreamListing,
    StreamsRead,
    Subscription,
)
from .chaos import ChaosStats, ChaosStore
from .memory import MemoryStore

if TYPE_CHECKING:
    from .duckdb import DuckDBStore
    from .postgres import PostgresStore

__all__ = [
    "BulkExport",
    "BulkImport",
    "ChaosStats",
    "ChaosStore",
    "Checkpoints",
    "ColumnarAccess",
    "DuckDBStore",
    "EventStore",
    "MemoryStore",
    "PostgresStore",
    "SQLAccess",
    "StreamListing",
    "StreamsRead",
    "Subscription",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "DuckDBStore":
        from .duckdb import DuckDBStore

        return DuckDBStore
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(
    url: str | os.PathLike[str] | None = None, *, registry: EventRegistry | None = None
) -> EventStore:
    """Open a store from a short description.

    - ``"memory"``: a new :class:`MemoryStore`;
    - ``"postgresql://..."`` (or ``postgres://``): a :class:`PostgresStore`;
    - ``"duckdb:path"``, ``"duckdb::memory:"`` or any other path: a :class:`DuckDBStore` file;
    - ``None``: ``$EVENTCORE_STORE`` if set, else the DuckDB file ``eventcore.duckdb``.

    Typed as an :class:`EventStore`; check optional features with the capability protocols of
    :mod:`.base` (``isinstance(store, SQLAccess)``) rather than by the store's class.
    """
    target = os.fspath(url) if url is not None else os.environ.get("EVENTCORE_STORE", "eventcore.duckdb")
    if not target.strip():
        raise InvalidArgument("store url is empty; use 'memory', a DuckDB file path or a postgresql:// URL")
    if target == "memory":
        return MemoryStore(registry=registry)
    if target.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(target, registry=registry)
    from .duckdb import DuckDBStore

    return DuckDBStore(target.removeprefix("duckdb:"), registry=registry)
