"""The log of an ``events`` table (DuckDB's own, or a view over rows fetched from another store) as an
Arrow table with payload fields expanded by DuckDB: what ``events_frame`` builds its columns from.

Columns: position, stream_id, version, event_type, recorded_at, event_id (16 bytes, big-endian),
correlation_id, causation_id, user_id, then the payload fields; rows in position order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import duckdb
import msgspec
import pyarrow as pa

from ._batches import _sql_string
from ._upcast import plan_upcasts


def expand_events(
    con: duckdb.DuckDBPyConnection,
    registry: Any,
    head: int,
    after: int,
    until: int | datetime | None,
    stream_ids: Iterable[str] | None,
    event_types: Iterable[str] | None,
    fields: Callable[[list[str]], Mapping[str, str] | None],
) -> pa.Table | None:
    """See ``DuckDBStore.events_table``; ``con`` has a table or view ``events`` with the DuckDB
    store's columns, ``head`` is the last position to read."""
    where: list[str] = ["position > ?", "position <= ?"]
    params: list[Any] = [after, head]
    if isinstance(until, datetime):
        where.append("position < coalesce((select min(position) from events where recorded_at > ?), ?)")
        params += [until, params[1] + 1]
    elif until is not None:
        where.append("position <= ?")
        params.append(until)
    if stream_ids is not None:
        where.append("stream_id in (select unnest(?))")
        params.append([str(s) for s in stream_ids])  # matched verbatim, like a filter in Python
    wanted_types = None if event_types is None else list(event_types)
    if wanted_types is not None and registry.evolution is None:
        where.append("event_type in (select unnest(?))")
        params.append(wanted_types)
        wanted_types = None
    condition = " and ".join(where)
    present = con.execute(
        f"select event_type, schema_version from events where {condition} "
        "group by event_type, schema_version order by min(position)",
        params,
    ).fetchall()
    plan = plan_upcasts(con, registry, present, condition, params, wanted_types)
    names = [
        name
        for name in (pair[0] if plan is None else plan.current_type(pair) for pair in present)
        if name is not None and (wanted_types is None or name in wanted_types)
    ]
    if plan is not None:
        names += plan.python_types
        scan_filter = plan.scan_filter(wanted_types)
        if scan_filter:
            condition += f" and {scan_filter}"
    elif wanted_types is not None:
        condition += " and event_type in (select unnest(?))"
    if wanted_types is not None:
        params.append(wanted_types)
    wanted = fields(list(dict.fromkeys(names)))
    if wanted is None:
        return None
    structure = _sql_string(msgspec.json.encode(dict(wanted)).decode()) if wanted else None
    envelope = (
        "select position, stream_id, version, EVENT_TYPE as event_type, recorded_at, "
        "event_id::blob as event_id, unnest(json_transform(metadata, "
        """'{"correlation_id":"VARCHAR","causation_id":"VARCHAR","user_id":"VARCHAR"}'))"""
    )
    payload = ""
    if structure:
        current = f"json_transform(payload, {structure})"
        payload = f", unnest({current if plan is None else plan.payload_sql(wanted, structure)})"
    event_type = "event_type" if plan is None else plan.type_sql()
    query = envelope.replace("EVENT_TYPE", event_type) + f"{payload} from events where {condition}"
    if plan is not None and plan.table is not None:
        # rows whose upcast needs Python: DuckDB still expands their payloads, so that both kinds
        # of rows get exactly the same column types
        con.register("eventcore_upcast", plan.table)
        fresh = f", unnest(json_transform(u.payload::json, {structure}))" if structure else ""
        query = (
            f"{query} union all "
            + envelope.replace("EVENT_TYPE", "u.event_type")
            + f"{fresh} from events join eventcore_upcast u using (position) order by position"
        )
    # No ORDER BY otherwise: DuckDB keeps insertion order, which is position order but for rare
    # groups mixing appends and file imports; sorting 1M rows would cost more than the whole scan.
    try:
        table = con.sql(query, params=params).to_arrow_table()
    except duckdb.Error:
        return None  # a payload DuckDB cannot read as declared (e.g. an int beyond 64 bits)
    finally:
        if plan is not None and plan.table is not None:
            con.unregister("eventcore_upcast")
    positions = table.column("position").to_numpy()
    if len(positions) > 1 and not (positions[1:] > positions[:-1]).all():
        table = table.sort_by("position")
    return table
