"""The executor's authorization seam: what a policy is asked, and when.

The executor knows which streams a command will read and write only after it has resolved them
(declared and discovered streams, and the writes ``handle`` returned). It then asks its policy, once per
attempt and before anything is appended; a policy that refuses raises, and nothing is written. The
policies themselves (RBAC, ABAC, stream rules) live in :mod:`eventcore_lab.security`; this module only
fixes the contract, so that the core depends on no policy implementation.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec

from .query import Query


class StreamAccess(msgspec.Struct, frozen=True):
    """The streams one attempt of a command read and is about to write, in order of first use.

    For a command that decides by query, ``read`` also lists the streams the query's events came from
    (so a rule on a stream category applies however the events were found) and ``query`` is the query.
    """

    read: tuple[str, ...]
    write: tuple[str, ...]
    query: Query | None = None


@runtime_checkable
class CommandPolicy(Protocol):
    """Decides whether ``principal`` may run ``command`` over ``streams``; raises to refuse."""

    def authorize(self, principal: Any, command: Any, streams: StreamAccess) -> None: ...
