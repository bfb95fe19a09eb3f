"""Snapshots of a command's folded state, so a command on a long stream reads only its tail.

>>> from eventcore_lab.snapshots import MemorySnapshots, Snapshots
>>> # Executor(store, snapshots=Snapshots(MemorySnapshots(), every=100))
"""

from ._keys import fold_key
from ._policy import Snapshots, Start
from ._stores import DuckDBSnapshots, MemorySnapshots, PostgresSnapshots, Snapshot, SnapshotStore

__all__ = [
    "DuckDBSnapshots",
    "MemorySnapshots",
    "PostgresSnapshots",
    "Snapshot",
    "SnapshotStore",
    "Snapshots",
    "Start",
    "fold_key",
]
