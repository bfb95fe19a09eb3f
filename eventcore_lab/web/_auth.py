"""Who is calling: pluggable authentication hooks and per-command permission rules.

EventCore itself does not authenticate (the security guide leaves it to the application). These are
hooks with working defaults: an ``Authenticator`` is any callable that takes the request's headers and
returns a :class:`Principal` or raises :class:`NotAuthenticated`. The principal's id becomes the
``user_id`` of every event the request writes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt

from .errors import NotAuthenticated


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (a user or a service) with its roles and permissions."""

    id: str
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    kind: str = "user"

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_any_role(self, roles: Iterable[str]) -> bool:
        return any(r in self.roles for r in roles)

    def can(self, permission: str) -> bool:
        return permission in self.permissions


ANONYMOUS = Principal("anonymous", kind="anonymous")

Authenticator = Callable[[Mapping[str, str]], Principal]
#: A permission rule: may this principal run this command? (``command`` is the built Command.)
Rule = Callable[[Principal, Any], bool]


def anonymous(headers: Mapping[str, str]) -> Principal:
    """The default when no authenticator is given: everyone is the same anonymous caller."""
    return ANONYMOUS


def any_role(*roles: str) -> Rule:
    """A rule that passes when the caller has at least one of ``roles`` (e.g. can_assign_tasks)."""
    wanted = frozenset(roles)

    def rule(principal: Principal, command: Any) -> bool:
        return bool(wanted & principal.roles)

    rule.__name__ = f"any_role({', '.join(sorted(wanted))})"
    return rule


def has_permission(permission: str) -> Rule:
    """A rule that passes when the caller holds ``permission``."""

    def rule(principal: Principal, command: Any) -> bool:
        return principal.can(permission)

    rule.__name__ = f"has_permission({permission})"
    return rule


class JwtAuth:
    """Bearer JWT authentication (PyJWT): signature, expiry, and issuer/audience when configured.

    Claims: ``sub`` (the user id), ``exp``, ``iat``, ``roles`` and ``permissions`` (lists of strings).
    :meth:`mint` creates tokens that this authenticator accepts (it includes ``iss``/``aud``, which the
    manual's minting code forgets).
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        algorithm: str = "HS256",
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 0.0,
        token_ttl: float = 3600.0,
    ) -> None:
        if not secret:
            raise ValueError("JwtAuth needs a non-empty secret")
        self._secret = secret
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.token_ttl = token_ttl

    def __call__(self, headers: Mapping[str, str]) -> Principal:
        header = headers.get("authorization")
        if not header:
            raise NotAuthenticated("Missing authentication token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("Missing or invalid Authorization header")
        try:
            claims = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("Token expired") from None
        except jwt.PyJWTError:
            raise NotAuthenticated("Invalid authentication token") from None
        subject = claims.get("sub")
        roles = claims.get("roles", [])
        permissions = claims.get("permissions", [])
        if not _strings(roles) or not _strings(permissions) or not str(subject).strip():
            raise NotAuthenticated("Invalid authentication token")
        return Principal(str(subject), frozenset(roles), frozenset(permissions))

    def mint(
        self,
        subject: str,
        *,
        roles: Iterable[str] = (),
        permissions: Iterable[str] = (),
        ttl: float | None = None,
        now: float | None = None,
    ) -> str:
        """A signed access token for ``subject`` valid for ``ttl`` seconds (default ``token_ttl``)."""
        issued = time.time() if now is None else now
        claims: dict[str, Any] = {
            "sub": subject,
            "iat": int(issued),
            "exp": int(issued + (self.token_ttl if ttl is None else ttl)),
            "roles": list(roles),
            "permissions": list(permissions),
        }
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        return jwt.encode(claims, self._secret, algorithm=self.algorithm)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True)
class ApiKey:
    """A service's API key record; only the SHA-256 of the key itself is kept."""

    service_name: str
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    expires_at: datetime | None = None


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class ApiKeyAuth:
    """Service-to-service authentication by ``X-API-Key``, looked up by the key's hash."""

    keys: dict[str, ApiKey] = field(default_factory=dict)  # sha256 hex -> record
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @classmethod
    def from_keys(cls, keys: Mapping[str, ApiKey]) -> ApiKeyAuth:
        """Build from plain keys (hashed here, so the plain keys need not be kept)."""
        return cls({hash_api_key(k): v for k, v in keys.items()})

    def __call__(self, headers: Mapping[str, str]) -> Principal:
        key = headers.get("x-api-key")
        if not key:
            raise NotAuthenticated("Missing API key")
        record = self.keys.get(hash_api_key(key))
        if record is None:
            raise NotAuthenticated("Invalid API key")
        if record.expires_at is not None and record.expires_at < self.clock():
            raise NotAuthenticated("API key expired")
        return Principal(record.service_name, record.roles, record.permissions, kind="service")


def first_of(*authenticators: Authenticator, api_key_header: str = "x-api-key") -> Authenticator:
    """API-key callers use ``X-API-Key``; everyone else goes to the other authenticators in order."""
    if not authenticators:
        raise ValueError("first_of needs at least one authenticator")

    def authenticate(headers: Mapping[str, str]) -> Principal:
        if api_key_header in headers:
            for auth in authenticators:
                if isinstance(auth, ApiKeyAuth):
                    return auth(headers)
        others = [a for a in authenticators if not isinstance(a, ApiKeyAuth)] or list(authenticators)
        return others[0](headers)

    return authenticate
