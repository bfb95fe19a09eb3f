"""Authorization policies for the executor's ``policy=`` seam: deny by default, say which rule refused.

Every policy here is plain Python without I/O, called by the executor after it resolved the streams a
command reads and writes and before it appends. A policy allows only what one of its rules grants; an
anonymous caller (no principal) is refused by every policy.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.authorization import CommandPolicy, StreamAccess
from ._errors import PolicyDenied
from ._principal import Principal, as_principal


def _command_name(command: Any) -> str:
    return type(command).__name__


def _require_principal(principal: Any, command: Any, rule: str) -> Principal:
    resolved = as_principal(principal)
    if resolved is None:
        raise PolicyDenied("an anonymous caller", _command_name(command), rule, "no user was given")
    return resolved


def _names(commands: Iterable[str | type]) -> frozenset[str]:
    return frozenset(c if isinstance(c, str) else c.__name__ for c in commands)


class RoleBasedPolicy:
    """RBAC: each role lists the commands it may run (by class or class name; ``"*"`` for all)."""

    def __init__(self, grants: Mapping[str, Iterable[str | type]]) -> None:
        self._grants = {role: _names(commands) for role, commands in grants.items()}

    def authorize(self, principal: Any, command: Any, streams: StreamAccess) -> None:
        who = _require_principal(principal, command, "rbac")
        name = _command_name(command)
        for role in sorted(who.roles):
            allowed = self._grants.get(role, frozenset())
            if name in allowed or "*" in allowed:
                return
        roles = ", ".join(sorted(who.roles)) or "none"
        raise PolicyDenied(who.id, name, "rbac", f"no role of theirs ({roles}) grants {name}")


#: An ABAC condition: (principal, command, streams) -> whether the rule allows.
Condition = Callable[[Principal, Any, StreamAccess], bool]


@dataclass(frozen=True)
class Rule:
    """A named attribute rule for :class:`AttributePolicy`; ``commands`` empty means every command."""

    name: str
    condition: Condition
    commands: frozenset[str] = field(default_factory=frozenset)

    @staticmethod
    def of(name: str, condition: Condition, commands: Iterable[str | type] = ()) -> Rule:
        return Rule(name, condition, _names(commands))

    def applies_to(self, command_name: str) -> bool:
        return not self.commands or command_name in self.commands


class AttributePolicy:
    """ABAC: every rule that applies to the command must allow it, and at least one rule must apply.

    A command no rule mentions is refused (deny by default), naming the policy rather than a rule.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)

    def authorize(self, principal: Any, command: Any, streams: StreamAccess) -> None:
        who = _require_principal(principal, command, "abac")
        name = _command_name(command)
        applied = False
        for rule in self.rules:
            if rule.applies_to(name):
                applied = True
                if not rule.condition(who, command, streams):
                    raise PolicyDenied(who.id, name, rule.name, "its condition does not hold")
        if not applied:
            raise PolicyDenied(who.id, name, "abac", f"no rule covers {name}")


@dataclass(frozen=True)
class StreamRule:
    """Who may read and write streams whose id matches ``pattern`` (shell-style, e.g. ``"account-*"``).

    ``read`` and ``write`` are role names; ``"*"`` is any authenticated caller and ``"owner"`` is the
    caller whose id is the rest of the stream id after the pattern's literal prefix (``user-{id}``).
    """

    pattern: str
    read: frozenset[str] = frozenset()
    write: frozenset[str] = frozenset()

    @staticmethod
    def of(pattern: str, *, read: Iterable[str] = (), write: Iterable[str] = ()) -> StreamRule:
        return StreamRule(pattern, frozenset(read), frozenset(write))

    def matches(self, stream_id: str) -> bool:
        return fnmatch.fnmatchcase(stream_id, self.pattern)

    def grants(self, who: Principal, stream_id: str, mode: str) -> bool:
        roles = self.read | self.write if mode == "read" else self.write  # writing implies reading
        if "*" in roles or who.roles & roles:
            return True
        prefix = self.pattern.split("*", 1)[0]
        return "owner" in roles and stream_id == prefix + who.id


class StreamRules:
    """Stream-level read/write rules. The first rule matching a stream decides; no match is a refusal."""

    def __init__(self, rules: Sequence[StreamRule]) -> None:
        self.rules = tuple(rules)

    def check(self, principal: Any, stream_id: str, mode: str = "read", command: Any = None) -> None:
        """Raise PolicyDenied unless ``principal`` may ``mode`` ("read"/"write") ``stream_id``."""
        who = _require_principal(principal, command, f"streams:{mode}")
        what = _command_name(command) if command is not None else f"a {mode} of {stream_id!r}"
        for rule in self.rules:
            if rule.matches(stream_id):
                if rule.grants(who, stream_id, mode):
                    return
                raise PolicyDenied(who.id, what, rule.pattern, f"it grants them no {mode} of {stream_id!r}")
        raise PolicyDenied(who.id, what, "streams", f"no rule matches stream {stream_id!r}")

    def authorize(self, principal: Any, command: Any, streams: StreamAccess) -> None:
        for sid in streams.read:
            self.check(principal, sid, "write" if sid in streams.write else "read", command)
        for sid in streams.write:
            if sid not in streams.read:
                self.check(principal, sid, "write", command)

    def readable(self, principal: Any, stream_id: str) -> bool:
        """Whether ``principal`` may read ``stream_id`` (for read-side filtering)."""
        try:
            self.check(principal, stream_id, "read")
        except PolicyDenied:
            return False
        return True


class AllOf:
    """Every policy must allow (e.g. RBAC for commands and stream rules for data)."""

    def __init__(self, *policies: CommandPolicy) -> None:
        if not policies:
            raise ValueError("AllOf needs at least one policy; an empty one would allow everything")
        self.policies = policies

    def authorize(self, principal: Any, command: Any, streams: StreamAccess) -> None:
        for policy in self.policies:
            policy.authorize(principal, command, streams)
