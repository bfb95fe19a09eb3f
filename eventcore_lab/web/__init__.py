"""Serve a domain over HTTP: the same commands and read models as in the notebook (optional extra).

``pip install eventcore-lab[web]`` brings FastAPI, uvicorn, PyJWT and httpx; the core never imports this
package, so it works without them.

>>> from eventcore_lab.web import create_app, serve
"""

try:
    import fastapi  # noqa: F401
    import httpx  # noqa: F401
    import jwt  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as missing:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        f"eventcore_lab.web needs the 'web' extra ({missing.name} is not installed): "
        "pip install 'eventcore-lab[web]'"
    ) from missing

from ._app import BatchRequest, create_app, shutdown_streams
from ._auth import (
    ANONYMOUS,
    ApiKey,
    ApiKeyAuth,
    Authenticator,
    JwtAuth,
    Principal,
    Rule,
    any_role,
    first_of,
    has_permission,
)
from ._commands import CommandRoute
from ._health import library_health
from ._idempotency import (
    DuckDBIdempotency,
    IdempotencyStore,
    MemoryIdempotency,
    PostgresIdempotency,
    idempotency_for,
)
from ._queries import CacheConfig, QueryRoute
from ._ratelimit import RateLimit
from ._serve import Server, client, serve
from ._versioning import ApiVersion, Deprecation, negotiate_version, vendor_media_type
from .errors import (
    ERROR_STATUS,
    ErrorRule,
    Forbidden,
    IdempotencyKeyReused,
    NotAuthenticated,
    PayloadTooLarge,
    RateLimited,
    ReadModelBehind,
    RequestInProgress,
    RequestInvalid,
    ResourceNotFound,
    WebError,
    rule_for,
)

__all__ = [
    "ANONYMOUS",
    "ERROR_STATUS",
    "ApiKey",
    "ApiKeyAuth",
    "ApiVersion",
    "Authenticator",
    "BatchRequest",
    "CacheConfig",
    "CommandRoute",
    "Deprecation",
    "DuckDBIdempotency",
    "ErrorRule",
    "Forbidden",
    "IdempotencyKeyReused",
    "IdempotencyStore",
    "JwtAuth",
    "MemoryIdempotency",
    "NotAuthenticated",
    "PayloadTooLarge",
    "PostgresIdempotency",
    "Principal",
    "QueryRoute",
    "RateLimit",
    "RateLimited",
    "ReadModelBehind",
    "RequestInProgress",
    "RequestInvalid",
    "ResourceNotFound",
    "Rule",
    "Server",
    "WebError",
    "any_role",
    "client",
    "create_app",
    "first_of",
    "has_permission",
    "idempotency_for",
    "library_health",
    "negotiate_version",
    "rule_for",
    "serve",
    "shutdown_streams",
    "vendor_media_type",
]
