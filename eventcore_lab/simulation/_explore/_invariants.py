"""Invariants stated on a read model instead of the raw store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...core.errors import InvalidFormat
from ._search import Invariant


def on_projection(factory: Callable[[], Any], check: Callable[[Any], object]) -> Invariant:
    """An invariant that folds the store's whole log into a fresh projection from ``factory`` and asks
    ``check(projection)`` (False or AssertionError: broken). A read model is usually where a rule is
    easiest to say ("no balance below zero"), and a fresh fold per state keeps states independent."""
    if not callable(factory) or not callable(check):
        raise InvalidFormat("on_projection(factory, check) takes two callables")

    from ...projections.base import fold  # here, so importing the simulation stays light

    def invariant(store: Any) -> object:
        return check(fold(factory(), store.read_all()))

    invariant.__name__ = getattr(check, "__name__", "projection invariant")
    return invariant
