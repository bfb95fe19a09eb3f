"""Event classes <-> stable type names, and exact JSON round trips of payloads.

Durable stores keep ``(event_type, json)``; the registry turns that back into the same object. Any class
that msgspec can encode works (``Event`` subclasses, dataclasses, attrs classes); ``Event`` subclasses
register themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar, dataclass_transform

import msgspec

from .errors import SerializationError, UnknownEventType

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class EventRegistry:
    """Maps event classes to type names and back, and (de)serializes payloads."""

    def __init__(self) -> None:
        self._by_name: dict[str, type] = {}
        self._by_class: dict[type, str] = {}
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}

    def register(self, cls: type[T], name: str | None = None) -> type[T]:
        """Register ``cls`` under ``name`` (default: its class name). Usable as a decorator.

        Re-registering a class of the same module and name replaces the old one, so that re-running a
        notebook cell that defines an event works; a different class under a taken name is an error.
        """
        type_name = name or cls.__name__
        if not type_name or not isinstance(type_name, str):
            raise SerializationError(f"event type name must be a non-empty string, got {type_name!r}")
        old = self._by_name.get(type_name)
        if old is not None and old is not cls:
            if (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
                raise SerializationError(
                    f"event type name {type_name!r} is already used by {old.__module__}.{old.__qualname__}; "
                    f"register {cls.__qualname__} under another name"
                )
            del self._by_class[old]
        self._by_name[type_name] = cls
        self._by_class[cls] = type_name
        self._decoders.pop(type_name, None)
        return cls

    def __contains__(self, item: object) -> bool:
        return item in self._by_name or item in self._by_class

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def type_name(self, event: object) -> str:
        """The registered name of ``event``'s class."""
        try:
            return self._by_class[type(event)]
        except KeyError:
            raise UnknownEventType(
                f"{type(event).__qualname__} is not a registered event class; subclass eventcore_lab.Event "
                "or call registry.register(cls)"
            ) from None

    def event_class(self, type_name: str) -> type:
        try:
            return self._by_name[type_name]
        except KeyError:
            known = ", ".join(sorted(self._by_name)[:20]) or "(none)"
            raise UnknownEventType(f"unknown event type {type_name!r}; registered: {known}") from None

    def encode(self, event: object) -> bytes:
        """``event`` as JSON bytes. Raises SerializationError if it cannot be encoded."""
        try:
            return _encoder.encode(event)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"cannot serialize {type(event).__qualname__} event: {exc}") from exc

    def decode(self, type_name: str, data: bytes | str) -> Any:
        """The event of type ``type_name`` from its JSON."""
        decoder = self._decoders.get(type_name)
        if decoder is None:
            decoder = self._decoders[type_name] = msgspec.json.Decoder(self.event_class(type_name))
        try:
            return decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise SerializationError(f"payload does not fit event type {type_name!r}: {exc}") from exc

    def to_dict(self, event: object) -> dict[str, Any]:
        """``event`` as plain JSON-ready builtins (for JSONB columns and DataFrames)."""
        try:
            value = msgspec.to_builtins(event)
        except (TypeError, ValueError, OverflowError) as exc:
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


#: The registry used when none is given; ``Event`` subclasses land here.
default_registry = EventRegistry()


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(msgspec.field,))
class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base class for events: an immutable record that registers itself by class name.

    Set ``event_type = "..."`` on the class to choose another stable name.

    >>> class MoneyDeposited(Event):
    ...     amount: int
    """

    event_type: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        default_registry.register(cls, cls.__dict__.get("event_type"))
