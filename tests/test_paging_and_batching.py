"""Streaming reads page by page on every store, and the micro-batching executor front: many commands
from many threads share commits, each still guarded by its own optimistic check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _every_store import KINDS, open_store

from eventcore_lab import EventToWrite, ExpectedVersion, MemoryStore
from eventcore_lab.core.batching import BatchingExecutor, GroupCommit
from eventcore_lab.core.errors import InvalidArgument, VersionConflict
from eventcore_lab.core.retry import RetryConfig
from eventcore_lab.examples.banking import Deposit, OpenAccount, account_stream
from eventcore_lab.stores.paging import iter_events, iter_stream
from eventcore_lab.testing.contract import ContractNote, write
from eventcore_lab.testing.contract import note as make_note


class CountingPages:
    """Records the ``limit`` of every read, to show no read asks for more than a page."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.limits: list[int | None] = []

    def read_stream(self, stream_id: str, **options: Any) -> Any:
        self.limits.append(options.get("limit"))
        return self.inner.read_stream(stream_id, **options)

    def read_filtered(self, **options: Any) -> Any:
        self.limits.append(options.get("limit"))
        return self.inner.read_filtered(**options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from open_store(request, tmp_path)


def test_streams_and_the_log_are_read_page_by_page(store: Any) -> None:
    store.append([write("long-1", f"e{n}") for n in range(1, 238)])
    store.append([write("other-1", "x"), write("long-1", "e238")])
    whole = store.read_stream("long-1")
    paged = CountingPages(store)
    assert list(iter_stream(paged, "long-1", page_size=25)) == whole
    assert paged.limits and set(paged.limits) == {25}
    assert list(iter_stream(store, "long-1", page_size=25, after_version=230)) == whole[230:]
    assert list(iter_stream(store, "long-1", page_size=7, backwards=True)) == whole[::-1]
    assert (
        list(iter_stream(store, "long-1", page_size=7, backwards=True, after_version=200))
        == whole[200:][::-1]
    )
    assert list(iter_stream(store, "nothing-1", page_size=5)) == []
    everything = store.read_all()
    assert list(iter_events(CountingPages(store), page_size=40)) == everything
    assert list(iter_events(store, page_size=9, categories=["other"])) == [
        e for e in everything if e.stream_id == "other-1"
    ]
    assert list(iter_events(store, page_size=9, after=200, event_types=[ContractNote])) == everything[200:]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgument):
            list(iter_stream(store, "long-1", page_size=bad))  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            list(iter_events(store, page_size=bad))  # type: ignore[arg-type]


class SlowReads:
    """Passes every call through; reads of streams take 20 ms."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def read_streams(self, stream_ids: Any) -> Any:
        time.sleep(0.02)
        return self.inner.read_streams(stream_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_many_threads_share_commits_and_every_command_lands_once(store: Any) -> None:
    threads, rounds = 8, 6
    # reads that take a while (as over a network): every thread is running before the first append
    batching = BatchingExecutor(SlowReads(store), max_wait=0.5)
    for t in range(threads):
        batching.execute(OpenAccount(account_stream(f"b{t}"), owner=f"owner {t}"))
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def client(t: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(timeout=30)
                batching.execute(Deposit(account_stream(f"b{t}"), amount=r + 1))
        except BaseException as exc:  # reported below
            errors.append(exc)

    before = batching.group.commits
    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    commands = threads * rounds
    assert batching.group.commits - before < commands  # commands shared commits...
    for t in range(threads):  # ...and each one landed exactly once, in order
        deposits = [e.payload.amount for e in store.read_stream(account_stream(f"b{t}"))[1:]]
        assert deposits == list(range(1, rounds + 1))


def test_commands_on_one_stream_never_share_a_commit_and_all_succeed(store: Any) -> None:
    retry = RetryConfig(max_attempts=100, initial_delay=0.001, max_delay=0.02)
    batching = BatchingExecutor(store, max_wait=0.005, retry=retry)
    batching.execute(OpenAccount(account_stream("hot"), owner="hot"))
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(5):
                batching.execute(Deposit(account_stream("hot"), amount=1))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=client) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    events = store.read_stream(account_stream("hot"))
    assert [e.version for e in events] == list(range(1, 32))  # 1 opened + 30 deposits, no gap, no loss


def test_a_stale_member_fails_alone_and_the_rest_of_its_group_is_written(store: Any) -> None:
    store.append([write("taken-1", "already here")])
    group = GroupCommit(store, max_batch=2, max_wait=5.0)
    results: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def send(name: str, stream: str, expected: ExpectedVersion) -> None:
        barrier.wait(timeout=10)
        try:
            results[name] = group.append([EventToWrite(stream, make_note(name))], {stream: expected})
        except VersionConflict as exc:
            results[name] = exc

    fresh = threading.Thread(target=send, args=("fresh", "fresh-1", ExpectedVersion.NO_STREAM))
    stale = threading.Thread(target=send, args=("stale", "taken-1", ExpectedVersion.NO_STREAM))
    fresh.start()
    stale.start()
    fresh.join(20)
    stale.join(20)
    assert isinstance(results["stale"], VersionConflict)
    assert [e.payload.text for e in results["fresh"]] == ["fresh"]
    assert group.fallbacks == 1
    assert [e.payload.text for e in store.read_stream("fresh-1")] == ["fresh"]
    assert [e.payload.text for e in store.read_stream("taken-1")] == ["already here"]


def test_bad_settings_are_refused() -> None:
    for bad in ({"max_batch": 0}, {"max_batch": True}, {"max_wait": -1}, {"max_wait": "soon"}):
        with pytest.raises(InvalidArgument):
            GroupCommit(MemoryStore(), **bad)  # type: ignore[arg-type]
