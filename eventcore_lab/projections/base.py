"""The projection protocol: plain objects that fold stored events into a read model, with no I/O.

A projection is written once and then driven by anything: a direct fold over a list, the
:class:`~eventcore_lab.projections.runner.ProjectionRunner`, time travel, or a fork of history. Keeping it
free of I/O is what makes all of those give the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from ..core.errors import ProjectionError
from ..core.events import StoredEvent

P = TypeVar("P", bound="Projection")
F = TypeVar("F", bound=Callable[..., Any])

_HANDLES = "__eventcore_handles__"


@runtime_checkable
class ProjectionLike(Protocol):
    """What runners need: a name (the checkpoint key) and ``apply(event)``."""

    name: str

    def apply(self, event: StoredEvent) -> None: ...


def handles(*event_classes: type) -> Callable[[F], F]:
    """Mark a :class:`Projection` method as the handler of these event classes.

    The method receives the whole :class:`StoredEvent` (payload, stream, position, metadata), because
    read models often need the envelope (when, by whom) as much as the payload.
    """
    if not event_classes or not all(isinstance(c, type) for c in event_classes):
        raise ProjectionError(f"@handles needs one or more event classes, got {event_classes!r}")

    def mark(method: F) -> F:
        setattr(method, _HANDLES, (*getattr(method, _HANDLES, ()), *event_classes))
        return method

    return mark


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Projection:
    """Base class for per-event-type projections.

    Decorate methods with :func:`handles`; events of other types are ignored. Subclasses that prefer a
    single method may override :meth:`apply` instead. ``name`` (default: the class name in snake case) is
    the key under which runners store the checkpoint.

    A handler should check what it needs before it changes state: a handler that raises halfway leaves a
    half-applied event, which the runner cannot undo.
    """

    name: ClassVar[str] = ""
    _dispatch: ClassVar[dict[type, Callable[[Any, StoredEvent], None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = _snake(cls.__name__)
        dispatch: dict[type, Callable[[Any, StoredEvent], None]] = {}
        for klass in reversed(cls.__mro__):  # subclasses override their bases' handlers
            for attr in vars(klass).values():
                for event_class in getattr(attr, _HANDLES, ()):
                    dispatch[event_class] = attr
        cls._dispatch = dispatch

    @classmethod
    def handled_types(cls) -> tuple[type, ...]:
        """The event classes this projection reacts to (useful to read only those)."""
        return tuple(cls._dispatch)

    def apply(self, event: StoredEvent) -> None:
        """Apply one stored event (dispatches on the payload's class)."""
        handler = self._dispatch.get(type(event.payload))
        if handler is not None:
            handler(self, event)

    def apply_all(self, events: Iterable[StoredEvent]) -> None:
        """Apply events in order; the fast path for replays (one dict lookup per event)."""
        if type(self).apply is not Projection.apply:  # a subclass with its own apply() decides alone
            for event in events:
                self.apply(event)
            return
        dispatch = self._dispatch
        for event in events:
            handler = dispatch.get(type(event.payload))
            if handler is not None:
                handler(self, event)


def handled_types(projection: object) -> tuple[type, ...] | None:
    """The event classes a runner needs to read for ``projection``: those of a :class:`Projection`
    that dispatches with the default ``apply`` (it ignores every other event); None (every event)
    for anything else, or for a projection that handles nothing."""
    if not isinstance(projection, Projection) or type(projection).apply is not Projection.apply:
        return None
    return projection.handled_types() or None


def fold(projection: P, events: Iterable[StoredEvent]) -> P:
    """Apply ``events`` to ``projection`` in order and return it: the reference every runner must match."""
    apply_all = getattr(projection, "apply_all", None)
    if apply_all is not None:
        apply_all(events)
    else:
        for event in events:
            projection.apply(event)
    return projection


def fresh_copy(projection: Any, factory: Callable[[], Any] | None = None) -> Any:
    """A new, empty projection like ``projection``: from ``factory`` or by calling its class."""
    if factory is not None:
        return factory()
    try:
        return type(projection)()
    except TypeError as exc:
        raise ProjectionError(
            f"cannot create an empty {type(projection).__name__} by calling the class without arguments "
            f"({exc}); pass factory=... that builds a new one"
        ) from exc
