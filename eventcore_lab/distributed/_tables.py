"""Table projections: a read model declared as SQL tables, whose handlers return statements.

The handlers stay pure (functional core): given an event they return the SQL to run, and the runner runs
it in the same transaction that moves the checkpoint. That is what gives an exactly-once *effect* even
when a worker is killed between two statements: either the whole batch and its checkpoint commit, or
nothing does.

Statement text names tables by their logical name in braces (``{balances}``) and takes parameters as
``?``; the runner substitutes the physical table of the live (or rebuilding) generation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from ..core.events import StoredEvent
from ..projections.base import Projection
from ._errors import ReadModelError

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")


class Sql(NamedTuple):
    """One statement for the read model: text with ``{table}`` names and ``?`` parameters."""

    text: str
    params: tuple[Any, ...] = ()


def sql(text: str, *params: Any) -> Sql:
    """Shorthand for :class:`Sql`: ``sql("UPDATE {totals} SET n = n + ? WHERE k = ?", 1, key)``."""
    return Sql(text, params)


def check_identifier(value: object, what: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise ReadModelError(
            f"{what} must be 1-40 lowercase letters, digits or underscores, not starting with a digit; "
            f"got {value!r}"
        )
    return value


class TableProjection(Projection):
    """A projection whose read model lives in SQL tables (PostgreSQL), next to its checkpoints.

    Declare ``tables`` (logical name -> column definitions) and ``version`` (bump it whenever the fold
    or the tables change: a read model built by another version is refused until it is rebuilt). Mark
    handlers with :func:`~eventcore_lab.projections.handles`; each returns a list of :class:`Sql`.
    """

    tables: ClassVar[Mapping[str, str]] = {}
    version: ClassVar[int] = 1

    def statements(self, event: StoredEvent) -> Sequence[Sql]:
        """The SQL that applies ``event`` (empty for events this projection does not handle)."""
        handler = self._dispatch.get(type(event.payload))
        if handler is None:
            return ()
        result: Any = handler(self, event)
        if result is None:
            return ()
        if isinstance(result, Sql):
            return (result,)
        return tuple(result)

    def apply(self, event: StoredEvent) -> None:
        raise ReadModelError(
            f"{type(self).__name__} is a table projection: its read model is SQL, applied by a "
            "DurableReadModel runner, not in memory"
        )


def check_declaration(projection: object) -> TableProjection:
    """Refuse a projection that cannot become tables, naming what is wrong."""
    if not isinstance(projection, TableProjection):
        raise ReadModelError(f"a durable read model needs a TableProjection, got {type(projection).__name__}")
    check_identifier(projection.name, "the projection name")
    if not projection.tables:
        raise ReadModelError(f"{type(projection).__name__} declares no tables")
    for table, columns in projection.tables.items():
        check_identifier(table, f"table name in {type(projection).__name__}.tables")
        if not isinstance(columns, str) or not columns.strip() or ";" in columns:
            raise ReadModelError(f"columns of table {table!r} must be one SQL column list, got {columns!r}")
    version = projection.version
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReadModelError(f"{type(projection).__name__}.version must be an int >= 1, got {version!r}")
    return projection


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?|%")


def to_pyformat(text: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (a literal ``%`` to ``%%``), leaving quoted strings alone."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return token.replace("%", "%%")

    return _PLACEHOLDER.sub(swap, text)
