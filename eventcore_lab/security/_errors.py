"""The security errors. Each names what was refused and why, and never carries key material."""

from __future__ import annotations

from ..core.errors import EventCoreError, InvalidFormat, Unauthorized


class PolicyDenied(Unauthorized):
    """A policy refused a command before anything was written (code CE005, never retried)."""

    def __init__(self, principal: str, command: str, rule: str, reason: str) -> None:
        self.principal = principal
        self.command = command
        self.rule = rule
        super().__init__(
            f"{principal} may not run {command}: denied by rule {rule!r} ({reason}); nothing was written"
        )


class PersonalDataError(InvalidFormat):
    """An event class declares personal data in a way that cannot be encrypted safely."""

    code = "SE001"


class DecryptionFailed(EventCoreError):
    """A ciphertext failed authentication: it was altered, or moved from the event it was made for."""

    code = "SE002"


class KeyStoreError(EventCoreError):
    """The key store could not be read or written."""

    code = "SE003"
