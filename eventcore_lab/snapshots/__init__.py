"""Snapshots of a command's folded state, so a command on a long stream reads only its tail, and of a
projection's state, so a restarted runner replays only the events after the last snapshot.

>>> from eventcore_lab.snapshots import MemorySnapshots, Snapshots
>>> # Executor(store, snapshots=Snapshots(MemorySnapshots(), every=100))
"""

from ._keys import fold_key
from ._policy import Snapshots, Start
from ._projections import ProjectionSnapshots, projection_key
from ._stores import DuckDBSnapshots, MemorySnapshots, PostgresSnapshots, Snapshot, SnapshotStore

__all__ = [
    "DuckDBSnapshots",
    "MemorySnapshots",
    "PostgresSnapshots",
    "ProjectionSnapshots",
    "Snapshot",
    "SnapshotStore",
    "Snapshots",
    "Start",
    "fold_key",
    "projection_key",
]
