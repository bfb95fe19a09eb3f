"""Checks that tie a model to reality: its specs run against the real commands, and a store's recorded
history is compared with what the model says can happen."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.tags import TAGS_ATTRIBUTE, tags_of
from .model import EventModel, SpecReport, SpecResult

#: Key of ``Metadata.custom`` under which tools (e.g. the command-runner widget) record the command name.
COMMAND_KEY = "command"


def run_specs(model: EventModel, store_factory: Callable[[], Any] | None = None) -> SpecReport:
    """Run each slice's specs; a spec also fails when it expects an event its command is not modelled
    to write, so a spec and the board cannot disagree silently."""
    results = []
    for piece, spec in model.specs:
        try:
            spec.verify(store_factory() if store_factory else None)
            problem = _off_board(model, spec)
        except AssertionError as failure:
            problem = str(failure)
        results.append(SpecResult(piece.name, spec.name, not problem, problem))
    return SpecReport(results)


def _off_board(model: EventModel, spec: Any) -> str:
    command = type(spec.command).__name__
    allowed = set(model.targets(command))
    for stream_id, event in spec.expected or ():
        name = type(event).__name__
        if name not in allowed:
            return f"scenario {spec.name!r} expects {command} to write {name}, which the model does not show"
        lanes = model.elements[name].lanes
        if model.category(stream_id) not in lanes:
            return (
                f"scenario {spec.name!r} expects {name} on {stream_id!r}, but the model puts {name} in "
                f"the {', '.join(lanes)} lane(s)"
            )
    return ""


@dataclass
class HistoryReport:
    """Where recorded history and the model disagree. ``ok`` ignores what is merely not yet exercised."""

    events_checked: int
    unknown_events: dict[str, int] = field(default_factory=dict)
    unknown_streams: dict[str, list[str]] = field(default_factory=dict)
    misplaced: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Events stored without a tag their class derives (``tags_from``), by type: a query-based command
    #: would not see them (history imported from before the class declared its tags, for instance).
    untagged: dict[str, int] = field(default_factory=dict)
    unexercised_commands: list[str] = field(default_factory=list)
    unseen_events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unknown_events or self.unknown_streams or self.misplaced or self.untagged)

    def lines(self) -> list[str]:
        out = [f"{self.events_checked} recorded events checked: {'consistent' if self.ok else 'DRIFT'}"]
        out += [f"event type not in the model: {t} ({n}x)" for t, n in self.unknown_events.items()]
        out += [
            f"stream category not in the model: {c} (e.g. {', '.join(s[:3])})"
            for c, s in self.unknown_streams.items()
        ]
        out += [
            f"{t} recorded in {c} streams, which the model does not show ({n}x)"
            for (t, c), n in self.misplaced.items()
        ]
        out += [
            f"{t} stored without the tags its class declares, so queries miss it ({n}x)"
            for t, n in self.untagged.items()
        ]
        out += [f"command never exercised: {c}" for c in self.unexercised_commands]
        out += [f"event never recorded: {e}" for e in self.unseen_events]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines()[1:])
        return f"<b>{html.escape(self.lines()[0])}</b><ul>{items}</ul>"


def check_history(model: EventModel, events: Any) -> HistoryReport:
    """Compare recorded events (a store or an iterable of StoredEvent) with ``model``.

    Stream ids are put in lanes by ``model.category``; an event stored without a tag its class derives
    is reported (``untagged``), since a query-based command would decide without it.

    A command counts as exercised when an event's ``metadata.custom["command"]`` names it, when one commit
    (consecutive positions sharing a correlation id) wrote only events that command alone can write, or
    when it is the only command that writes one of the recorded event types.
    """
    recorded: list[Any] = list(events.read_all() if hasattr(events, "read_all") else events)
    report = HistoryReport(len(recorded))
    known = model.events
    seen_types: set[str] = set()
    for event in recorded:
        seen_types.add(event.event_type)
        lane = model.category(event.stream_id)
        if event.event_type not in known:
            report.unknown_events[event.event_type] = report.unknown_events.get(event.event_type, 0) + 1
        elif lane not in model.lanes:
            streams = report.unknown_streams.setdefault(lane, [])
            if event.stream_id not in streams:
                streams.append(event.stream_id)
        elif lane not in known[event.event_type].lanes:
            key = (event.event_type, lane)
            report.misplaced[key] = report.misplaced.get(key, 0) + 1
        if _lacks_tags(event):
            report.untagged[event.event_type] = report.untagged.get(event.event_type, 0) + 1
    exercised = _exercised(model, recorded)
    report.unexercised_commands = [c for c in model.commands if c not in exercised]
    report.unseen_events = [e for e in known if e not in seen_types and "?" not in known[e].lanes]
    return report


def _lacks_tags(event: Any) -> bool:
    """Whether ``event`` misses a tag its payload's class derives from its fields."""
    if not getattr(type(event.payload), TAGS_ATTRIBUTE, ()):
        return False
    expected = tags_of(event.payload, (), f"of event {event.event_id}")
    return not set(expected) <= set(getattr(event, "tags", ()))


def _exercised(model: EventModel, recorded: list[Any]) -> set[str]:
    writers: dict[str, set[str]] = {}
    for command in model.commands:
        for event in model.targets(command):
            writers.setdefault(event, set()).add(command)
    found: set[str] = set()
    for event in recorded:
        name = (event.metadata.custom or {}).get(COMMAND_KEY)
        if name in model.commands:
            found.add(name)
        if len(writers.get(event.event_type, ())) == 1:
            found |= writers[event.event_type]
    for commit in commits_of(recorded):
        types = {e.event_type for e in commit}
        candidates = [c for c in model.commands if types <= set(model.targets(c))]
        if len(candidates) == 1:
            found.add(candidates[0])
    return found


def commits_of(recorded: Iterable[Any]) -> list[list[Any]]:
    """Recorded events grouped by the append that wrote them: consecutive positions sharing correlation
    and causation ids (the executor gives every event of one command the same metadata)."""
    groups: list[list[Any]] = []
    for event in sorted(recorded, key=lambda e: e.position):
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and event.position == last.position + 1
            and event.metadata.correlation_id == last.metadata.correlation_id
            and event.metadata.causation_id == last.metadata.causation_id
        ):
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups
