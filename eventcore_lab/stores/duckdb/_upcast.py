"""Upcasting on DuckDB's columnar path: in SQL where the chain allows, in Python for the other rows only.

``events_table`` asks :func:`plan_upcasts` which stored (type, schema version) pairs of the selection are
out of date. A pair whose chain compiles to SQL (``Upcasters.compile_columnar``: field and type renames,
defaults, conversions given with their SQL) is upcast inside the same scan as the current rows, so the
read stays vectorised; it is first checked in SQL that every such row decodes as the current class, and
a pair with any row that would not is upcast in Python (which raises what the per-event path raises).
The other pairs' rows are upcast in Python, one by one, and joined back by position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from ...core.registry import EventRegistry
from ._batches import _sql_string


class _Compiled(Protocol):
    """A chain compiled to SQL (``eventcore_lab.evolution`` makes them; duck-typed to keep the import
    graph one-way)."""

    event_type: str

    def matches(self) -> str: ...

    def payload_struct(self, structure: Mapping[str, str]) -> str: ...

    def validation(self) -> tuple[str, str]: ...


@dataclass
class UpcastPlan:
    """How the out-of-date rows of one columnar read are brought up to date."""

    #: pairs upcast in SQL, by stored (type, schema version)
    compiled: dict[tuple[str, int], _Compiled] = field(default_factory=dict)
    #: pairs upcast in Python
    python: set[tuple[str, int]] = field(default_factory=set)
    #: the Python-upcast rows: (position, current type, current payload JSON)
    table: pa.Table | None = None
    #: the types the Python-upcast rows have now
    python_types: list[str] = field(default_factory=list)

    def stale(self) -> set[tuple[str, int]]:
        return set(self.compiled) | self.python

    def current_type(self, pair: tuple[str, int]) -> str | None:
        """The type rows of ``pair`` read as, when known without reading them (None: upcast in Python)."""
        if pair in self.compiled:
            return self.compiled[pair].event_type
        return None if pair in self.python else pair[0]

    def scan_filter(self, wanted_types: list[str] | None) -> str:
        """The condition on the main scan: no Python-upcast rows; with ``wanted_types``, the rows whose
        current type is wanted."""
        parts = []
        if self.python:
            parts.append(f"(event_type, schema_version) not in ({_pairs(self.python)})")
        if wanted_types is not None:
            compiled = [c for c in self.compiled.values() if c.event_type in wanted_types]
            unwanted = [c for c in self.compiled.values() if c.event_type not in wanted_types]
            kept = " or ".join(["event_type in (select unnest(?))", *(c.matches() for c in compiled)])
            parts.append(f"({kept})")
            parts += [f"not {c.matches()}" for c in unwanted]
        return " and ".join(parts)

    def type_sql(self) -> str:
        """The current type of a row of the main scan."""
        if not self.compiled:
            return "event_type"
        cases = " ".join(
            f"when {c.matches()} then {_sql_string(c.event_type)}" for c in self.compiled.values()
        )
        return f"case {cases} else event_type end"

    def payload_sql(self, structure: Mapping[str, str], structure_json: str) -> str:
        """The payload struct of a row of the main scan (``structure``: field -> DuckDB type)."""
        current = f"json_transform(payload, {structure_json})"
        if not self.compiled:
            return current
        cases = " ".join(
            f"when {c.matches()} then {c.payload_struct(structure)}" for c in self.compiled.values()
        )
        return f"case {cases} else {current} end"


def plan_upcasts(
    con: duckdb.DuckDBPyConnection,
    registry: EventRegistry,
    present: list[tuple[str, int]],
    condition: str,
    params: list[Any],
    wanted_types: list[str] | None,
) -> UpcastPlan | None:
    """Which present pairs are out of date and how each is upcast; None when none is."""
    evolution = registry.evolution
    if evolution is None:
        return None
    stale = [(t, v) for t, v in present if not evolution.is_current(t, v)]
    if not stale:
        return None
    plan = UpcastPlan()
    compile_columnar = getattr(evolution, "compile_columnar", None)
    for pair in stale:
        chain = None if compile_columnar is None else compile_columnar(*pair)
        if chain is None:
            plan.python.add(pair)
        else:
            plan.compiled[pair] = chain
    for pair, chain in list(plan.compiled.items()):
        types, invalid = chain.validation()
        refused = con.execute(
            f"select 1 from (select payload, unnest([{types}]) as __t from events where {condition} "
            f"and {chain.matches()}) where {invalid} limit 1",
            params,
        ).fetchall()
        if refused:
            del plan.compiled[pair]
            plan.python.add(pair)
    if plan.python:
        _upcast_in_python(con, registry, plan, condition, params, wanted_types)
    return plan


def _upcast_in_python(
    con: duckdb.DuckDBPyConnection,
    registry: EventRegistry,
    plan: UpcastPlan,
    condition: str,
    params: list[Any],
    wanted_types: list[str] | None,
) -> None:
    rows = con.execute(
        f"select position, event_type, payload::varchar, schema_version from events where {condition} "
        f"and (event_type, schema_version) in ({_pairs(plan.python)}) order by position",
        params,
    ).fetchall()
    positions, types, payloads = [], [], []
    for position, event_type, payload, version in rows:
        current_type, decoded = registry.read_event(event_type, payload, version)
        if wanted_types is not None and current_type not in wanted_types:
            continue
        positions.append(position)
        types.append(current_type)
        payloads.append(registry.encode(decoded).decode())
    plan.table = pa.table(
        {
            "position": pa.array(positions, pa.int64()),
            "event_type": pa.array(types, pa.string()),
            "payload": pa.array(payloads, pa.string()),
        }
    )
    plan.python_types = list(dict.fromkeys(types))


def _pairs(pairs: set[tuple[str, int]]) -> str:
    return ", ".join(f"({_sql_string(t)}, {int(v)})" for t, v in sorted(pairs))
