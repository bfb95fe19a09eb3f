"""Errors of the distributed runners: codes in the projection family (PR01x)."""

from __future__ import annotations

from ..core.errors import ProjectionError


class ReadModelError(ProjectionError):
    """A durable read model cannot be used as asked (bad declaration, changed fold, wrong partitions)."""

    code = "PR010"
