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
