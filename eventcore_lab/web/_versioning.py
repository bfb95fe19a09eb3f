"""API versions side by side: URL prefixes, header and media-type negotiation, deprecation headers.

Following the manual: an unknown or missing ``API-Version`` falls back to the default (latest) version
instead of being refused; the old version's responses carry ``Deprecation``, ``Sunset`` and a ``Link`` to
its successor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

_VENDOR = re.compile(r"vnd\.eventcore\.v(\d+)\+json")


def vendor_media_type(version: str) -> str:
    """``application/vnd.eventcore.v<N>+json`` for version ``"<N>"``."""
    return f"application/vnd.eventcore.v{version.removeprefix('v')}+json"


def negotiate_version(headers: Mapping[str, str], supported: Sequence[str], default: str) -> str:
    """The version a request asks for: ``API-Version`` ("1" or "v1"), else a vendor media type in
    ``Content-Type`` or ``Accept``, else ``default``. Unsupported values get the default too."""
    wanted = headers.get("api-version", "").strip().lower().removeprefix("v")
    if wanted in supported:
        return wanted
    for name in ("content-type", "accept"):
        match = _VENDOR.search(headers.get(name, ""))
        if match and match.group(1) in supported:
            return match.group(1)
    return default


@dataclass(frozen=True)
class Deprecation:
    """How a deprecated version announces its end: the sunset date and the successor's documentation."""

    sunset: datetime
    successor: str

    def headers(self) -> list[tuple[str, str]]:
        sunset = self.sunset if self.sunset.tzinfo else self.sunset.replace(tzinfo=UTC)
        return [
            ("Deprecation", "true"),
            ("Sunset", format_datetime(sunset.astimezone(UTC), usegmt=True)),
            ("Link", f'<{self.successor}>; rel="successor-version"'),
        ]


@dataclass(frozen=True)
class ApiVersion:
    """One version of the API: its URL prefix, its command and query routes, and its deprecation."""

    prefix: str
    commands: Sequence[Any] = ()
    queries: Sequence[Any] = ()
    deprecation: Deprecation | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.prefix.rstrip("/").rsplit("/", 1)[-1] or "api"
