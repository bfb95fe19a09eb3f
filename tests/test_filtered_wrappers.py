"""Every store wrapper forwards the filtered-read arguments, and a wrapped store whose inner store was
written against the plain signature keeps serving plain reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from eventcore_lab import EventToWrite, MemoryStore
from eventcore_lab.core.errors import InvalidArgument
from eventcore_lab.observability import ObservedStore, Recorder
from eventcore_lab.projections.base import Projection, handles
from eventcore_lab.projections.runner import ProjectionRunner
from eventcore_lab.security import LimitedStore, Limits, MemoryKeyStore, ProtectedStore
from eventcore_lab.simulation._explore._footprint import RecordingStore
from eventcore_lab.stores.chaos import ChaosStore
from eventcore_lab.testing.contract import ContractNote, note

WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "chaos": lambda inner: ChaosStore(
        inner, failure_probability=0, conflict_probability=0, latency=None, seed=1
    ),
    "observed": lambda inner: ObservedStore(inner, [Recorder()]),
    "protected": lambda inner: ProtectedStore(inner, MemoryKeyStore()),
    "limited": lambda inner: LimitedStore(inner, Limits(max_read_page=50)),
    "footprint": RecordingStore,
}


def _fill(store: MemoryStore) -> None:
    for n in range(30):
        store.append([EventToWrite(f"{'ab'[n % 2]}-{n % 3}", note(f"n{n}", number=n))])


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_wrappers_forward_filters_backwards_and_limits(kind: str) -> None:
    inner = MemoryStore()
    _fill(inner)
    store = WRAPPERS[kind](inner)
    expected = [e for e in inner.read_all() if e.stream_id.startswith("a-")]
    assert store.read_all(categories=["a"], limit=50) == expected
    assert store.read_all(categories=["b"], backwards=True, limit=3) == inner.read_all(
        categories=["b"], backwards=True, limit=3
    )
    read = store.read_filtered(categories=["a"], limit=5)
    assert read.events == expected[:5] and read.position == expected[4].position
    assert store.read_stream("a-0", backwards=True, limit=2) == inner.read_stream("a-0")[::-1][:2]
    assert store.read_stream("a-0", event_types=[ContractNote]) == inner.read_stream("a-0")
    with pytest.raises(InvalidArgument):
        store.read_all(categories=["a-b"], limit=5)
    if kind != "footprint":  # the footprint recorder is a command-side wrapper: no subscriptions
        with store.subscribe(categories=["b"], batch_size=4) as sub:
            got = [sub.poll(0.5) for _ in range(15)]
        assert got == [e for e in inner.read_all() if e.stream_id.startswith("b-")]


class PlainStore:
    """A store written against the protocol before filtered reads: no read_filtered, plain signatures."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.registry = self.inner.registry

    def append(self, events: Any, expected: Any = None) -> Any:
        return self.inner.append(events, expected)

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> Any:
        return self.inner.read_stream(stream_id, after_version=after_version)

    def read_all(self, *, after: int = 0, limit: int | None = None) -> Any:
        return self.inner.read_all(after=after, limit=limit)

    def head(self) -> int:
        return self.inner.head()

    def wait_for_events(self, after: int, timeout: float) -> bool:
        return self.inner.wait_for_events(after, timeout)


class Notes(Projection):
    def __init__(self) -> None:
        self.seen: list[int] = []

    @handles(ContractNote)
    def _note(self, event: Any) -> None:
        self.seen.append(event.position)


@pytest.mark.parametrize("kind", ["observed", "protected", "chaos"])
def test_a_plain_inner_store_keeps_serving_plain_reads_and_runners(kind: str) -> None:
    plain = PlainStore()
    _fill(plain.inner)
    store = WRAPPERS[kind](plain)
    assert store.read_all(limit=50) == plain.read_all()
    assert store.read_stream("a-0") == plain.read_stream("a-0")
    runner = ProjectionRunner(plain, Notes())  # no read_filtered: the runner reads every event
    runner.run_until_caught_up()
    assert runner.projection.seen == list(range(1, 31)) and runner.position == 30
