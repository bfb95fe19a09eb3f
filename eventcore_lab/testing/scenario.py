"""Given/when/then specifications of one command, readable by people and runnable as tests.

A :class:`Scenario` is a value: building it runs nothing, so the same spec can be printed on an event-model
board (:meth:`Scenario.describe`) and checked in a test suite (:meth:`Scenario.verify`).

>>> spec = (Scenario("deposit adds money")
...         .given("account-1", AccountOpened(owner="ann"))
...         .when(Deposit("account-1", 50))
...         .then("account-1", MoneyDeposited(amount=50)))
>>> spec.verify()  # doctest: +SKIP
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..core.command import Command
from ..core.errors import EventCoreError, InvalidFormat
from ..core.events import EventToWrite, Metadata
from ..core.executor import ExecutionResult, Executor
from ..core.ids import StreamId
from ..core.retry import RetryConfig

#: The decision time (``ctx.now``) a scenario's command sees unless :meth:`Scenario.at` says otherwise,
#: so that expected events carrying timestamps can be written down exactly.
DEFAULT_NOW = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


class _Anything:
    """Equal to every value: put it in an expected event's field that the spec does not care about."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "ANY"


#: Wildcard for fields of expected events, e.g. ``TaskCreated(..., created_at=ANY)``.
ANY: Any = _Anything()


