"""Event classes <-> stable type names, and exact JSON round trips of payloads.

Durable stores keep ``(event_type, json)``; the registry turns that back into the same object. Any class
that msgspec can encode works (``Event`` subclasses, dataclasses, attrs classes); ``Event`` subclasses
register themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, dataclass_transform

import msgspec

from .errors import RegistryConflict, SerializationError, UnknownEventType

if TYPE_CHECKING:
    from .events import StoredEvent

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class UnknownEvent(msgspec.Struct, frozen=True):
    """The payload of a stored event whose type is not registered where it is read.

    Reads never fail on such an event: it keeps its type name and its JSON byte for byte (the
    :class:`StoredEvent` around it keeps every envelope field), so the store can still be read, replayed
    and exported. A command that would fold one fails with UnknownEventFolded; projections skip it or
    handle it by policy. ``data`` gives the JSON as builtins.
    """

    event_type: str
    raw: bytes
    #: The schema version the payload was stored at (it is kept on export and import).
    schema_version: int = 1

    @property
    def data(self) -> Any:
        return msgspec.json.decode(self.raw)


class RetiredEvent(UnknownEvent, frozen=True):
    """A named tombstone: a stored event whose type was retired by an upcaster (eventcore_lab.evolution).

    Reads and projections see it (type, version and JSON kept); command folds skip it.
    """


class PayloadEvolution(Protocol):
    """What :mod:`eventcore_lab.evolution` installs on a registry to bring old payloads up to date."""

    def read(self, type_name: str, schema_version: int, data: bytes | str) -> tuple[str, Any] | None:
        """The current (type name, payload) of a stored payload, or None when it needs no change."""
        ...

    def current(self, event: StoredEvent) -> StoredEvent:
        """``event`` with its payload at the current schema (for stores that keep decoded objects)."""
        ...

    def is_current(self, type_name: str, schema_version: int) -> bool:
        """Whether payloads stored as (type, version) decode as they are (columnar paths ask this)."""
        ...


def schema_version_of(event: object) -> int:
    """The schema version ``event`` is written at: its class's ``schema_version`` (default 1)."""
    if isinstance(event, UnknownEvent):
        return event.schema_version
    return getattr(type(event), "schema_version", 1)


def default_type_name(cls: type) -> str:
    """A class's type name when none is given: its qualified name without any function scope.

    Nested classes keep their owner (``Student.Registered`` and ``Course.Registered`` can coexist);
    classes defined inside a function are named as if defined at the top (``Holder``), so that a name
    does not depend on where a test or notebook happened to define the class.
    """
    return cls.__qualname__.rpartition("<locals>.")[2]


