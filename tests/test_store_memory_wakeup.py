"""The memory store notifies only when a reader waits: a waiting reader is still woken by an append.

A missed notification would not fail a poll outright (the wait ends at its timeout and then sees the
event), so these readers wait far longer (120 s) than the join allows (20 s): only a notification ends
their wait in time.
"""

from __future__ import annotations

import threading
import time

from eventcore_lab.stores.memory import MemoryStore
from eventcore_lab.testing._contract_events import write

_WAIT = 120.0
_JOIN = 20.0


def _waiter(store: MemoryStore, after: int, results: list[bool]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(store.wait_for_events(after, _WAIT)), daemon=True)
    thread.start()
    return thread


def test_an_append_wakes_every_waiting_reader() -> None:
    store = MemoryStore()
    results: list[bool] = []
    waiters = [_waiter(store, 0, results) for _ in range(3)]
    time.sleep(0.2)  # let them reach the wait (if one does not, it returns at once: still correct)
    store.append([write("wake", "one")])
    for thread in waiters:
        thread.join(_JOIN)
        assert not thread.is_alive(), "a waiting reader was not woken by the append"
    assert results == [True, True, True]


def test_a_reader_waiting_again_is_woken_by_the_next_append() -> None:
    store = MemoryStore()
    for after, text in enumerate(["first", "second"]):
        results: list[bool] = []
        thread = _waiter(store, after, results)
        time.sleep(0.2)
        store.append([write("wake", text)])
        thread.join(_JOIN)
        assert not thread.is_alive() and results == [True]


def test_close_wakes_a_waiting_reader_with_no_news() -> None:
    store = MemoryStore()
    results: list[bool] = []
    thread = _waiter(store, 0, results)
    time.sleep(0.2)
    store.close()
    thread.join(_JOIN)
    assert not thread.is_alive() and results == [False]
