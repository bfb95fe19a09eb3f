"""Where the benchmark runs: machine description, package versions, and the PostgreSQL server to use."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

DSN_ENV = "EVENTCORE_DATABASE_URL"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PACKAGES = (
    "eventcore-lab",
    "eventsourcing",
    "msgspec",
    "duckdb",
    "psycopg",
    "psycopg-pool",
    "pandas",
    "pyarrow",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def describe_machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": package_versions(),
        "load_average_at_start": load_average(),
    }


def find_postgres(repo: Path) -> tuple[str | None, str]:
    """A reachable DSN the way CI finds one: ``$EVENTCORE_DATABASE_URL``, else 127.0.0.1:5432, else the
    ``scripts/ci_postgres.sh`` helper (which may start a throwaway cluster). Returns (dsn, how)."""
    candidates = []
    if os.environ.get(DSN_ENV):
        candidates.append((os.environ[DSN_ENV], f"${DSN_ENV}"))
    candidates.append((DEFAULT_DSN, "127.0.0.1:5432"))
    for dsn, how in candidates:
        if _answers(dsn):
            return dsn, how
    script = repo / "scripts" / "ci_postgres.sh"
    if script.exists():
        try:
            out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        for line in out.splitlines():
            if line.startswith(f"export {DSN_ENV}="):
                dsn = line.split("=", 1)[1].strip()
                if _answers(dsn):
                    return dsn, "scripts/ci_postgres.sh"
    return None, "no server found"


def _answers(dsn: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
        return True
    except Exception:
        return False


def pg_settings(dsn: str) -> dict[str, str]:
    """The DSN as the separate settings ``eventsourcing`` wants."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    return {
        "dbname": str(info.get("dbname", "postgres")),
        "host": str(info.get("host", "127.0.0.1")),
        "port": str(info.get("port", "5432")),
        "user": str(info.get("user", "postgres")),
        "password": str(info.get("password", "")),
    }


@contextlib.contextmanager
def scratch_postgres_store(prefix: str, *, up_to: int | None = None, **options: Any) -> Iterator[Any]:
    """A PostgresStore on a fresh schema named ``<prefix>_<random>`` migrated ``up_to`` a version (default:
    the latest), dropped afterwards."""
    import psycopg

    from eventcore_lab.stores.postgres import PostgresStore

    dsn, _how = find_postgres(Path(__file__).resolve().parent.parent)
    if dsn is None:
        raise SystemExit("no PostgreSQL server found (set EVENTCORE_DATABASE_URL)")
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(dsn, schema=schema, **options)
    try:
        store.migrate(up_to=up_to)
        yield store
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def scratch_schema(dsn: str) -> Iterator[str]:
    """A fresh schema name for one benchmark case, dropped (with everything in it) afterwards."""
    import uuid

    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
