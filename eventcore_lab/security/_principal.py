"""Who runs a command: an id for the audit trail, roles for RBAC, attributes for ABAC."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec


class Principal(msgspec.Struct, frozen=True):
    """An authenticated caller. The application authenticates; the library only decides and records.

    ``id`` becomes the events' ``metadata.user_id``; ``roles`` feed :class:`RoleBasedPolicy` and
    :class:`StreamRules`; ``attributes`` (department, tenant, clearance...) feed :class:`AttributePolicy`.
    """

    id: str
    roles: frozenset[str] = frozenset()
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)

    @staticmethod
    def of(id: str, roles: Iterable[str] = (), **attributes: Any) -> Principal:
        return Principal(id, frozenset(roles), dict(attributes))


def as_principal(principal: Any) -> Principal | None:
    """The executor passes what the caller gave as ``user=`` (or the metadata's user id): normalise it.

    A plain string is a principal without roles or attributes, so that it can still be audited and matched
    by id, but grants nothing by role.
    """
    if principal is None or isinstance(principal, Principal):
        return principal
    if isinstance(principal, str):
        return Principal(principal)
    if isinstance(principal, Mapping) and isinstance(principal.get("id"), str):
        return Principal(
            principal["id"], frozenset(principal.get("roles", ())), dict(principal.get("attributes", {}))
        )
    raise TypeError(f"a principal is a Principal, a user id string or None, got {type(principal).__name__}")
