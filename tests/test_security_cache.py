"""The wrapper's cache of opened events never outlives a subject's keys, and never hides a changed token."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from eventcore_lab import Executor, MemoryStore
from eventcore_lab.examples.customers import ChangeEmail, RegisterCustomer
from eventcore_lab.security import DecryptionFailed, MemoryKeyStore, ProtectedStore
from eventcore_lab.security._crypto import REDACTED


def test_events_read_before_forget_read_redacted_after_it_from_the_same_wrapper() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    executor = Executor(store)
    executor.execute(RegisterCustomer.new("c1", "Ada", "ada@example.com", "i"))
    executor.execute(ChangeEmail.new("c1", "ada@new.example", "i"))  # folds (and caches) the first event
    executor.execute(RegisterCustomer.new("c2", "Bob", "bob@example.com", "i"))
    assert [e.payload.email for e in store.read_stream("customer-c1")] == [
        "ada@example.com",
        "ada@new.example",
    ]
    store.forget("c1")
    assert [e.payload.email for e in store.read_stream("customer-c1")] == [REDACTED, REDACTED]
    assert store.read_stream("customer-c2")[0].payload.name == "Bob"


class Tampering:
    """A store wrapper (the public seam) that serves a chosen event with another payload, as a
    database altered behind the application's back would."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.swapped: dict[object, object] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[Any]:
        events = self.inner.read_stream(stream_id, after_version=after_version)
        return [msgspec.structs.replace(e, payload=self.swapped.get(e.event_id, e.payload)) for e in events]


def test_a_token_swapped_in_the_inner_store_is_not_answered_from_the_cache() -> None:
    inner = Tampering(MemoryStore())
    store = ProtectedStore(inner, MemoryKeyStore())  # type: ignore[arg-type]
    executor = Executor(store)
    executor.execute(RegisterCustomer.new("c1", "Ada", "ada@example.com", "i"))
    executor.execute(RegisterCustomer.new("c2", "Bob", "bob@example.com", "i"))
    assert store.read_stream("customer-c1")[0].payload.name == "Ada"  # cached now
    ada, bob = inner.read_stream("customer-c1")[0], inner.read_stream("customer-c2")[0]
    inner.swapped[ada.event_id] = msgspec.structs.replace(ada.payload, name=bob.payload.name)
    with pytest.raises(DecryptionFailed, match="customer-c1"):
        store.read_stream("customer-c1")
    del inner.swapped[ada.event_id]
    assert store.read_stream("customer-c1")[0].payload.name == "Ada"
