"""Can the current code read this history? Answered before deploying, per (event type, schema version)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..core.errors import EventCoreError
from ..core.registry import EventRegistry, RetiredEvent, UnknownEvent
from ..modeling.derive import consumed_events
from ..stores.base import EventStore
from ._scan import scan
from ._upcasters import Upcasters

#: The columns of :attr:`CompatibilityReport.frame`, in order.
REPORT_COLUMNS = (
    "event_type",
    "schema_version",
    "events",
    "first_position",
    "registered",
    "current_version",
    "upcast_steps",
    "reads_as",
    "sampled",
    "decoded",
    "readable",
    "problem",
    "consumers",
)


@dataclass
class CompatibilityReport:
    """One row per (event type, schema version) stored; ``ok`` when every row is readable."""

    frame: pd.DataFrame
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line per problem, or a line saying the history is readable."""
        if self.ok:
            events = int(self.frame["events"].sum())
            return f"compatible: {events} events in {len(self.frame)} (type, version) pairs"
        return "incompatible:\n" + "\n".join(f"  {p}" for p in self.problems)


@dataclass
class _Pair:
    events: int = 0
    first_position: int = 0
    samples: list[bytes] = field(default_factory=list)


def check_compatibility(
    store: EventStore,
    registry: EventRegistry | None = None,
    *,
    upcasters: Upcasters | None = None,
    consumers: Iterable[Any] = (),
    sample: int = 20,
) -> CompatibilityReport:
    """Scan ``store`` and say, for every (type, version) it holds, whether this code can read it.

    ``registry`` is the code's registry (default: the store's); ``upcasters`` the chains to judge
    (default: those installed on the registry). Each pair is checked for a registered class, a complete
    upcaster chain, and by decoding up to ``sample`` stored payloads (the first ones). ``consumers`` are
    projections and commands (classes or instances); the report names those that read each type.
    Nothing is written; run it while nothing writes to the store.
    """
    registry = registry or store.registry
    if upcasters is None and isinstance(registry.evolution, Upcasters):
        upcasters = registry.evolution
    pairs: dict[tuple[str, int], _Pair] = {}
    for batch in scan(store):
        for raw in batch:
            pair = pairs.get((raw.event_type, raw.schema_version))
            if pair is None:
                pair = pairs[(raw.event_type, raw.schema_version)] = _Pair(first_position=raw.event.position)
            pair.events += 1
            if len(pair.samples) < sample:
                pair.samples.append(raw.raw)
    readers = _consumers_by_type(consumers, registry)
    rows, problems = [], []
    for (event_type, version), pair in sorted(pairs.items(), key=lambda item: item[1].first_position):
        row = _judge(registry, upcasters, event_type, version, pair)
        row["consumers"] = ", ".join(readers.get(row["reads_as"], ()))
        rows.append(row)
        if not row["readable"]:
            problems.append(f"{event_type} v{version} ({pair.events} events): {row['problem']}")
    frame = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    frame["current_version"] = frame["current_version"].astype("Int64")
    return CompatibilityReport(frame, problems)


def _judge(
    registry: EventRegistry, upcasters: Upcasters | None, event_type: str, version: int, pair: _Pair
) -> dict[str, Any]:
    steps = 0
    if upcasters is not None:
        steps = upcasters.chain_length(event_type, version)
    registered = registry.knows(event_type)
    current = getattr(registry.event_class(event_type), "schema_version", 1) if registered else None
    decoded, reads_as, problem = 0, event_type, ""
    if not registered and not steps:
        problem = f"type {event_type!r} is not registered and no upcaster reads it"
    elif current is not None and version < current and not steps:
        problem = f"stored at v{version} but the class is at v{current}, and no upcaster starts at v{version}"
    for raw in [] if problem else pair.samples:
        try:
            if upcasters is not None and not upcasters.is_current(event_type, version):
                reads_as, payload = upcasters.upcast_payload(event_type, version, raw)
            else:
                payload = registry.decode(event_type, raw) if registered else UnknownEvent(event_type, raw)
        except EventCoreError as exc:
            problem = problem or exc.message
            continue
        if type(payload) is RetiredEvent:
            reads_as = f"retired {payload.event_type}"
        elif isinstance(payload, UnknownEvent):
            problem = problem or _unknown_problem(event_type, version, payload)
            continue
        decoded += 1
    readable = not problem and decoded == len(pair.samples)
    return {
        "event_type": event_type,
        "schema_version": version,
        "events": pair.events,
        "first_position": pair.first_position,
        "registered": registered,
        "current_version": current,
        "upcast_steps": steps,
        "reads_as": reads_as,
        "sampled": len(pair.samples),
        "decoded": decoded,
        "readable": readable,
        "problem": problem,
    }


def _unknown_problem(event_type: str, version: int, payload: UnknownEvent) -> str:
    if payload.event_type == event_type:
        return f"type {event_type!r} is not registered and no upcaster reads it"
    return (
        f"upcast to {payload.event_type!r} v{payload.schema_version}, which is not registered "
        f"(stored as {event_type!r} v{version})"
    )


def _consumers_by_type(consumers: Iterable[Any], registry: EventRegistry) -> dict[str, list[str]]:
    names = {registry.event_class(name): name for name in registry}
    found: dict[str, list[str]] = {}
    for consumer in consumers:
        name = consumer.__name__ if isinstance(consumer, type) else type(consumer).__name__
        for cls in consumed_events(consumer):
            if cls in names:
                found.setdefault(names[cls], []).append(name)
    return found
