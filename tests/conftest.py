"""Shared fixtures for the test suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# -- PostgreSQL -------------------------------------------------------------------------------------
# Tests get the server from EVENTCORE_DATABASE_URL. Without it they skip locally, but fail in CI (env CI
# set): CI must never pass by silently skipping PostgreSQL.

PG_ENV = "EVENTCORE_DATABASE_URL"


def pg_url_or_skip() -> str:
    """The PostgreSQL URL for tests; skips (locally) or fails (CI) when none is configured."""
    url = os.environ.get(PG_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{PG_ENV} is not set in CI; PostgreSQL tests must run against a real server")
    pytest.skip(f"{PG_ENV} is not set; e.g. export {PG_ENV}=postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_url() -> str:
    return pg_url_or_skip()


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name for one test; the schema is dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"ectest_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
