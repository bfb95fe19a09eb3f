"""The bookkeeping tables of durable read models in one PostgreSQL schema, and their physical names.

One schema holds, per read model: the row in ``ec_readmodels`` (live generation, fold version, partition
count), per-generation partition checkpoints, partition leases with fencing tokens, the workers seen
recently, and dead letters. A read model's own tables exist once per generation
(``<name>__g<gen>__<table>``); a view ``<name>__<table>`` always shows the live generation, so readers
never need to know which one that is.
"""

from __future__ import annotations

import re

from ._errors import ReadModelError

_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS {s}.ec_readmodels (
    name TEXT PRIMARY KEY,
    live INT NOT NULL,
    version INT NOT NULL,
    partitions INT NOT NULL,
    building INT,
    swapped_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {s}.ec_checkpoints (
    name TEXT NOT NULL, generation INT NOT NULL, partition INT NOT NULL, position BIGINT NOT NULL,
    PRIMARY KEY (name, generation, partition));
CREATE TABLE IF NOT EXISTS {s}.ec_leases (
    name TEXT NOT NULL, partition INT NOT NULL, owner TEXT, token BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity', claimed_at TIMESTAMPTZ,
    PRIMARY KEY (name, partition));
CREATE TABLE IF NOT EXISTS {s}.ec_members (
    name TEXT NOT NULL, owner TEXT NOT NULL, seen_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, owner));
CREATE TABLE IF NOT EXISTS {s}.ec_dead_letters (
    name TEXT NOT NULL, generation INT NOT NULL, position BIGINT NOT NULL, partition INT NOT NULL,
    stream_id TEXT NOT NULL, version BIGINT NOT NULL, event_type TEXT NOT NULL, error TEXT NOT NULL,
    attempts INT NOT NULL, status TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (name, generation, position));
"""


def check_schema(schema: object) -> str:
    if not isinstance(schema, str) or not _SCHEMA.match(schema):
        raise ReadModelError(f"schema must be a plain SQL identifier (letters, digits, _), got {schema!r}")
    return schema


class Names:
    """Qualified names for one read model in one schema."""

    def __init__(self, schema: str, name: str) -> None:
        self.schema = check_schema(schema)
        self.name = name
        self.readmodels = f"{schema}.ec_readmodels"
        self.checkpoints = f"{schema}.ec_checkpoints"
        self.leases = f"{schema}.ec_leases"
        self.members = f"{schema}.ec_members"
        self.dead_letters = f"{schema}.ec_dead_letters"

    def table(self, generation: int, table: str) -> str:
        return f"{self.schema}.{self.name}__g{generation}__{table}"

    def view(self, table: str) -> str:
        return f"{self.schema}.{self.name}__{table}"

    def mapping(self, generation: int, tables: list[str]) -> dict[str, str]:
        """What ``{table}`` in a statement becomes for ``generation``."""
        return {table: self.table(generation, table) for table in tables}


def check_lengths(name: str, tables: list[str]) -> None:
    """PostgreSQL cuts identifiers at 63 bytes, which would silently merge generations; refuse instead."""
    for table in tables:
        if len(f"{name}__g999999__{table}") > 63:
            raise ReadModelError(
                f"projection name {name!r} and table {table!r} are too long together for PostgreSQL "
                "identifiers (keep name + table under 50 characters)"
            )
