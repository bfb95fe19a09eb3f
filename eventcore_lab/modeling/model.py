"""An event model: events, commands, read models and automations on a timeline, cut into slices.

The model is plain data. It can be written by hand (a workshop's sticky notes) or derived from code
(:func:`~eventcore_lab.modeling.derive.derive_model`); either way it is drawn the same way, its slices
carry given/when/then specs that run against the real commands, and it can be compared with what a store
actually recorded.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InvalidFormat


def category(stream_id: str) -> str:
    """The swimlane of a stream: the text before its first ``-`` (``account-7`` -> ``account``).

    Ids of other shapes (``student-42-name``, whose lane is ``student-name``) need the domain's own
    function: pass it as ``derive_model(..., category=...)`` or define ``stream_category`` in the module.
    """
    text = str(stream_id).strip()
    head, sep, _ = text.partition("-")
    return head if sep and head else text


_by_first_dash = category


class Kind(enum.StrEnum):
    """The four kinds of sticky note on an event-modeling board."""

    EVENT = "event"
    COMMAND = "command"
    READ_MODEL = "read model"
    AUTOMATION = "automation"


@dataclass
class Element:
    """One sticky note. ``lanes`` are the stream categories an event lands in (empty for the others)."""

    kind: Kind
    name: str
    lanes: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    doc: str = ""
    source: Any = None  # the class or object it was derived from, if any
    #: For a command deciding by query: what it reads, one line per query item ("types [tags]").
    boundary: tuple[str, ...] = ()
    #: For an event: the tag templates its class declares (``tags_from``), e.g. ``course:{course_id}``.
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Flow:
    """An arrow: command -> event (writes), event -> read model (feeds), read model -> automation
    (watched by), automation -> command (issues)."""

    source: str
    target: str


@dataclass
class Slice:
    """One step of the timeline, and the specs that pin its behaviour down."""

    name: str
    elements: list[str] = field(default_factory=list)
    specs: list[Any] = field(default_factory=list)  # eventcore_lab.testing.Scenario values

    def spec(self, *scenarios: Any) -> Slice:
        """Attach given/when/then scenarios to this slice (returns the slice, for chaining)."""
        for scenario in scenarios:
            if not callable(getattr(scenario, "verify", None)):
                raise InvalidFormat(f"slice {self.name!r}: a spec must be a Scenario, got {scenario!r}")
        self.specs.extend(scenarios)
        return self


class Automation:
    """A processor that watches a read model and issues commands: the robot on the board.

    ``decide`` is pure: it looks at the read model and returns the commands to run; running them is the
    caller's job (see :meth:`run`), which keeps the decision testable without a store.
    """

    def __init__(
        self,
        decide: Callable[[Any], Sequence[Any]],
        *,
        reads: Any,
        issues: Iterable[type],
        name: str | None = None,
    ) -> None:
        self.decide = decide
        self.reads = reads
        self.issues = tuple(issues)
        if not self.issues:
            raise InvalidFormat(f"automation {decide.__name__!r} must declare the commands it issues")
        self.name = name or _camel(decide.__name__)
        self.__doc__ = decide.__doc__
        functools.update_wrapper(self, decide)

    def __call__(self, read_model: Any) -> list[Any]:
        commands = list(self.decide(read_model))
        for command in commands:
            if not isinstance(command, self.issues):
                allowed = ", ".join(c.__name__ for c in self.issues)
                raise InvalidFormat(
                    f"automation {self.name} issued {type(command).__name__}, but declares only {allowed}"
                )
        return commands

    def run(self, read_model: Any, executor: Any) -> list[Any]:
        """Decide, then execute each command with ``executor``; returns the execution results."""
        return [executor.execute(command) for command in self(read_model)]

    def __repr__(self) -> str:
        issued = [c.__name__ for c in self.issues]
        return f"Automation({self.name}, reads={_name_of(self.reads)}, issues={issued})"


def automation(*, reads: Any, issues: Iterable[type], name: str | None = None) -> Callable[..., Automation]:
    """Decorator turning ``decide(read_model) -> [commands]`` into an :class:`Automation`."""

    def wrap(decide: Callable[[Any], Sequence[Any]]) -> Automation:
        return Automation(decide, reads=reads, issues=issues, name=name)

    return wrap


class EventModel:
    """Sticky notes, arrows and slices. Elements are keyed by name; names are unique across kinds."""

    def __init__(self, name: str = "event model", *, category: Callable[[str], str] | None = None) -> None:
        self.name = name
        #: The lane of a stream id (history checks use it); the domain declares it when ids have
        #: another shape than ``<category>-<id>``.
        self.category: Callable[[str], str] = category or _by_first_dash
        self.elements: dict[str, Element] = {}
        self.flows: list[Flow] = []
        self.slices: list[Slice] = []

    # -- building ---------------------------------------------------------------------------------------

    def add(self, element: Element, slice_name: str | None = None) -> Element:
        """Add ``element`` (merging lanes and fields if it is already there) into a slice."""
        if not element.name or not isinstance(element.name, str):
            raise InvalidFormat(f"an element needs a non-empty name, got {element.name!r}")
        old = self.elements.get(element.name)
        if old is not None:
            if old.kind is not element.kind:
                raise InvalidFormat(
                    f"{element.name!r} is already on the board as {_a(old.kind.value)}; "
                    f"it cannot also be {_a(element.kind.value)}"
                )
            old.lanes = tuple(dict.fromkeys(old.lanes + element.lanes))
            old.fields = old.fields or element.fields
            old.doc = old.doc or element.doc
            old.source = old.source if old.source is not None else element.source
            old.tags = old.tags or element.tags
            return old
        self.elements[element.name] = element
        self.slice(slice_name or element.name).elements.append(element.name)
        return element

    def event(self, name: str, *, lanes: Iterable[str] = (), slice: str | None = None, **kw: Any) -> Element:
        lanes = tuple(lanes)
        if not lanes:
            raise InvalidFormat(f"event {name!r} needs the stream category (swimlane) it is written to")
        return self.add(Element(Kind.EVENT, name, lanes, **kw), slice)

    def command(
        self, name: str, *, emits: Iterable[str] = (), slice: str | None = None, **kw: Any
    ) -> Element:
        element = self.add(Element(Kind.COMMAND, name, **kw), slice)
        for event in emits:
            self.connect(name, event)
        return element

    def read_model(
        self, name: str, *, consumes: Iterable[str] = (), slice: str | None = None, **kw: Any
    ) -> Element:
        element = self.add(Element(Kind.READ_MODEL, name, **kw), slice)
        for event in consumes:
            self.connect(event, name)
        return element

    def automation(
        self,
        name: str,
        *,
        reads: Iterable[str] = (),
        issues: Iterable[str] = (),
        slice: str | None = None,
        **kw: Any,
    ) -> Element:
        element = self.add(Element(Kind.AUTOMATION, name, **kw), slice)
        for read_model in reads:
            self.connect(read_model, name)
        for command in issues:
            self.connect(name, command)
        return element

    def connect(self, source: str, target: str) -> None:
        """Draw an arrow; both ends must be on the board (add targets before sources point at them)."""
        for end in (source, target):
            if end not in self.elements:
                raise InvalidFormat(f"cannot connect {source!r} -> {target!r}: {end!r} is not on the board")
        allowed = {
            (Kind.COMMAND, Kind.EVENT),
            (Kind.EVENT, Kind.READ_MODEL),
            (Kind.READ_MODEL, Kind.AUTOMATION),
            (Kind.AUTOMATION, Kind.COMMAND),
            (Kind.READ_MODEL, Kind.COMMAND),  # a screen showing a view from which a person acts
        }
        kinds = (self.elements[source].kind, self.elements[target].kind)
        if kinds not in allowed:
            raise InvalidFormat(
                f"{_a(kinds[0].value)} cannot point at {_a(kinds[1].value)} ({source!r} -> {target!r})"
            )
        flow = Flow(source, target)
        if flow not in self.flows:
            self.flows.append(flow)

    def slice(self, name: str) -> Slice:
        """The slice called ``name``, appended to the timeline if new."""
        for existing in self.slices:
            if existing.name == name:
                return existing
        created = Slice(name)
        self.slices.append(created)
        return created

    def add_specs(self, *scenarios: Any) -> None:
        """Attach each scenario to the slice holding its command."""
        for scenario in scenarios:
            command = type(getattr(scenario, "command", None)).__name__
            home = next((s for s in self.slices if command in s.elements), None)
            if home is None:
                raise InvalidFormat(
                    f"spec {getattr(scenario, 'name', scenario)!r} runs {command}, which is not on the board"
                )
            home.spec(scenario)

    # -- reading ----------------------------------------------------------------------------------------

    def of_kind(self, kind: Kind) -> dict[str, Element]:
        return {name: e for name, e in self.elements.items() if e.kind is kind}

    @property
    def events(self) -> dict[str, Element]:
        return self.of_kind(Kind.EVENT)

    @property
    def commands(self) -> dict[str, Element]:
        return self.of_kind(Kind.COMMAND)

    @property
    def read_models(self) -> dict[str, Element]:
        return self.of_kind(Kind.READ_MODEL)

    @property
    def automations(self) -> dict[str, Element]:
        return self.of_kind(Kind.AUTOMATION)

    @property
    def lanes(self) -> list[str]:
        """Stream categories, in the order the timeline first writes to them."""
        seen: dict[str, None] = {}
        for piece in self.slices:
            for name in piece.elements:
                for lane in self.elements[name].lanes:
                    seen[lane] = None
        return list(seen)

    def targets(self, source: str) -> list[str]:
        return [f.target for f in self.flows if f.source == source]

    def sources(self, target: str) -> list[str]:
        return [f.source for f in self.flows if f.target == target]

    def slice_of(self, name: str) -> Slice:
        return next(s for s in self.slices if name in s.elements)

    @property
    def specs(self) -> list[tuple[Slice, Any]]:
        return [(s, spec) for s in self.slices for spec in s.specs]

    def summary(self) -> dict[str, list[str]]:
        """Names per kind, and the lanes: what a test or a reader checks first."""
        return {
            "commands": list(self.commands),
            "events": list(self.events),
            "read models": list(self.read_models),
            "automations": list(self.automations),
            "streams": self.lanes,
        }

    def compare(self, other: EventModel) -> dict[str, tuple[list[str], list[str]]]:
        """Per kind, (names only here, names only in ``other``): e.g. a workshop model against the code."""
        result: dict[str, tuple[list[str], list[str]]] = {}
        for kind in Kind:
            mine, theirs = set(self.of_kind(kind)), set(other.of_kind(kind))
            result[kind.value] = (sorted(mine - theirs), sorted(theirs - mine))
        mine_lanes, their_lanes = set(self.lanes), set(other.lanes)
        result["streams"] = (sorted(mine_lanes - their_lanes), sorted(their_lanes - mine_lanes))
        return result

    # -- running and checking ------------------------------------------------------------------------------

    def verify(self, store_factory: Callable[[], Any] | None = None) -> SpecReport:
        """Run every slice's specs against the real commands, each on a fresh store."""
        from .checks import run_specs

        return run_specs(self, store_factory)

    def check_history(self, events: Iterable[Any]) -> Any:
        """Compare recorded events with the model (see :func:`.checks.check_history`)."""
        from .checks import check_history

        return check_history(self, events)

    def board(self, **options: Any) -> Any:
        """The model drawn as an Event Modeling board (a :class:`~eventcore_lab.modeling.board.Board`)."""
        from .board import Board

        return Board(self, **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.board()._repr_mimebundle_(include, exclude)

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(self.of_kind(k))} {k.value}s" for k in Kind)
        return f"EventModel({self.name!r}: {counts}, {len(self.slices)} slices)"


