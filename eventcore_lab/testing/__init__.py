"""Tools for testing event-sourced code: given/when/then scenarios, builders, assertions, hypothesis
strategies, a stateful test builder, and the store contract suite.

Importing this package imports pytest and hypothesis (test dependencies).
"""

from .assertions import (
    assert_events_ordered,
    assert_stream_contains,
    assert_stream_versions,
    assert_unique_event_ids,
    assert_valid_log,
    event_types,
)
from .builders import StoredEventBuilder, build_history, restamp, stored_event
from .contract import PersistentStoreContract, StoreContract
from .scenario import ANY, ExpectedError, Scenario
from .stateful import REJECTIONS, stateful_test
from .strategies import any_event, command_sequences, events, invalid_stream_ids, metadata, stream_ids

__all__ = [
    "ANY",
    "REJECTIONS",
    "ExpectedError",
    "PersistentStoreContract",
    "Scenario",
    "StoreContract",
    "StoredEventBuilder",
    "any_event",
    "assert_events_ordered",
    "assert_stream_contains",
    "assert_stream_versions",
    "assert_unique_event_ids",
    "assert_valid_log",
    "build_history",
    "command_sequences",
    "event_types",
    "events",
    "invalid_stream_ids",
    "metadata",
    "restamp",
    "stateful_test",
    "stored_event",
    "stream_ids",
]
