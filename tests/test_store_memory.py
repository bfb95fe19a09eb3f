"""The in-memory store passes the store contract."""

from collections.abc import Iterator

import pytest

from eventcore_lab import MemoryStore
from eventcore_lab.testing.contract import StoreContract


class TestMemoryStoreContract(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        with MemoryStore() as store:
            yield store