@dataclass(frozen=True)
class ExpectedError:
    """What failure a scenario expects: an error class, and optionally a message pattern and a code."""

    error: type[BaseException]
    match: str | None = None
    code: str | None = None

    def matches(self, raised: BaseException) -> bool:
        if not isinstance(raised, self.error):
            return False
        if self.code is not None and getattr(raised, "code", None) != self.code:
            return False
        return self.match is None or re.search(self.match, _message(raised)) is not None

    def describe(self) -> str:
        parts = [self.error.__name__]
        if self.code:
            parts.append(f"code {self.code}")
        if self.match:
            parts.append(f"message matching {self.match!r}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Scenario:
    """A named given/when/then spec. Every builder method returns a new scenario; none runs anything."""

    name: str
    givens: tuple[tuple[str, object], ...] = ()
    command: Command[Any] | None = None
    expected: tuple[tuple[str, object], ...] | None = None
    expected_error: ExpectedError | None = None
    now: datetime = DEFAULT_NOW
    _then_nothing: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidFormat(f"a scenario needs a non-empty name, got {self.name!r}")

    # -- building ---------------------------------------------------------------------------------

    def given(self, stream_id: str, *events: object) -> Scenario:
        """History that exists before the command: ``events`` on ``stream_id``, after earlier givens."""
        sid = _stream(stream_id, self.name)
        if not events:
            raise InvalidFormat(f"scenario {self.name!r}: given({sid!r}) needs at least one event")
        return replace(self, givens=self.givens + tuple((sid, e) for e in events))

    def when(self, command: Command[Any]) -> Scenario:
        """The one command under test."""
        if not isinstance(command, Command):
            raise InvalidFormat(
                f"scenario {self.name!r}: when() takes a Command instance, got {type(command).__name__}"
            )
        if self.command is not None:
            raise InvalidFormat(f"scenario {self.name!r} already has a command: {self.command!r}")
        return replace(self, command=command)

    def then(self, stream_id: str, *events: object) -> Scenario:
        """Expect the command to write ``events`` to ``stream_id``, in this order (repeatable)."""
        self._check_no_error_expected("then")
        sid = _stream(stream_id, self.name)
        if not events:
            raise InvalidFormat(
                f"scenario {self.name!r}: then({sid!r}) needs at least one event; use then_nothing()"
            )
        if self._then_nothing:
            raise InvalidFormat(f"scenario {self.name!r} already expects nothing to be written")
        return replace(self, expected=(self.expected or ()) + tuple((sid, e) for e in events))

    def then_nothing(self) -> Scenario:
        """Expect the command to succeed without writing anything (an idempotent no-op)."""
        self._check_no_error_expected("then_nothing")
        if self.expected:
            raise InvalidFormat(f"scenario {self.name!r} already expects events; it cannot expect nothing")
        return replace(self, expected=(), _then_nothing=True)

    def then_fails(
        self,
        error: type[BaseException] = EventCoreError,
        *,
        match: str | None = None,
        code: str | None = None,
    ) -> Scenario:
        """Expect the command to fail with ``error`` (a class), its message matching the regex ``match``."""
        if not (isinstance(error, type) and issubclass(error, BaseException)):
            raise InvalidFormat(
                f"scenario {self.name!r}: then_fails() takes an exception class, got {error!r}"
            )
        if self.expected is not None:
            raise InvalidFormat(
                f"scenario {self.name!r} already expects writes; it cannot also expect a failure"
            )
        if self.expected_error is not None:
            raise InvalidFormat(f"scenario {self.name!r} already expects {self.expected_error.describe()}")
        return replace(self, expected_error=ExpectedError(error, match, code))

    def at(self, now: datetime) -> Scenario:
        """Run the command at decision time ``now`` (what ``ctx.now`` returns)."""
        if not isinstance(now, datetime):
            raise InvalidFormat(f"scenario {self.name!r}: at() takes a datetime, got {now!r}")
        return replace(self, now=now)

    def _check_no_error_expected(self, method: str) -> None:
        if self.expected_error is not None:
            raise InvalidFormat(
                f"scenario {self.name!r} expects {self.expected_error.describe()}; {method}() cannot be added"
            )

    # -- running ----------------------------------------------------------------------------------

    def verify(
        self, store: Any = None, *, retry: RetryConfig | None = None
    ) -> ExecutionResult | BaseException:
        """Run the spec on ``store`` (a fresh MemoryStore by default) and check the outcome.

        Returns the ExecutionResult, or the expected error. Raises AssertionError describing the
        difference otherwise. Without ``retry`` the command runs once, so a conflict is an outcome.
        """
        if self.command is None:
            raise InvalidFormat(f"scenario {self.name!r} has no command: add .when(command)")
        if self.expected is None and self.expected_error is None:
            raise InvalidFormat(
                f"scenario {self.name!r} expects nothing: add .then(...), .then_nothing() or .then_fails(...)"
            )
        if store is None:
            from ..stores.memory import MemoryStore

            store = MemoryStore()
        if self.givens:
            metadata = Metadata(correlation_id=f"given:{self.name}")
            store.append([EventToWrite(s, e, metadata) for s, e in self.givens])
        now = self.now
        executor = Executor(
            store,
            retry=retry or RetryConfig.none(),
            timeout=None,
            clock=lambda: now,
            rng=random.Random(0),
            sleep=lambda _seconds: None,
        )
        try:
            result = executor.execute(self.command)
        except Exception as raised:  # the outcome under test, whatever it is
            if self.expected_error is not None and self.expected_error.matches(raised):
                return raised
            raise AssertionError(self._failure(f"it failed with {_error_text(raised)}")) from raised
        actual = [(e.stream_id, e.payload) for e in result.events_written]
        if self.expected_error is not None:
            raise AssertionError(self._failure(f"it succeeded and wrote:\n{_writes_text(actual)}"))
        if not _same_writes(self.expected or (), actual):
            raise AssertionError(self._failure(f"it wrote:\n{_writes_text(actual)}"))
        return result

    def _failure(self, happened: str) -> str:
        if self.expected_error is not None:
            wanted = f"expected failure: {self.expected_error.describe()}"
        else:
            wanted = f"expected writes:\n{_writes_text(list(self.expected or ()))}"
        return f"scenario {self.name!r} failed\n  when {self.command!r}\n  {wanted}\n  but {happened}"

    # -- showing ----------------------------------------------------------------------------------

    def describe(self) -> str:
        """The spec as plain Given/When/Then text, for boards and documentation."""
        lines = [f"Scenario: {self.name}", "  Given"]
        lines += [f"    {s}: {e!r}" for s, e in self.givens] or ["    (no events)"]
        lines += ["  When", f"    {self.command!r}" if self.command is not None else "    (no command)"]
        lines.append("  Then")
        if self.expected_error is not None:
            lines.append(f"    fails with {self.expected_error.describe()}")
        elif self.expected is None:
            lines.append("    (no expectation)")
        else:
            lines += [f"    {s}: {e!r}" for s, e in self.expected] or ["    nothing is written"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


def _stream(stream_id: str, name: str) -> str:
    try:
        return str(StreamId(stream_id))
    except EventCoreError as exc:
        raise type(exc)(f"scenario {name!r}: {exc.message}") from None


def _same_writes(expected: Sequence[tuple[str, object]], actual: Sequence[tuple[str, object]]) -> bool:
    """Same streams, and on each stream the same events in the same order (a commit's interleaving of
    streams is the handler's choice and not part of its meaning)."""
    if len(expected) != len(actual):
        return False
    by_stream: dict[str, list[object]] = {}
    for sid, event in actual:
        by_stream.setdefault(sid, []).append(event)
    wanted: dict[str, list[object]] = {}
    for sid, event in expected:
        wanted.setdefault(sid, []).append(event)
    if set(wanted) != set(by_stream):
        return False
    # expected on the left so that ANY's __eq__ is asked first inside events
    return all(
        len(w) == len(by_stream[s]) and all(a == b for a, b in zip(w, by_stream[s], strict=True))
        for s, w in wanted.items()
    )


def _writes_text(writes: Sequence[tuple[str, object]]) -> str:
    return "\n".join(f"      {s}: {e!r}" for s, e in writes) or "      (nothing)"


def _message(error: BaseException) -> str:
    return getattr(error, "message", None) or str(error)


def _error_text(error: BaseException) -> str:
    code = getattr(error, "code", None)
    return f"{type(error).__name__}{f' [{code}]' if code else ''}: {_message(error)}"
