"""Projections: read models folded from the log, run live or replayed, in pandas, at any point in time.

>>> from eventcore_lab.projections import Projection, ProjectionRunner, handles
"""

from .base import Projection, ProjectionLike, fold, handles
from .checkpoints import (
    CheckpointStore,
    DuckDBCheckpoints,
    MemoryCheckpoints,
    PostgresCheckpoints,
    StoreCheckpoints,
    checkpoints_for,
)
from .forks import Fork, compare, fork
from .frames import ENVELOPE_COLUMNS, FrameProjection, events_frame, iter_events, replay_frame, sql_frame
from .runner import ErrorPolicy, Lag, ProjectionRunner, SkippedEvent
from .timetravel import FrameDiff, diff_between, diff_frames, state_at

__all__ = [
    "ENVELOPE_COLUMNS",
    "CheckpointStore",
    "DuckDBCheckpoints",
    "ErrorPolicy",
    "Fork",
    "FrameDiff",
    "FrameProjection",
    "Lag",
    "MemoryCheckpoints",
    "PostgresCheckpoints",
    "Projection",
    "ProjectionLike",
    "ProjectionRunner",
    "SkippedEvent",
    "StoreCheckpoints",
    "checkpoints_for",
    "compare",
    "diff_between",
    "diff_frames",
    "events_frame",
    "fold",
    "fork",
    "handles",
    "iter_events",
    "replay_frame",
    "sql_frame",
    "state_at",
]
