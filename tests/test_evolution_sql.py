"""Upcasting in SQL on DuckDB's columnar path gives what the per-event Python path gives, kind by kind.

Each property writes a random history with version-1 classes, deploys new classes and one kind of
upcaster, and compares ``events_frame`` (the columnar path, upcasting in SQL) with ``read_all`` (per
event, upcasting in Python). Each also checks that the SQL path really ran: the chain compiles and the
plan for the read has no pair left to Python.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventcore_lab.core.errors import SerializationError
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.registry import EventRegistry
from eventcore_lab.evolution import Upcasters
from eventcore_lab.projections import events_frame
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.duckdb._upcast import plan_upcasts

MODULE = "evolution_sql"
NO_O = 7  # the v1 class's default for ``o``, left out of the stored JSON (omit_defaults)


def thing_v1() -> type:
    """Version 1: ``n`` (int), ``s`` (str), ``o`` (int, absent from the JSON when it is 7)."""
    return msgspec.defstruct(
        "Thing",
        [("n", int), ("s", str), ("o", int, NO_O)],
        module=MODULE,
        frozen=True,
        kw_only=True,
        omit_defaults=True,
    )


def current(name: str, fields: list[tuple[Any, ...]], version: int = 2) -> type:
    return msgspec.defstruct(
        name, fields, module=MODULE, frozen=True, kw_only=True, namespace={"schema_version": version}
    )


ascii_text = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ", max_size=8)
rows = st.lists(
    st.tuples(st.integers(-(2**40), 2**40), ascii_text, st.sampled_from([NO_O, -1, 0, 123])),
    min_size=1,
    max_size=12,
)


def compare(
    rows: list[tuple[int, str, int]],
    new_classes: list[tuple[str, type]],
    chains: Callable[[Upcasters], None],
) -> None:
    """Write ``rows`` at v1, deploy ``new_classes`` and ``chains``, append the first upcast events again
    (so that current rows and old ones share the scan), then read both ways and compare every row's
    type and fields."""
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "events.duckdb"
        old = EventRegistry()
        v1 = old.register(thing_v1(), "Thing")
        with DuckDBStore(path, registry=old, show_progress=False) as store:
            for i, (n, s, o) in enumerate(rows):
                store.append([EventToWrite(f"thing-{i % 3}", v1(n=n, s=s, o=o))])
        new = EventRegistry()
        for name, cls in new_classes:
            new.register(cls, name)
        upcasters = Upcasters(new)
        chains(upcasters)
        upcasters.install()
        with DuckDBStore(path, registry=new, show_progress=False) as store:
            store.append([EventToWrite(e.stream_id, e.payload) for e in store.read_all(limit=3)])
            assert upcasters.compile_columnar("Thing", 1) is not None
            with store.connection() as con:
                present = con.execute("select distinct event_type, schema_version from events").fetchall()
                plan = plan_upcasts(con, new, present, "true", [], None)
            assert plan is not None and set(plan.compiled) == {("Thing", 1)} and not plan.python

            per_event = store.read_all()
            frame = events_frame(store, progress=False)
            assert store.events_table(fields=lambda types: {}) is not None  # the columnar path ran
        assert frame["position"].tolist() == [e.position for e in per_event]
        assert frame["event_type"].tolist() == [e.event_type for e in per_event]
        for column in {name for _, cls in new_classes for name in cls.__struct_fields__}:
            want = [getattr(e.payload, column, None) for e in per_event]
            got = [None if isinstance(v, float) and math.isnan(v) else v for v in frame[column].tolist()]
            assert got == want, column


@settings(max_examples=25, deadline=None)
@given(rows, st.sampled_from(["n", "s", "o"]), st.booleans())
def test_a_field_rename_in_sql_equals_python(rows: list[tuple[int, str, int]], old: str, clash: bool) -> None:
    """``o`` is absent from some stored rows (absent stays absent, and the class default fills it);
    with ``clash`` the new name is one the payload already has, which the renamed value replaces."""
    new_name = {"n": "o", "s": "o", "o": "n"}[old] if clash else f"{old}2"
    spec: dict[str, tuple[Any, ...]] = {"n": (int,), "s": (str,), "o": (int, NO_O)}
    fields = [(f, *spec[f]) for f in ("n", "s", "o") if f not in (old, new_name)]
    fields.append((new_name, *spec[old]))
    thing = current("Thing", fields)
    compare(rows, [("Thing", thing)], lambda u: u.rename_field("Thing", 1, old, new_name))


@settings(max_examples=25, deadline=None)
@given(rows, st.integers(-5, 5), st.sampled_from(["k", "o"]))
def test_a_field_default_in_sql_equals_python(
    rows: list[tuple[int, str, int]], default: int, field: str
) -> None:
    """``k`` is new and required (every old row gets the default); ``o`` is present in some rows and
    absent in others (only those get it)."""
    fields: list[tuple[Any, ...]] = [("n", int), ("s", str), ("o", int)]  # o: required now
    if field == "k":
        fields[2:] = [("o", int, NO_O), ("k", int)]
    thing = current("Thing", fields)
    compare(rows, [("Thing", thing)], lambda u: u.add_field("Thing", 1, field, default))


CONVERSIONS: dict[str, tuple[str, type, Callable[[Any], Any], str]] = {
    "affine": ("n", int, lambda v: v * 3 - 11, "{value}::BIGINT * 3 - 11"),
    "int to text": ("n", str, str, "CAST({value}::BIGINT AS VARCHAR)"),
    "int to float": ("n", float, lambda v: v / 4, "{value}::DOUBLE / 4"),
    "upper": ("s", str, str.upper, "upper({value} ->> '$')"),
    "length": ("s", int, len, "length({value} ->> '$')"),
    "absent stays absent": ("o", int, lambda v: v + 1, "{value}::BIGINT + 1"),
}


@settings(max_examples=15, deadline=None)
@given(rows, st.sampled_from(sorted(CONVERSIONS)))
def test_a_conversion_given_with_its_sql_equals_python(rows: list[tuple[int, str, int]], name: str) -> None:
    field, kind, python, sql = CONVERSIONS[name]
    fields: list[tuple[Any, ...]] = [
        (f, kind if f == field else {"n": int, "s": str, "o": int}[f]) for f in ("n", "s", "o")
    ]
    fields[2] = ("o", int, NO_O)  # every conversion keeps ``o`` an int
    thing = current("Thing", fields)
    compare(rows, [("Thing", thing)], lambda u: u.convert_field("Thing", 1, field, python, sql=sql))


@settings(max_examples=15, deadline=None)
@given(rows)
def test_a_type_rename_in_sql_equals_python(rows: list[tuple[int, str, int]]) -> None:
    """Old ``Thing`` rows read as ``Item``, next to ``Item`` rows written by the new code."""
    item = current("Item", [("n", int), ("s", str), ("o", int, NO_O)])
    compare(rows, [("Item", item)], lambda u: u.rename_type("Thing", 1, "Item"))


@settings(max_examples=20, deadline=None)
@given(
    rows,
    st.lists(st.sampled_from(["rename n", "rename back", "default k", "convert n", "retype"]), max_size=5),
)
def test_a_random_chain_of_sql_steps_equals_python(
    rows: list[tuple[int, str, int]], kinds: list[str]
) -> None:
    """Chains of every kind in any order (a field renamed away and back, converted in between, the type
    renamed anywhere in the chain)."""
    fields: dict[str, Any] = {"n": int, "s": str, "o": (int, NO_O)}
    name, steps = "Thing", []
    for kind in kinds:
        if kind == "rename n" and "n" in fields:
            steps.append((name, "rename_field", ("n", "m")))
            fields["m"] = fields.pop("n")
        elif kind == "rename back" and "m" in fields:
            steps.append((name, "rename_field", ("m", "n")))
            fields["n"] = fields.pop("m")
        elif kind == "default k" and "k" not in fields:
            steps.append((name, "add_field", ("k", 4)))
            fields["k"] = int
        elif kind == "convert n" and "n" in fields:
            steps.append((name, "convert_field", ("n", lambda v: v - 2, "{value}::BIGINT - 2")))
        elif kind == "retype" and name == "Thing":  # a chain may not come back to a name it left
            steps.append((name, "rename_type", ("Item",)))
            name = "Item"
    if not steps:
        steps.append((name, "add_field", ("k", 4)))
        fields["k"] = int
    spec = [(f, *(t if isinstance(t, tuple) else (t,))) for f, t in fields.items()]
    classes = [(name, current(name, spec, len(steps) + 1))]

    def chain(upcasters: Upcasters) -> None:
        for version, (type_name, method, args) in enumerate(steps, 1):
            if method == "convert_field":
                upcasters.convert_field(type_name, version, args[0], args[1], sql=args[2])
            else:
                getattr(upcasters, method)(type_name, version, *args)

    compare(rows, classes, chain)


def test_rows_sql_cannot_upcast_exactly_are_left_to_python_which_refuses_them(tmp_path: Path) -> None:
    """A rename into a required field that some old rows lack: the SQL check finds them, so the columnar
    path does not make up a value; the pair goes to Python, which fails as the per-event path does."""
    old = EventRegistry()
    v1 = old.register(thing_v1(), "Thing")
    with DuckDBStore(tmp_path / "e.duckdb", registry=old, show_progress=False) as store:
        store.append([EventToWrite("a", v1(n=1, s="x", o=3)), EventToWrite("a", v1(n=2, s="y"))])
    new = EventRegistry()
    new.register(current("Thing", [("n", int), ("s", str), ("p", int)]), "Thing")
    chains = Upcasters(new)
    chains.rename_field("Thing", 1, "o", "p")
    chains.install()
    assert chains.compile_columnar("Thing", 1) is not None  # the chain has an SQL form ...
    missing = "missing required field `p`"
    with DuckDBStore(tmp_path / "e.duckdb", registry=new, show_progress=False) as store:
        with store.connection() as con, pytest.raises(SerializationError, match=missing):
            plan_upcasts(con, new, [("Thing", 1)], "true", [], None)  # ... but these rows go to Python
        with pytest.raises(SerializationError, match=missing):
            store.read_all()
        with pytest.raises(SerializationError, match=missing):
            events_frame(store, progress=False)


def test_a_conversion_without_sql_and_a_strict_schema_stay_in_python() -> None:
    registry = EventRegistry()
    registry.register(current("Thing", [("n", int)]), "Thing")
    chains = Upcasters(registry)
    chains.convert_field("Thing", 1, "n", abs)
    assert chains.compile_columnar("Thing", 1) is None
    strict = Upcasters(registry, strict=True)
    strict.rename_field("Thing", 1, "m", "n")
    assert strict.compile_columnar("Thing", 1) is None
    weak = Upcasters(registry)
    weak.rename_field("Thing", 1, "m", "n")
    assert weak.compile_columnar("Thing", 1) is not None


def test_a_conversion_whose_sql_gives_no_value_leaves_its_rows_to_python(tmp_path: Path) -> None:
    """The SQL of a conversion turns a stored null into no value, where the Python function keeps a
    null: the check sees it, the pair is upcast in Python, and both paths agree."""
    fields: list[tuple[Any, ...]] = [("x", int | None)]
    old = EventRegistry()
    v1 = old.register(msgspec.defstruct("Thing", fields, module=MODULE, frozen=True, kw_only=True), "Thing")
    with DuckDBStore(tmp_path / "e.duckdb", registry=old, show_progress=False) as store:
        store.append([EventToWrite("a", v1(x=None)), EventToWrite("a", v1(x=3))])
    new = EventRegistry()
    new.register(current("Thing", fields), "Thing")
    chains = Upcasters(new)
    chains.convert_field("Thing", 1, "x", lambda v: None if v is None else v * 2, sql="{value}::BIGINT * 2")
    chains.install()
    with DuckDBStore(tmp_path / "e.duckdb", registry=new, show_progress=False) as store:
        with store.connection() as con:
            plan = plan_upcasts(con, new, [("Thing", 1)], "true", [], None)
        assert plan is not None and plan.python == {("Thing", 1)} and not plan.compiled
        frame = events_frame(store, progress=False)
        per_event = [e.payload.x for e in store.read_all()]
    assert per_event == [None, 6]
    assert [None if pd.isna(v) else v for v in frame["x"].tolist()] == per_event


def test_a_class_that_checks_itself_on_decode_stays_in_python() -> None:
    class Checked(msgspec.Struct, frozen=True):
        schema_version = 2
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    registry = EventRegistry()
    registry.register(Checked, "Checked")
    chains = Upcasters(registry)
    chains.rename_field("Checked", 1, "m", "n")
    assert chains.compile_columnar("Checked", 1) is None
