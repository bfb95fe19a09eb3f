"""Routing rules: which service's events go to which targets, optionally transformed (the manual's
federation hub, A54-07).

A rule applies to a message when its ``source`` is the message's service (or ``"*"``) and its
``event_pattern`` matches the event type: ``"*"``, an exact name, or a prefix ending in ``*``. Every
matching rule routes the message to each of its targets; a target reached by several rules gets the
message once (the first matching rule's transformation wins), because one message id must mean one
message on a target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import msgspec

from ..core.errors import InvalidFormat
from .errors import UnknownTransformation
from .messages import IntegrationMessage

Transformation = Callable[[IntegrationMessage], IntegrationMessage]

_TARGET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PATTERN = re.compile(r"^(\*|[A-Za-z0-9_.:-]+\*?)$")


def user_to_customer(message: IntegrationMessage) -> IntegrationMessage:
    """Rename the event type for a service that calls users customers (the manual's example)."""
    return msgspec.structs.replace(message, event_type=message.event_type.replace("User", "Customer"))


def anonymize_pii(message: IntegrationMessage) -> IntegrationMessage:
    """Mask a top-level ``email`` before the event leaves the service (the manual's example)."""
    if "email" not in message.payload:
        return message
    return msgspec.structs.replace(message, payload={**message.payload, "email": "***@***.***"})


#: Transformations a rule may name by string.
TRANSFORMATIONS: dict[str, Transformation] = {
    "user_to_customer": user_to_customer,
    "anonymize_pii": anonymize_pii,
}


def pattern_matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


@dataclass(frozen=True)
class RoutingRule:
    """Route ``source``'s events whose type matches ``event_pattern`` to ``targets``."""

    source: str
    event_pattern: str
    targets: tuple[str, ...]
    transformation: str | Transformation | None = None
    _transform: Transformation | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):
            object.__setattr__(self, "targets", (self.targets,))
        else:
            object.__setattr__(self, "targets", tuple(self.targets))
        if not self.source or not isinstance(self.source, str):
            raise InvalidFormat(f"a routing rule's source is a service name or '*', got {self.source!r}")
        if not isinstance(self.event_pattern, str) or not _PATTERN.match(self.event_pattern):
            raise InvalidFormat(
                "event pattern must be '*', an event type, or a prefix ending in '*'; "
                f"got {self.event_pattern!r}"
            )
        if not self.targets:
            raise InvalidFormat(f"routing rule for {self.event_pattern!r} has no targets")
        for target in self.targets:
            if not isinstance(target, str) or not _TARGET.match(target):
                raise InvalidFormat(
                    "target must be 1-64 letters, digits, '_' or '-' (it becomes a broker name), "
                    f"got {target!r}"
                )
        transform = self.transformation
        if isinstance(transform, str):
            if transform not in TRANSFORMATIONS:
                known = ", ".join(sorted(TRANSFORMATIONS))
                raise UnknownTransformation(f"unknown transformation {transform!r}; known: {known}")
            transform = TRANSFORMATIONS[transform]
        object.__setattr__(self, "_transform", transform)

    def applies_to(self, message: IntegrationMessage) -> bool:
        return self.source in ("*", message.service_id) and pattern_matches(
            self.event_pattern, message.event_type
        )

    def transform(self, message: IntegrationMessage) -> IntegrationMessage:
        out = message if self._transform is None else self._transform(message)
        if out.message_id != message.message_id:
            raise InvalidFormat(
                f"transformation of rule {self.event_pattern!r} changed the message id; it must keep it"
            )
        return out


class Router:
    """A list of rules; :meth:`route` says where one message goes. Pure: no I/O."""

    def __init__(self, rules: Iterable[RoutingRule]) -> None:
        self.rules = tuple(rules)
        for rule in self.rules:
            if not isinstance(rule, RoutingRule):
                raise InvalidFormat(f"Router takes RoutingRule items, got {type(rule).__name__}")

    @classmethod
    def to(cls, target: str, *, source: str = "*", event_pattern: str = "*") -> Router:
        """Everything (or one pattern) to a single target."""
        return cls([RoutingRule(source, event_pattern, (target,))])

    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for rule in self.rules for t in rule.targets))

    def route(self, message: IntegrationMessage) -> list[tuple[str, IntegrationMessage]]:
        routed: dict[str, IntegrationMessage] = {}
        for rule in self.rules:
            if rule.applies_to(message):
                for target in rule.targets:
                    if target not in routed:
                        routed[target] = rule.transform(message)
        return list(routed.items())

    def describe(self) -> list[Mapping[str, object]]:
        """The rules as rows (for a table or a board)."""
        return [
            {
                "source": r.source,
                "event_pattern": r.event_pattern,
                "targets": ", ".join(r.targets),
                "transformation": r.transformation
                if isinstance(r.transformation, str) or r.transformation is None
                else getattr(r.transformation, "__name__", repr(r.transformation)),
            }
            for r in self.rules
        ]
