"""Every store kind (memory, a quiet chaos store, a DuckDB file, PostgreSQL), for test modules that show
one behaviour on all of them::

    @pytest.fixture(params=KINDS)
    def store(request, tmp_path):
        yield from open_store(request, tmp_path)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventcore_lab import MemoryStore
from eventcore_lab.stores.chaos import ChaosStore
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

KINDS = ["memory", "chaos", "duckdb", "postgres"]


def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Yield a fresh store of the kind ``request.param`` names, closed afterwards."""
    if request.param == "memory":
        with MemoryStore() as memory:
            yield memory
    elif request.param == "chaos":
        with ChaosStore(
            MemoryStore(), failure_probability=0, conflict_probability=0, latency=None, seed=1
        ) as chaos:
            yield chaos
    elif request.param == "duckdb":
        with DuckDBStore(tmp_path / "events.duckdb") as duck:
            yield duck
    else:
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        with PostgresStore(url, schema=schema, pool_max=12) as pg:
            yield pg
