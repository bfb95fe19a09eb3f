"""The top-level API is small and pinned; every error class has one public address."""

from __future__ import annotations

import inspect

import pytest

import eventcore_lab
from eventcore_lab import errors
from eventcore_lab.core import errors as core_errors

PUBLIC = [
    "BusinessRuleViolation",
    "Command",
    "ConcurrencyConflict",
    "DomainRefusal",
    "DuckDBStore",
    "Event",
    "EventCoreError",
    "EventRegistry",
    "EventStore",
    "EventToWrite",
    "ExecutionResult",
    "Executor",
    "ExpectedVersion",
    "MemoryStore",
    "Metadata",
    "PostgresStore",
    "RetryConfig",
    "StoredEvent",
    "Timeout",
    "UnknownEvent",
    "ValidationFailed",
    "emit",
    "open_store",
    "require",
    "stream",
]


def test_all_is_pinned() -> None:
    assert eventcore_lab.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(eventcore_lab, name) is not None


def test_dir_shows_the_lazily_loaded_stores() -> None:
    listed = dir(eventcore_lab)
    assert "DuckDBStore" in listed and "PostgresStore" in listed and "errors" in listed
    assert "Phase" not in listed and "default_registry" not in listed


def test_every_error_class_is_in_the_errors_module() -> None:
    defined = {
        name
        for name, value in vars(core_errors).items()
        if inspect.isclass(value) and issubclass(value, core_errors.EventCoreError)
    }
    assert set(errors.__all__) == defined
    assert all(getattr(errors, name) is getattr(core_errors, name) for name in defined)


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("Phase", "eventcore_lab.core.executor"),
        ("StreamId", "eventcore_lab.core.ids"),
        ("default_registry", "eventcore_lab.core.registry"),
        ("VersionConflict", "eventcore_lab.errors"),
    ],
)
def test_moved_names_still_resolve_with_a_warning_that_says_where(name: str, module: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"from {module} import {name}"):
        value = getattr(eventcore_lab, name)
    assert value is getattr(__import__(module, fromlist=[name]), name)


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        eventcore_lab.Nope  # noqa: B018
