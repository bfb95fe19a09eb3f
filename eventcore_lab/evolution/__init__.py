"""Schema evolution: versioned event classes, upcaster chains, compatibility checks and migrations.

An event class declares ``schema_version`` (default 1); every store keeps the version each event was
written at. :class:`Upcasters` holds the steps that bring old payloads up to date; once installed on a
registry, every read path returns current events. :func:`check_compatibility` says, before deploying,
whether the current code can read a history; :func:`migrate` rewrites a history into a new store at the
current versions, resumably, and verifies the copy.
"""

from ..core.registry import RetiredEvent, schema_version_of
from ._errors import (
    EvolutionError,
    MigrationVerificationFailed,
    StrictSchemaViolation,
    UpcasterChainGap,
    UpcastFailed,
)
from ._upcasters import (
    Step,
    Upcasters,
    convert_field,
    merge_fields,
    rename_field,
    retype,
    split_field,
)

__all__ = [
    "EvolutionError",
    "MigrationVerificationFailed",
    "RetiredEvent",
    "Step",
    "StrictSchemaViolation",
    "UpcastFailed",
    "UpcasterChainGap",
    "Upcasters",
    "convert_field",
    "merge_fields",
    "rename_field",
    "retype",
    "schema_version_of",
    "split_field",
]
