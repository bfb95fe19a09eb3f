"""Property: folding an upcast history equals folding the same history written at the latest version."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.registry import EventRegistry
from eventcore_lab.evolution import Upcasters
from eventcore_lab.stores.memory import MemoryStore

Op = tuple[Any, ...]


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[str], list[Op]]:
    """Starting fields and a chain of rename / split / merge / convert steps over them."""
    fields = [f"f{i}" for i in range(draw(st.integers(1, 3)))]
    start = list(fields)
    ops: list[Op] = []
    for step in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["rename", "split", "convert", "merge"]))
        if kind == "merge" and len(fields) < 2:
            kind = "rename"
        source = draw(st.sampled_from(fields))
        if kind == "rename":
            ops.append(("rename", source, f"r{step}"))
            fields[fields.index(source)] = f"r{step}"
        elif kind == "split":
            ops.append(("split", source, f"h{step}", f"l{step}"))
            fields.remove(source)
            fields += [f"h{step}", f"l{step}"]
        elif kind == "convert":
            ops.append(("convert", source, draw(st.integers(-3, 3))))
        else:
            other = draw(st.sampled_from([f for f in fields if f != source]))
            ops.append(("merge", source, other, f"m{step}"))
            fields.remove(source)
            fields.remove(other)
            fields.append(f"m{step}")
    return start, ops


def apply_directly(op: Op, data: dict[str, int]) -> dict[str, int]:
    """The reference meaning of each step, written independently of the library's builders."""
    out = dict(data)
    if op[0] == "rename":
        out[op[2]] = out.pop(op[1])
    elif op[0] == "split":
        value = out.pop(op[1])
        out[op[2]], out[op[3]] = divmod(value, 10)
    elif op[0] == "convert":
        out[op[1]] = out[op[1]] * op[2] + 1
    else:
        out[op[3]] = out.pop(op[1]) - out.pop(op[2])
    return out


def register(chain: Upcasters, version: int, op: Op) -> None:
    if op[0] == "rename":
        chain.rename_field("Measured", version, op[1], op[2])
    elif op[0] == "split":
        hi, lo = op[2], op[3]
        chain.split_field("Measured", version, op[1], lambda v, hi=hi, lo=lo: {hi: v // 10, lo: v % 10})
    elif op[0] == "convert":
        chain.convert_field("Measured", version, op[1], lambda v, k=op[2]: v * k + 1)
    else:
        chain.merge_fields("Measured", version, [op[1], op[2]], op[3], lambda a, b: a - b)


def measured(fields: list[str], version: int) -> type:
    return msgspec.defstruct(
        "Measured",
        [(name, int) for name in fields],
        module="evolution_property",
        frozen=True,
        kw_only=True,
        namespace={"schema_version": version},
    )


def fold(events: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Per stream, the payloads in order (a fold that keeps everything, so nothing can hide)."""
    state: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        state.setdefault(event.stream_id, []).append(msgspec.to_builtins(event.payload))
    return state


@settings(max_examples=60, deadline=None)
@given(
    chains(),
    st.lists(
        st.tuples(st.integers(0, 2), st.lists(st.integers(-1000, 1000), min_size=3, max_size=3)), max_size=15
    ),
)
def test_folding_an_upcast_history_equals_folding_it_written_at_the_latest_version(
    chain: tuple[list[str], list[Op]], history: list[tuple[int, list[int]]]
) -> None:
    start, ops = chain
    old = EventRegistry()
    first = old.register(measured(start, 1), "Measured")
    store = MemoryStore(registry=old)
    latest_payloads = []
    for stream, values in history:
        data = dict(zip(start, values, strict=False))
        store.append([EventToWrite(f"s-{stream}", first(**data))])
        for op in ops:
            data = apply_directly(op, data)
        latest_payloads.append((f"s-{stream}", data))

    new = EventRegistry()
    final_fields = list(latest_payloads[0][1]) if latest_payloads else []
    if not latest_payloads:  # still build the latest class from the chain, for the install check
        data = dict.fromkeys(start, 0)
        for op in ops:
            data = apply_directly(op, data)
        final_fields = list(data)
    latest = new.register(measured(final_fields, 1 + len(ops)), "Measured")
    upcasters = Upcasters(new)
    for version, op in enumerate(ops, 1):
        register(upcasters, version, op)
    upcasters.install()
    store.registry = new  # the new code is deployed over the old history

    written_latest = MemoryStore(registry=new)
    for stream_id, data in latest_payloads:
        written_latest.append([EventToWrite(stream_id, latest(**data))])

    assert fold(store.read_all()) == fold(written_latest.read_all())
    streams = sorted({sid for sid, _ in latest_payloads})
    assert fold(store.read_streams(streams).events) == fold(written_latest.read_streams(streams).events)


@settings(max_examples=12, deadline=None)
@given(chains(), st.lists(st.lists(st.integers(-1000, 1000), min_size=3, max_size=3), min_size=1, max_size=8))
def test_a_duckdb_file_reopened_by_new_code_reads_what_the_chain_computes(
    chain: tuple[list[str], list[Op]], history: list[list[int]]
) -> None:
    """The same property through DuckDB's JSON decode path (a reopened file, nothing cached)."""
    import tempfile
    from pathlib import Path

    from eventcore_lab.stores.duckdb import DuckDBStore

    start, ops = chain
    expected = []
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "events.duckdb"
        old = EventRegistry()
        first = old.register(measured(start, 1), "Measured")
        with DuckDBStore(path, registry=old) as store:
            for values in history:
                data = dict(zip(start, values, strict=False))
                store.append([EventToWrite("s", first(**data))])
                for op in ops:
                    data = apply_directly(op, data)
                expected.append(data)
        new = EventRegistry()
        new.register(measured(list(expected[0]), 1 + len(ops)), "Measured")
        upcasters = Upcasters(new)
        for version, op in enumerate(ops, 1):
            register(upcasters, version, op)
        upcasters.install()
        with DuckDBStore(path, registry=new) as store:
            assert [msgspec.to_builtins(e.payload) for e in store.read_all()] == expected
