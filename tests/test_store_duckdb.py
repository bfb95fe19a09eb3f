"""The DuckDB store passes the store contract, in a file and in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.testing.contract import PersistentStoreContract, StoreContract


class TestDuckDBFileContract(StoreContract, PersistentStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[DuckDBStore]:
        store = DuckDBStore(tmp_path / "events.duckdb")
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, tmp_path: Path) -> Iterator[Callable[[DuckDBStore], DuckDBStore]]:
        opened: list[DuckDBStore] = []

        def reopen(store: DuckDBStore) -> DuckDBStore:
            store.close()
            again = DuckDBStore(store.path)
            opened.append(again)
            return again

        yield reopen
        for store in opened:
            store.close()


class TestDuckDBMemoryContract(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[DuckDBStore]:
        with DuckDBStore(":memory:") as store:
            yield store


class TestDuckDBTinyCacheContract(StoreContract, PersistentStoreContract):
    """The contract again with caches of two events: nearly every read goes to DuckDB."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[DuckDBStore]:
        store = DuckDBStore(tmp_path / "events.duckdb", cache_events=2, tail_events=2)
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, tmp_path: Path) -> Iterator[Callable[[DuckDBStore], DuckDBStore]]:
        opened: list[DuckDBStore] = []

        def reopen(store: DuckDBStore) -> DuckDBStore:
            store.close()
            again = DuckDBStore(store.path, cache_events=2, tail_events=2)
            opened.append(again)
            return again

        yield reopen
        for store in opened:
            store.close()
