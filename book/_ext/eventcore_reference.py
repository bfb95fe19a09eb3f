"""Reference pages generated from the code at build time, so that they cannot drift from it.

``eventcore-error-reference``: a table of every :class:`EventCoreError` subclass found anywhere in the
package (walking the class tree, whichever module a class lives in), with its code, what it means (its
docstring), whether it is retriable, and the HTTP status a web layer answers with.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: HTTP status per kind of error, the manual's mapping, in one place. Keys are class names, so the table
#: survives errors moving between modules; a class that declares ``http_status`` itself wins, and a class
#: not listed takes the status of its nearest listed ancestor, else 500.
HTTP_STATUS = {
    "ValidationFailed": 400,  # the input is malformed
    "ValidationError": 400,
    "InvalidFormat": 400,
    "BusinessRuleViolation": 422,  # well-formed, but the domain says no
    "DomainRefusal": 422,  # a domain's own refusal class (require(cond, MyRefusal)) maps like its base
    "StreamNotFound": 404,
    "ConcurrencyConflict": 409,  # retries ran out: the client may try again
    "VersionConflict": 409,
    "AppendConditionFailed": 409,  # a query-based decision's facts changed: like a version conflict
    "Unauthorized": 401,
    "StreamAccessDenied": 403,
    "Forbidden": 403,
    "RateLimited": 429,
    "Timeout": 504,
}
DEFAULT_HTTP_STATUS = 500


@dataclass(frozen=True)
class ErrorInfo:
    name: str
    module: str
    code: str
    meaning: str
    retriable: bool
    http_status: int
    parent: str


def error_classes() -> list[type]:
    """Every subclass of EventCoreError defined in the package (submodules imported to find them)."""
    import eventcore_lab

    for module in pkgutil.walk_packages(eventcore_lab.__path__, "eventcore_lab."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional dependency (e.g. psycopg) is missing: its errors are skipped
            continue
    base = _base()
    found: dict[str, type] = {}
    stack = [base]
    while stack:
        cls = stack.pop()
        if cls.__module__.startswith("eventcore_lab"):
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        stack.extend(cls.__subclasses__())
    return sorted(found.values(), key=lambda c: (getattr(c, "code", "") or "~", c.__name__))


def http_status(cls: type) -> int:
    declared = cls.__dict__.get("http_status")
    if isinstance(declared, int):
        return declared
    for ancestor in cls.__mro__:
        if isinstance(ancestor.__dict__.get("http_status"), int):
            return int(ancestor.__dict__["http_status"])
        if ancestor.__name__ in HTTP_STATUS:
            return HTTP_STATUS[ancestor.__name__]
    return DEFAULT_HTTP_STATUS


def error_catalogue() -> list[ErrorInfo]:
    base = _base()
    rows = []
    for cls in error_classes():
        parent = next((b.__name__ for b in cls.__mro__[1:] if issubclass(b, base)), "")
        rows.append(
            ErrorInfo(
                name=cls.__name__,
                module=_public_module(cls),
                code=str(getattr(cls, "code", "") or ""),
                meaning=_first_paragraph(cls),
                retriable=bool(getattr(cls, "retriable", False)),
                http_status=http_status(cls),
                parent=parent,
            )
        )
    return rows


def error_table_rst() -> str:
    """The catalogue as an RST list-table (what the directive inserts)."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 10 22 40 10 8",
        "",
        "   * - Code",
        "     - Error",
        "     - What it means",
        "     - Retriable",
        "     - HTTP",
    ]
    for row in error_catalogue():
        lines += [
            f"   * - {row.code or '(none)'}",
            f"     - ``{row.name}`` ({row.parent or 'base'}; ``{row.module}``)",
            f"     - {_rst_text(row.meaning)}",
            f"     - {'yes' if row.retriable else 'no'}",
            f"     - {row.http_status}",
        ]
    return "\n".join(lines) + "\n"


def _base() -> type:
    from eventcore_lab.core.errors import EventCoreError

    return EventCoreError


def _public_module(cls: type) -> str:
    """The shortest public module that exports the class (``eventcore_lab.core.errors`` if none)."""
    module = cls.__module__
    parts = module.split(".")
    candidates = [".".join(parts[:end]) for end in range(1, len(parts))] + ["eventcore_lab.errors"]
    for candidate in candidates:
        try:
            exported = importlib.import_module(candidate)
        except ImportError:
            continue
        listed = cls.__name__ in getattr(exported, "__all__", ())  # names in __all__ only: moved ones warn
        if (
            listed
            and getattr(exported, cls.__name__) is cls
            and not any(p.startswith("_") for p in candidate.split("."))
        ):
            return candidate
    return module


def _first_paragraph(cls: type) -> str:
    own = cls.__dict__.get("__doc__")
    if not own:
        return ""
    return " ".join(inspect.cleandoc(own).split("\n\n", 1)[0].split())


def _rst_text(text: str) -> str:
    return text.replace("|", "\\|") or "(no description)"


def symlinked_doc(target: str, srcdir: Path) -> str | None:
    """The docname of ``target`` when it is the real path of a file under a symlinked folder of the
    book (``book/tutorials -> ../tutorials``), else None.

    Sphinx resolves a link's path with ``Path.resolve()``, which follows the symlink out of the source
    directory, so ``[2.4](../tutorials/2.4-projections.md)`` in a notebook finds no document. Mapping
    the real path back to the link's folder in the book fixes that for every such folder.
    """
    if not os.path.isabs(target):
        return None
    for entry in srcdir.iterdir():
        if entry.is_symlink():
            real = str(entry.resolve())
            if target == real or target.startswith(real + os.sep):
                return entry.name + target[len(real) :].replace(os.sep, "/")
    return None


def setup(app: Any) -> dict[str, Any]:
    from docutils.parsers.rst import Directive
    from docutils.statemachine import StringList
    from sphinx import addnodes
    from sphinx.transforms import SphinxTransform
    from sphinx.util.nodes import nested_parse_with_titles

    class ErrorReference(Directive):
        has_content = False

        def run(self) -> list[Any]:
            from docutils import nodes

            container = nodes.container()
            nested_parse_with_titles(self.state, StringList(error_table_rst().splitlines()), container)
            return list(container.children)

    class SymlinkedLinks(SphinxTransform):
        default_priority = 900

        def apply(self, **kwargs: Any) -> None:
            for node in self.document.findall(addnodes.pending_xref):
                if node.get("refdomain") == "doc" and node.get("reftype") == "myst":
                    docname = symlinked_doc(str(node["reftarget"]), Path(self.env.srcdir))
                    if docname is not None:
                        node["reftarget"] = docname

    app.add_directive("eventcore-error-reference", ErrorReference)
    app.add_transform(SymlinkedLinks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