class EventRegistry:
    """Maps event classes to type names and back, and (de)serializes payloads."""

    def __init__(self) -> None:
        self._by_name: dict[str, type] = {}
        self._by_class: dict[type, str] = {}
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        self._deferred_names: dict[str, type] = {}
        self._deferred_classes: dict[type, str] = {}
        self._lock = threading.Lock()
        #: Set by ``eventcore_lab.evolution.Upcasters.install``; None means payloads are read as stored.
        self.evolution: PayloadEvolution | None = None

    def register(self, cls: type[T], name: str | None = None) -> type[T]:
        """Register ``cls`` under ``name`` (default: :func:`default_type_name`). Usable as a decorator.

        Re-registering a class of the same module and name replaces the old one, so that re-running a
        notebook cell that defines an event works; a different class under a taken name is an error.
        """
        if not isinstance(cls, type):
            raise SerializationError(f"only classes can be registered as events, got {cls!r}")
        type_name = default_type_name(cls) if name is None else name
        if not type_name or not isinstance(type_name, str):
            raise SerializationError(f"event type name must be a non-empty string, got {type_name!r}")
        with self._lock:
            old = self._by_name.get(type_name)
            if old is not None and old is not cls:
                if (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
                    raise RegistryConflict(
                        f"event type name {type_name!r} is already used by {_full_name(old)}, so "
                        f"{_full_name(cls)} cannot have it too. Give one of them another name: set "
                        f"event_type = '...' on the class (for example '{cls.__module__}.{type_name}'), "
                        "or register it with registry.register(cls, name)"
                    )
                del self._by_class[old]
            self._by_name[type_name] = cls
            self._by_class[cls] = type_name
            self._decoders.pop(type_name, None)
            self._deferred_names.pop(type_name, None)
            self._deferred_classes.pop(cls, None)
        return cls

    def register_on_first_use(self, cls: type, name: str | None = None) -> None:
        """Remember ``cls`` without registering it; it is registered the first time it is written or read.

        Library modules (the examples) declare their events this way, so that importing them takes no
        name a user may want for their own class: a user's class of the same name registers first and
        wins, and using the library's class afterwards raises RegistryConflict naming both.
        """
        type_name = default_type_name(cls) if name is None else name
        with self._lock:
            if type_name not in self._by_name:
                self._deferred_names[type_name] = cls
            self._deferred_classes[cls] = type_name

    def _register_deferred(self, cls: type | None, name: str | None) -> bool:
        if cls is not None and cls in self._deferred_classes:
            self.register(cls, self._deferred_classes[cls])
            return True
        if name is not None and name in self._deferred_names:
            deferred = self._deferred_names[name]
            self.register(deferred, self._deferred_classes.get(deferred, name))
            return True
        return False

    def __contains__(self, item: object) -> bool:
        """Whether ``item`` (a type name or a class) is registered or declared for first use."""
        return (
            item in self._by_name
            or item in self._by_class
            or item in self._deferred_names
            or item in self._deferred_classes
        )

    def __iter__(self) -> Iterator[str]:
        """The registered type names (not those declared for registration on first use)."""
        return iter(list(self._by_name))

    def type_name(self, event: object) -> str:
        """The registered name of ``event``'s class."""
        try:
            return self._by_class[type(event)]
        except KeyError:
            if self._register_deferred(type(event), None):
                return self._by_class[type(event)]
            raise UnknownEventType(
                f"{type(event).__qualname__} is not a registered event class; subclass eventcore_lab.Event "
                "or call registry.register(cls)"
            ) from None

    def name_of(self, cls: type) -> str:
        """The registered name of the event class ``cls`` (registering it if declared for first use)."""
        try:
            return self._by_class[cls]
        except KeyError:
            if self._register_deferred(cls, None):
                return self._by_class[cls]
            raise UnknownEventType(f"{cls.__qualname__} is not a registered event class") from None

    def event_class(self, type_name: str) -> type:
        try:
            return self._by_name[type_name]
        except KeyError:
            if self._register_deferred(None, type_name):
                return self._by_name[type_name]
            known = ", ".join(sorted(self._by_name)[:20]) or "(none)"
            raise UnknownEventType(f"unknown event type {type_name!r}; registered: {known}") from None

    def knows(self, type_name: str) -> bool:
        """Whether ``type_name`` can be decoded (registered, or declared for registration on first use)."""
        return type_name in self._by_name or type_name in self._deferred_names

    def encode(self, event: object) -> bytes:
        """``event`` as JSON bytes (an UnknownEvent's own bytes). Raises SerializationError if it cannot be
        encoded."""
        if isinstance(event, UnknownEvent):
            return event.raw
        try:
            return _encoder.encode(event)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:  # Recursion: nested too deep
            raise SerializationError(f"cannot serialize {type(event).__qualname__} event: {exc}") from exc

    def decode(self, type_name: str, data: bytes | str) -> Any:
        """The event of type ``type_name`` from its JSON; UnknownEventType if the type is not registered."""
        decoder = self._decoders.get(type_name)
        if decoder is None:
            decoder = self._decoders[type_name] = msgspec.json.Decoder(self.event_class(type_name))
        try:
            return decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise SerializationError(f"payload does not fit event type {type_name!r}: {exc}") from exc

    def read(self, type_name: str, data: bytes | str, schema_version: int = 1) -> Any:
        """What a store returns as an event's payload: the decoded event, or an :class:`UnknownEvent`
        keeping the JSON when ``type_name`` is not registered (reads never fail on an unknown type).
        Payloads stored at an older ``schema_version`` are upcast when evolution is installed."""
        return self.read_event(type_name, data, schema_version)[1]

    def read_event(self, type_name: str, data: bytes | str, schema_version: int = 1) -> tuple[str, Any]:
        """The current type name and payload of a stored event (an upcaster may rename its type)."""
        evolution = self.evolution
        if evolution is not None:
            evolved = evolution.read(type_name, schema_version, data)
            if evolved is not None:
                return evolved
        decoder = self._decoders.get(type_name)
        if decoder is None and not self.knows(type_name):
            raw = data.encode() if isinstance(data, str) else bytes(data)
            return type_name, UnknownEvent(type_name, raw, schema_version)
        return type_name, self.decode(type_name, data)

    def current(self, events: list[StoredEvent]) -> list[StoredEvent]:
        """``events`` with payloads at the current schema (unchanged, and not copied, without evolution)."""
        evolution = self.evolution
        if evolution is None:
            return events
        return [evolution.current(event) for event in events]

    def to_dict(self, event: object) -> dict[str, Any]:
        """``event`` as plain JSON-ready builtins (for JSONB columns and DataFrames)."""
        if isinstance(event, UnknownEvent):
            value = event.data
        else:
            try:
                value = msgspec.to_builtins(event)
            except (TypeError, ValueError, OverflowError, RecursionError) as exc:
                raise SerializationError(f"cannot serialize {type(event).__qualname__} event: {exc}") from exc
        if not isinstance(value, dict):
            name = type(event).__qualname__
            raise SerializationError(f"an event must serialize to a JSON object; {name} does not")
        return value

    def from_dict(self, type_name: str, data: dict[str, Any]) -> Any:
        """The event of type ``type_name`` from plain builtins."""
        try:
            return msgspec.convert(data, self.event_class(type_name), strict=False)
        except msgspec.ValidationError as exc:
            raise SerializationError(f"payload does not fit event type {type_name!r}: {exc}") from exc


def _full_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


#: The registry used when none is given; ``Event`` subclasses land here.
default_registry = EventRegistry()


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(msgspec.field,))
class Event(msgspec.Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """Base class for events: an immutable record that registers itself by class name.

    Set ``event_type = "..."`` on the class to choose another stable name. Library code that should not
    take a name on import sets ``registration = "on_first_use"``.

    >>> class MoneyDeposited(Event):
    ...     amount: int
    """

    event_type: ClassVar[str]
    #: The version of this class's payload schema; raise it when the fields change incompatibly and
    #: register an upcaster from the old version (eventcore_lab.evolution).
    schema_version: ClassVar[int] = 1
    #: "now" registers the class in the default registry when it is defined; "on_first_use" when it is
    #: first written or read (library code uses it, so that importing takes no name a user may want).
    registration: ClassVar[Literal["now", "on_first_use"]] = "now"
    #: Tag templates built from fields, e.g. ``("student:{student_id}", "course:{course_id}")``: every
    #: event of the class is stored with these tags (see :mod:`eventcore_lab.core.tags`). The templates
    #: are checked when the first event of the class is appended.
    tags_from: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("event_type")
        if cls.registration == "now":
            default_registry.register(cls, name)
        elif cls.registration == "on_first_use":
            default_registry.register_on_first_use(cls, name)
        else:
            raise SerializationError(
                f"{cls.__qualname__}.registration must be 'now' or 'on_first_use', got {cls.registration!r}"
            )
