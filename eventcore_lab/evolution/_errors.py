"""The errors of schema evolution, each with a stable code (EV...)."""

from __future__ import annotations

from ..core.errors import EventCoreError, SerializationError


class EvolutionError(EventCoreError):
    """Base of the schema-evolution errors."""

    code = "EV000"


class UpcasterChainGap(EvolutionError, ValueError):
    """An upcaster would leave a version with no way up, or a second one claims the same step."""

    code = "EV001"


class UpcastFailed(SerializationError):
    """A stored payload cannot be brought to the current schema (a step raised, or a chain stops short)."""

    code = "EV002"


class StrictSchemaViolation(SerializationError):
    """Strict schema: a stored payload has fields its current class does not declare."""

    code = "EV003"


class MigrationVerificationFailed(EvolutionError):
    """A migrated store differs from its source (event counts or a stream's content hash)."""

    code = "EV004"
