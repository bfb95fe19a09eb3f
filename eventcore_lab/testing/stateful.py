"""Build a hypothesis state machine from commands and invariants, for a user's own pytest suite.

Hypothesis runs random sequences of the commands against a fresh store, checks every invariant after
each step, and on a failure shrinks the sequence to a short one that still breaks an invariant::

    Machine = stateful_test(
        {"deposit": st.builds(Deposit, accounts, st.integers(1, 100)), ...},
        invariants={"no overdraft": lambda balances: min(balances.values(), default=0) >= 0},
        project=balances,
        setup=[OpenAccount("account-1", "ann")],
    )
    TestBank = Machine.TestCase
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ..core.command import Command
from ..core.errors import BusinessRuleViolation, InvalidFormat, StreamNotFound, Unauthorized, ValidationFailed
from ..core.events import StoredEvent
from ..core.executor import Executor
from ..core.retry import RetryConfig
from .assertions import assert_valid_log
from .scenario import DEFAULT_NOW

#: Errors that mean "the domain refused this command": a normal outcome, not a failed test.
REJECTIONS: tuple[type[Exception], ...] = (
    ValidationFailed,
    BusinessRuleViolation,
    StreamNotFound,
    Unauthorized,
)


def stateful_test(
    commands: Mapping[str, st.SearchStrategy[Command[Any]]],
    invariants: Mapping[str, Callable[[Any], object]],
    *,
    project: Callable[[list[StoredEvent]], Any] | None = None,
    setup: Sequence[Command[Any]] = (),
    store_factory: Callable[[], Any] | None = None,
    name: str = "CommandMachine",
) -> type[RuleBasedStateMachine]:
    """A RuleBasedStateMachine class with one rule per command strategy and one invariant check.

    ``invariants`` map a name to a check of the projection (``project(events)``, or the events when
    ``project`` is None): a check fails by returning False or raising AssertionError. The log itself is
    always checked too (ordered, unique ids, gap-free versions). Domain rejections (ValidationFailed and
    the like) are fine; any other error fails the test. ``last_steps`` on the class holds the commands of
    the most recent run, which after a failure is hypothesis's shrunk example.
    """
    if not commands:
        raise InvalidFormat("stateful_test needs at least one command strategy")
    if not invariants:
        raise InvalidFormat("stateful_test needs at least one invariant to check")
    for label, strategy in commands.items():
        if not isinstance(strategy, st.SearchStrategy):
            raise InvalidFormat(
                f"command {label!r} must be a hypothesis strategy of commands, got {strategy!r}"
            )
    make_store = store_factory
    if make_store is None:
        from ..stores.memory import MemoryStore

        make_store = MemoryStore
    checks = dict(invariants)

    def __init__(self: Any) -> None:
        RuleBasedStateMachine.__init__(self)
        self.store = make_store()
        self.executor = Executor(
            self.store,
            retry=RetryConfig.none(),
            timeout=None,
            clock=lambda: DEFAULT_NOW,
            rng=random.Random(0),
        )
        for command in setup:
            self.executor.execute(command)
        self.steps = []
        self.rejected = 0
        type(self).last_steps = self.steps

    def execute_command(self: Any, command: Command[Any]) -> None:
        self.steps.append(command)
        try:
            self.executor.execute(command)
        except REJECTIONS:
            self.rejected += 1

    def invariants_hold(self: Any) -> None:
        events = list(self.store.read_all())
        assert_valid_log(events)
        value = project(events) if project is not None else events
        for label, check in checks.items():
            if check(value) is False:
                trail = "\n".join(f"  {i + 1}. {c!r}" for i, c in enumerate(self.steps)) or "  (setup only)"
                raise AssertionError(f"invariant {label!r} broken after:\n{trail}\nprojection: {value!r}")

    def teardown(self: Any) -> None:
        self.store.close()

    namespace: dict[str, Any] = {
        "__init__": __init__,
        "execute_command": execute_command,
        "teardown": teardown,
        "invariants_hold": invariant()(invariants_hold),
        "last_steps": [],
        "__doc__": f"Commands {', '.join(commands)} checked against {', '.join(checks)}.",
    }
    for label, strategy in commands.items():
        method = f"run_{_slug(label)}"
        if method in namespace:
            raise InvalidFormat(f"two commands map to the same rule name {method!r}; rename one")

        def step(self: Any, command: Command[Any]) -> None:
            self.execute_command(command)

        step.__name__ = method
        namespace[method] = rule(command=strategy)(step)
    return type(name, (RuleBasedStateMachine,), namespace)


def _slug(label: str) -> str:
    slug = re.sub(r"\W+", "_", label.strip().lower()).strip("_")
    if not slug:
        raise InvalidFormat(f"command label {label!r} needs letters or digits")
    return slug
