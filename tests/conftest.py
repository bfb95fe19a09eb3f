"""Shared fixtures for the test suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# -- PostgreSQL -------------------------------------------------------------------------------------
# Tests get the server from EVENTCORE_DATABASE_URL. Without it they fail with a message saying how to
# get one (scripts/test.sh does it): a PostgreSQL test never passes by being skipped.

PG_ENV = "EVENTCORE_DATABASE_URL"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL URL for tests."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.fail(
            f"{PG_ENV} is not set: PostgreSQL tests need a real server. Run scripts/test.sh, or "
            f'eval "$(bash scripts/ci_postgres.sh)" before pytest'
        )
    return url


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name for one test; the schema is dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"ectest_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
