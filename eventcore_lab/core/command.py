"""How a command is declared: stream fields, a pure fold, and a decision.

A command is a small class. Fields marked with :func:`stream` name the streams it reads (its consistency
boundary); ``apply`` folds their events into state; ``handle`` decides, from that state alone, which
events to write. None of it does I/O: the executor reads, calls these methods and writes.

>>> class Deposit(Command):
...     account: str = stream()
...     amount: int
...
...     def apply(self, state, event):
...         return state + event.payload.amount
...
...     def initial_state(self):
...         return 0
...
...     def handle(self, state, ctx):
...         require(self.amount > 0, "amount must be positive")
...         return [emit(self.account, MoneyDeposited(amount=self.amount))]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar, dataclass_transform

from .errors import DomainRefusal, InvalidArgument, ValidationFailed
from .events import EventToWrite, Metadata, StoredEvent
from .ids import StreamId
from .query import Query

S = TypeVar("S")

_STREAM_MARK = "eventcore_lab.stream"
_MUST_EXIST = "eventcore_lab.must_exist"


def stream(*, default: Any = dataclasses.MISSING, must_exist: bool = False) -> Any:
    """Mark a command field as a stream the command reads.

    The field may hold one stream id, a list/tuple of them (a stream array), or ``None`` (no stream).
    With ``must_exist=True`` the executor fails the command with StreamNotFound (never retried) when
    such a stream has no events, before ``handle`` runs.
    """
    return dataclasses.field(default=default, metadata={_STREAM_MARK: True, _MUST_EXIST: must_exist})


def emit(stream_id: str, event: object, *, tags: Iterable[str] = ()) -> EventToWrite:
    """A write of ``event`` to ``stream_id``, for ``handle`` to return.

    ``tags`` are added to those the event's class derives from its fields (``tags_from``); the store
    keeps their union in order, without duplicates.
    """
    if not tags:
        return EventToWrite(stream_id, event)
    if isinstance(tags, str):
        raise InvalidArgument(f"emit(tags=...) takes a list of tags, not the single string {tags!r}")
    return EventToWrite(stream_id, event, tags=tuple(tags))


def require(condition: object, error: str | DomainRefusal | type[DomainRefusal]) -> None:
    """Refuse the command (never retried) unless ``condition`` holds.

    ``error`` is a message (raised as :class:`ValidationFailed`), or the domain's own refusal: an
    instance or a class of :class:`DomainRefusal` (a class is raised with the first line of its
    docstring, else its name, as the message). Only domain refusals are accepted, because they are what
    the executor never retries, the widgets show by type and the web layer maps to a 4xx status; any
    other exception from ``handle`` is a bug, not a decision. So the type a domain declares, e.g.
    ``class CourseFull(BusinessRuleViolation)``, reaches the caller as itself.
    """
    if condition:
        return
    if isinstance(error, str):
        raise ValidationFailed(error)
    if isinstance(error, DomainRefusal):
        raise error
    if isinstance(error, type) and issubclass(error, DomainRefusal):
        raise error(_refusal_message(error))
    raise TypeError(
        "require(condition, error) takes a message, or a DomainRefusal instance or subclass "
        f"(e.g. a BusinessRuleViolation of the domain), got {error!r}"
    )


def _refusal_message(error: type[DomainRefusal]) -> str:
    doc = error.__dict__.get("__doc__")
    first = doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""
    return first or error.__name__


class CommandContext:
    """What ``handle`` may know besides state (decision time, metadata, the versions read)."""

    __slots__ = ("_added", "_versions", "metadata", "now")

    def __init__(self, versions: dict[str, int], now: datetime, metadata: Metadata) -> None:
        self._versions = versions
        self._added: list[StreamId] = []
        #: The time of this decision (from the executor's clock, so simulations are repeatable).
        self.now = now
        self.metadata = metadata

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams read so far, declared then discovered (validated stream ids)."""
        return tuple(self._versions)

    def version(self, stream_id: str) -> int:
        """The version at which ``stream_id`` was read (0: no events)."""
        return self._versions[StreamId(stream_id)]

    def add_streams(self, *stream_ids: str | Iterable[str]) -> None:
        """Read these streams too, then fold and decide again (dynamic consistency boundary).

        Kept for compatibility: ``Command.resolve`` is the documented way, as it names the streams
        before ``handle`` runs, so ``handle`` decides once. Streams already read are ignored. Writes
        returned from a pass that added streams are discarded.
        """
        for item in stream_ids:
            for sid in [item] if isinstance(item, str) else item:
                valid = StreamId(sid)
                if valid not in self._versions and valid not in self._added:
                    self._added.append(valid)


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, stream))
class Command(Generic[S]):
    """Base class of commands. Subclasses become frozen dataclasses automatically.

    Override ``initial_state``, ``apply`` and ``handle``. ``apply`` receives a :class:`StoredEvent`
    (``event.payload`` is the domain event) from every stream read, in global position order. Optionally
    override ``query`` (decide on events by type and tag, too or instead of streams) and ``resolve``
    (read more streams or queries, found from the state, before ``handle``).
    """

    __stream_fields__: ClassVar[tuple[str, ...]] = ()
    __existing_stream_fields__: ClassVar[tuple[str, ...]] = ()
    #: Whether the class overrides ``query`` / ``resolve`` (so the executor skips them otherwise).
    __by_query__: ClassVar[bool] = False
    __resolves__: ClassVar[bool] = False
    #: Whether ``apply`` may receive events whose type is not registered (payload UnknownEvent). Off by
    #: default: deciding on state that could not be read is unsafe, so the executor raises
    #: UnknownEventFolded instead.
    accepts_unknown_events: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True)(cls)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        cls.__stream_fields__ = tuple(f.name for f in fields if f.metadata.get(_STREAM_MARK))
        cls.__existing_stream_fields__ = tuple(f.name for f in fields if f.metadata.get(_MUST_EXIST))
        # overridden methods only: a field that happens to be named so (with a default) is not one
        cls.__by_query__ = cls.query is not Command.query and callable(cls.query)
        cls.__resolves__ = cls.resolve is not Command.resolve and callable(cls.resolve)

    def read_streams(self) -> tuple[StreamId, ...]:
        """The declared streams, validated, in declaration order, without duplicates."""
        return self._streams_of(self.__stream_fields__)

    def required_streams(self) -> tuple[StreamId, ...]:
        """The declared streams marked ``stream(must_exist=True)``."""
        return self._streams_of(self.__existing_stream_fields__)

    def _streams_of(self, field_names: tuple[str, ...]) -> tuple[StreamId, ...]:
        seen: dict[StreamId, None] = {}
        for name in field_names:
            value = getattr(self, name)
            if value is None:
                continue
            for sid in [value] if isinstance(value, str) else value:
                seen[StreamId(sid)] = None
        return tuple(seen)

    def query(self) -> Query | None:
        """The events this command decides on besides its streams, by type and tag (None: streams only).

        Override it to draw the consistency boundary by query: the executor reads the events matching it
        (with those of the declared streams, each event once, in position order) and appends under an
        :class:`~eventcore_lab.core.query.AppendCondition`, so an event matching it committed after the
        read is a conflict, retried like a stream conflict. Writes may then go to any stream: the
        condition, not a stream version, guards them.
        """
        return None

    def resolve(self, state: S) -> Iterable[str | Query]:
        """Further streams (ids) or queries to read before deciding, given the state folded so far.

        Called after each fold until it names nothing new (at most ``max_discovery_iterations`` reads),
        so ``handle`` runs once, on complete state. This is the way to widen the boundary at run time
        (an order that discovers the stock streams of its lines); ``ctx.add_streams`` in ``handle`` still
        works but decides twice.
        """
        return ()

    def initial_state(self) -> S:
        """The state before any event is folded in."""
        return None  # type: ignore[return-value]

    def apply(self, state: S, event: StoredEvent) -> S:
        """Fold one event into state. Pure: no I/O, no clock, no randomness."""
        return state

    def handle(self, state: S, ctx: CommandContext) -> Sequence[EventToWrite]:
        """Decide which events to write (an empty list is a successful no-op)."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle(state, ctx)")
