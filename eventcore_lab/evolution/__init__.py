"""Schema evolution: versioned event classes, upcaster chains, compatibility checks and migrations.

An event class declares ``schema_version`` (default 1); every store keeps the version each event was
written at (a ``schema_version`` column in DuckDB and PostgreSQL, a field in event files). :class:`Upcasters`
holds the steps that bring old payloads up to date; once installed on a registry, every read path returns
current events (on DuckDB's columnar path, chains of renames, defaults and conversions given with their
SQL are upcast in SQL; see ``_columnar``). :func:`check_compatibility` says, before deploying, whether
the current code can read a history; :func:`migrate` rewrites a history into a new store at the current
versions, resumably, and :func:`verify` checks the copy.
"""

from ..core.registry import RetiredEvent, schema_version_of
from ._compatibility import REPORT_COLUMNS, CompatibilityReport, check_compatibility
from ._errors import (
    EvolutionError,
    MigrationVerificationFailed,
    StrictSchemaViolation,
    UpcasterChainGap,
    UpcastFailed,
)
from ._migrate import MigrationResult, content_hashes, migrate, verify
from ._scan import RawEvent, scan
from ._upcasters import (
    Step,
    Upcasters,
    add_field,
    convert_field,
    merge_fields,
    rename_field,
    retype,
    split_field,
)

__all__ = [
    "REPORT_COLUMNS",
    "CompatibilityReport",
    "EvolutionError",
    "MigrationResult",
    "MigrationVerificationFailed",
    "RawEvent",
    "RetiredEvent",
    "Step",
    "StrictSchemaViolation",
    "UpcastFailed",
    "UpcasterChainGap",
    "Upcasters",
    "add_field",
    "check_compatibility",
    "content_hashes",
    "convert_field",
    "merge_fields",
    "migrate",
    "rename_field",
    "retype",
    "scan",
    "schema_version_of",
    "split_field",
    "verify",
]
