"""The event a crypto-shredding appends, so that the log itself says when and why data was erased."""

from __future__ import annotations

from datetime import datetime

from ..core.registry import Event


class UserDataErased(Event, frozen=True):
    """A subject's keys were destroyed: their personal data now reads as redacted everywhere.

    It holds the subject id (an opaque id, never personal data itself) and nothing that was erased.
    """

    registration = "on_first_use"

    subject: str
    erased_at: datetime
    reason: str
    keys_destroyed: int