@dataclass
class SpecResult:
    slice: str
    name: str
    passed: bool
    message: str = ""


@dataclass
class SpecReport:
    """Outcome of :meth:`EventModel.verify`: one row per spec."""

    results: list[SpecResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[SpecResult]:
        return [r for r in self.results if not r.passed]

    def raise_for_failures(self) -> None:
        """Raise AssertionError listing every failing spec with its message."""
        if self.failures:
            text = "\n\n".join(f"[{r.slice}] {r.message}" for r in self.failures)
            raise AssertionError(f"{len(self.failures)} of {len(self.results)} specs failed:\n\n{text}")

    def __str__(self) -> str:
        lines = [f"{'PASS' if r.passed else 'FAIL'}  {r.slice}: {r.name}" for r in self.results]
        passed = len(self.results) - len(self.failures)
        return "\n".join([*lines, f"{passed}/{len(self.results)} passed"])

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{_PASS if r.passed else _FAIL}</td><td>{html.escape(r.slice)}</td>"
            f"<td>{html.escape(r.name)}</td><td><pre>{html.escape(r.message)}</pre></td></tr>"
            for r in self.results
        )
        return f"<table><tr><th></th><th>slice</th><th>spec</th><th>problem</th></tr>{rows}</table>"


_PASS, _FAIL = "PASS", "<b style='color:#b71c1c'>FAIL</b>"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _name_of(thing: Any) -> str:
    if isinstance(thing, type):
        return thing.__name__
    return getattr(thing, "__name__", None) or type(thing).__name__
