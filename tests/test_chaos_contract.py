"""A chaos store that injects nothing is a faithful store: it passes the store contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventcore_lab import MemoryStore
from eventcore_lab.stores.chaos import ChaosStore
from eventcore_lab.testing import StoreContract


class TestQuietChaosStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[ChaosStore]:
        with ChaosStore(
            MemoryStore(), failure_probability=0, conflict_probability=0, latency=None, seed=1
        ) as store:
            yield store
