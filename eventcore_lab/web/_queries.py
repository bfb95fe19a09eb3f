"""Query endpoints over read models: ETag / If-None-Match, Cache-Control, page limits.

Queries read projections (kept live by their runners), never event streams. A query may ask to see at
least a given position (``?min_position=``, the ``position`` a command returned), which gives a client
read-your-writes over an eventually consistent read model.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ReadModelBehind, RequestInvalid, ResourceNotFound

_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")


@dataclass(frozen=True)
class CacheConfig:
    """``Cache-Control`` of a query's answers (the manual's public statistics use 300 s and 60 s)."""

    public_max_age: int = 0
    stale_while_revalidate: int = 0

    def header(self) -> str:
        return f"public, max-age={self.public_max_age}, stale-while-revalidate={self.stale_while_revalidate}"


@dataclass(frozen=True)
class QueryRoute:
    """``GET path``: ``fn(read_model, **path_params)``; None answers 404 (``not_found`` names what).

    ``source`` is a ProjectionRunner (read under its lock; started with the app) or any object.
    ``paged`` queries return a list, served in pages (``page`` from 1, ``page_size`` up to
    ``max_page_size``).
    """

    path: str
    fn: Callable[..., Any]
    source: Any
    paged: bool = False
    page_size: int = 20
    max_page_size: int = 100
    cache: CacheConfig = field(default_factory=CacheConfig)
    not_found: str = "Resource"
    summary: str | None = None
    name: str | None = None

    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    def url(self, prefix: str) -> str:
        return prefix.rstrip("/") + self.path


def read_model(route: QueryRoute, params: dict[str, str], min_position: int | None, wait: float) -> Any:
    """Run the query against its read model (blocking: call it from a worker thread)."""
    source = route.source
    runner_query = getattr(source, "query", None)
    if min_position is not None:
        waiter = getattr(source, "wait_until", None)
        if waiter is not None and not waiter(min_position, wait):
            raise ReadModelBehind(
                f"the read model has not reached position {min_position} within {wait} s; retry shortly"
            )
    if callable(runner_query) and hasattr(source, "projection"):
        result = runner_query(lambda projection: route.fn(projection, **params))
    else:
        result = route.fn(source, **params)
    if result is None:
        raise ResourceNotFound(f"{route.not_found} not found")
    return result


def page_of(items: list[Any], page: int, page_size: int, max_page_size: int) -> dict[str, Any]:
    """One page of ``items``; past the last page the list is empty (never an error)."""
    if page < 1:
        raise RequestInvalid("page must be at least 1", {"page": ["must be at least 1"]})
    if page_size < 1:
        raise RequestInvalid("page_size must be at least 1", {"page_size": ["must be at least 1"]})
    if page_size > max_page_size:
        raise RequestInvalid(
            f"Limit cannot exceed {max_page_size}", {"page_size": [f"must be at most {max_page_size}"]}
        )
    start = (page - 1) * page_size
    total = len(items)
    return {
        "items": items[start : start + page_size],
        "pagination": {
            "page": page,
            "page_size": page_size,
            "total_items": total,
            "total_pages": math.ceil(total / page_size),
        },
    }


def etag_of(body: bytes) -> str:
    """A strong ETag: the quoted SHA-256 of the body."""
    return '"' + hashlib.sha256(body).hexdigest() + '"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (a list of tags or ``*`` too, weak tags compared weakly)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags
