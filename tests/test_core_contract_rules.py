"""Errors, expected versions and the registry keep the store contract's promises."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import pytest

from eventcore_lab import Command, Event, Executor, MemoryStore, RetryConfig, emit, require, stream
from eventcore_lab.core.errors import (
    BusinessRuleViolation,
    DomainRefusal,
    InvalidArgument,
    RegistryConflict,
    StreamNotFound,
    TransactionError,
    ValidationFailed,
)
from eventcore_lab.core.events import EventToWrite, ExpectedVersion, StoredEvent, VersionCheck
from eventcore_lab.core.registry import EventRegistry, default_registry
from eventcore_lab.stores.base import StreamsRead
from eventcore_lab.testing.contract import note, write

# -- ExpectedVersion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "version", "words"),
    [
        ("exakt", 1, "unknown expected-version kind 'exakt'"),
        ("exact", -1, "int >= 0"),
        ("exact", None, "int >= 0"),
        ("exact", True, "int >= 0"),
        ("exact", 1.0, "int >= 0"),
        ("any", 3, "takes no version"),
        ("no_stream", 0, "takes no version"),
    ],
)
def test_expected_version_is_checked_at_construction(kind: str, version: object, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        ExpectedVersion(kind, version)  # type: ignore[arg-type]


def test_expected_version_kinds_are_an_enum_and_strings_still_work() -> None:
    assert ExpectedVersion("exact", 2) == ExpectedVersion.exact(2)
    assert ExpectedVersion("any").kind is VersionCheck.ANY is ExpectedVersion.ANY.kind
    assert str(ExpectedVersion.NO_STREAM) == "no stream" and str(ExpectedVersion.exact(4)) == "version 4"
    with pytest.raises(ValueError, match="int >= 0"):  # InvalidArgument is still a ValueError
        ExpectedVersion.exact(-2)


# -- errors ------------------------------------------------------------------------------------------


class Named(Event):
    event_type = "tests.contract_rules.Named"
    name: str


class Register(Command[bool]):
    user: str = stream()
    name: str

    def apply(self, state: bool, event: StoredEvent) -> bool:
        return True

    def handle(self, state: bool, ctx: Any) -> list[EventToWrite]:
        require(self.name.strip(), "a name is required")
        if state:
            raise BusinessRuleViolation(f"{self.user} is already registered")
        return [emit(self.user, Named(name=self.name))]


class Rename(Command[None]):
    user: str = stream(must_exist=True)
    name: str

    def handle(self, state: None, ctx: Any) -> list[EventToWrite]:
        return [emit(self.user, Named(name=self.name))]


def test_one_base_class_catches_every_domain_refusal() -> None:
    executor = Executor(MemoryStore())
    executor.execute(Register("user-1", "Ann"))
    for command, kind in (
        (Register("user-2", " "), ValidationFailed),
        (Register("user-1", "Bo"), BusinessRuleViolation),
    ):
        with pytest.raises(DomainRefusal) as error:
            executor.execute(command)
        assert type(error.value) is kind and not error.value.retriable


def test_a_stream_that_must_exist_raises_stream_not_found() -> None:
    store = MemoryStore()
    with pytest.raises(StreamNotFound, match="'user-9'") as error:
        Executor(store).execute(Rename("user-9", "Cy"))
    assert error.value.code == "CE004" and error.value.attempts == 1 and store.head() == 0
    Executor(store).execute(Register("user-9", "Cy"))
    assert Executor(store).execute(Rename("user-9", "Di")).events_written[0].payload == Named(name="Di")


class SharedFailure:
    """A store wrapper (the public seam) whose append fails with one exception object for every caller,
    as a group commit does for all appends of a failed group."""

    def __init__(self, inner: MemoryStore, error: Exception) -> None:
        self.inner = inner
        self.registry = inner.registry
        self.error = error

    def append(
        self, events: Sequence[EventToWrite], expected: Mapping[str, ExpectedVersion] | None = None
    ) -> list[StoredEvent]:
        raise self.error

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        return self.inner.read_streams(stream_ids)


def test_the_executor_never_writes_on_a_store_error_shared_with_others() -> None:
    shared = TransactionError("the group commit failed", retriable=True)
    store = SharedFailure(MemoryStore(), shared)
    quick = RetryConfig(max_attempts=2, initial_delay=0, max_delay=0, jitter=False)
    with pytest.raises(TransactionError) as first:
        Executor(store, retry=quick, sleep=lambda _: None).execute(Register("u", "a"))  # type: ignore[arg-type]
    with pytest.raises(TransactionError) as second:
        Executor(store, retry=RetryConfig.none()).execute(Register("u", "a"))  # type: ignore[arg-type]
    assert first.value.attempts == 3 and second.value.attempts == 1
    assert shared.attempts is None  # the object other callers hold is untouched
    assert first.value.__cause__ is shared and second.value.__cause__ is shared
    assert "(after 3 attempts)" in str(first.value) and "after" not in str(shared)


# -- the registry ----------------------------------------------------------------------------------


def test_importing_any_module_registers_nothing() -> None:
    script = textwrap.dedent(
        """
        import importlib, pkgutil
        import eventcore_lab
        from eventcore_lab.core.registry import default_registry
        before = list(default_registry)
        modules = [m.name for m in pkgutil.walk_packages(eventcore_lab.__path__, "eventcore_lab.")]
        for name in modules:
            importlib.import_module(name)
        assert len(modules) > 40, modules
        print(sorted(set(default_registry) - set(before)))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_users_class_may_take_a_name_an_example_declares() -> None:
    script = textwrap.dedent(
        """
        import eventcore_lab.simulation  # imports the banking example
        from eventcore_lab import Event, MemoryStore, EventToWrite
        from eventcore_lab.core.errors import RegistryConflict
        from eventcore_lab.examples import banking

        class AccountOpened(Event):
            owner: str

        store = MemoryStore()
        store.append([EventToWrite("a", AccountOpened(owner="me"))])
        assert type(store.read_all()[0].payload) is AccountOpened
        try:
            store.append([EventToWrite("b", banking.AccountOpened(owner="bank"))])
        except RegistryConflict as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    message = done.stdout
    assert "__main__.AccountOpened" in message and "eventcore_lab.examples.banking.AccountOpened" in message
    assert "event_type" in message  # says how to fix it


def test_a_collision_names_both_classes_and_the_fix() -> None:
    registry = EventRegistry()

    class First:
        pass

    class Second:
        pass

    registry.register(First, "taken")
    with pytest.raises(RegistryConflict, match="already used by") as error:
        registry.register(Second, "taken")
    assert "First" in str(error.value) and "Second" in str(error.value) and "event_type" in str(error.value)


class Student:
    class Registered(Event):
        student: str


class Course:
    class Registered(Event):
        course: str


def test_nested_classes_with_the_same_short_name_coexist() -> None:
    assert default_registry.type_name(Student.Registered(student="s")) == "Student.Registered"
    assert default_registry.type_name(Course.Registered(course="c")) == "Course.Registered"
    store = MemoryStore()
    store.append(
        [EventToWrite("x", Student.Registered(student="s")), EventToWrite("x", Course.Registered(course="c"))]
    )
    assert [type(e.payload) for e in store.read_all()] == [Student.Registered, Course.Registered]


def test_classes_defined_in_functions_keep_their_short_name() -> None:
    class LocalThing(Event):
        value: int

    assert default_registry.type_name(LocalThing(value=1)) == "LocalThing"


def test_a_durable_store_keeps_note_events_readable_after_registration_on_first_use(tmp_path: Any) -> None:
    """The contract's own events register on first use: reading a file that holds them registers them."""
    from eventcore_lab.stores.duckdb import DuckDBStore

    with DuckDBStore(tmp_path / "e.duckdb") as store:
        store.append([write("s", "one")])
    script = textwrap.dedent(
        f"""
        from eventcore_lab.stores.duckdb import DuckDBStore
        from eventcore_lab.testing.contract import ContractNote
        with DuckDBStore({str(tmp_path / "e.duckdb")!r}) as store:
            print(type(store.read_all()[0].payload) is ContractNote)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
    assert note("x").text == "x"


# -- unknown event types in projections ------------------------------------------------------------------


def test_projections_skip_unknown_types_unless_they_handle_them() -> None:
    from eventcore_lab.core.registry import UnknownEvent
    from eventcore_lab.projections import Projection, fold, handles
    from eventcore_lab.testing.contract import ContractNote

    class Notes(Projection):
        def __init__(self) -> None:
            self.texts: list[str] = []

        @handles(ContractNote)
        def noted(self, event: StoredEvent) -> None:
            self.texts.append(event.payload.text)

    class NotesAndUnknown(Notes):
        def __init__(self) -> None:
            super().__init__()
            self.unknown: list[str] = []

        @handles(UnknownEvent)
        def unknown_type(self, event: StoredEvent) -> None:
            self.unknown.append(event.payload.event_type)

    store = MemoryStore()
    store.append([write("s", "a")])
    gone = UnknownEvent("tests.Gone", b'{"x":1}')
    first = store.read_all()[0]
    store.import_events(
        [
            msgspec.structs.replace(
                first, event_id=uuid.uuid4(), version=2, event_type="tests.Gone", payload=gone
            )
        ]
    )
    store.append([write("s", "b")])
    assert fold(Notes(), store.read_all()).texts == ["a", "b"]
    both = fold(NotesAndUnknown(), store.read_all())
    assert both.texts == ["a", "b"] and both.unknown == ["tests.Gone"]
