"""Errors of the web layer and the one table that turns any error into an HTTP status.

The table is keyed by error class and looked up along the class's MRO, so a subclass inherits its
parent's row and an application can add rows for its own errors (``create_app(errors={...})``).
Messages of errors that may carry internal details (database errors, programming errors) are replaced
by a fixed public sentence; the others are the library's own messages, which name the problem.

Where the manual is silent we chose: a timeout is 504 (the server gave up waiting on itself), a
transient store failure (connection lost, pool exhausted, transient transaction error, also after the
retries ran out) is 503 with ``Retry-After``; a concurrency conflict stays 409 even after the retries ran
out, as the manual maps it, and so do a store's VersionConflict and AppendConditionFailed. A domain's own
refusal class maps like its nearest base: a BusinessRuleViolation subclass is 422 with its own message, a
direct DomainRefusal subclass 422 DOMAIN_REFUSAL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..core.errors import (
    AppendConditionFailed,
    BusinessRuleViolation,
    ConcurrencyConflict,
    ConnectionFailed,
    ConnectionPoolExhausted,
    DomainRefusal,
    EventCoreError,
    StreamNotFound,
    Timeout,
    TransactionError,
    Unauthorized,
    ValidationError,
    ValidationFailed,
    VersionConflict,
)


class WebError(EventCoreError):
    """An HTTP request was refused by the web layer before or around a command."""


class RequestInvalid(WebError):
    """The request does not match the endpoint's schema; ``field_errors`` names each bad field."""

    code = "WE001"

    def __init__(self, message: str, field_errors: Mapping[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.field_errors = dict(field_errors or {})


class NotAuthenticated(WebError):
    """No credentials, or credentials that do not prove who the caller is."""

    code = "WE002"


class Forbidden(Unauthorized):
    """The caller is known but lacks the role or permission the endpoint needs."""

    code = "WE003"


class RateLimited(WebError):
    """The caller sent more requests than its quota allows in the current window."""

    code = "WE004"
    retriable = True

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyKeyReused(WebError):
    """An Idempotency-Key was sent again with a different request body."""

    code = "WE005"


class RequestInProgress(WebError):
    """A request with the same Idempotency-Key is still running; retry it later."""

    code = "WE006"
    retriable = True


class ResourceNotFound(WebError):
    """A read model, stream or route has nothing under the requested id."""

    code = "WE007"


class ReadModelBehind(WebError):
    """A query asked for a position its read model has not reached in time; retry shortly."""

    code = "WE009"
    retriable = True


class PayloadTooLarge(WebError):
    """The request body is larger than the server accepts."""

    code = "WE008"


@dataclass(frozen=True)
class ErrorRule:
    """How one error class is answered: status, stable code, and the public message.

    ``message=None`` sends the error's own message; a string replaces it (to hide internals).
    ``retry_after`` (seconds) adds a ``Retry-After`` header.
    """

    status: int
    code: str
    message: str | None = None
    help: str | None = None
    retry_after: int | None = None


INTERNAL = ErrorRule(500, "INTERNAL_ERROR", "An internal error occurred")

#: The manual's status mapping (chapter 4.1 and 4.2) plus the rows it leaves open.
ERROR_STATUS: dict[type[BaseException], ErrorRule] = {
    RequestInvalid: ErrorRule(
        400, "VALIDATION_ERROR", help="Check the field_errors for specific validation issues"
    ),
    ValidationFailed: ErrorRule(400, "VALIDATION_FAILED"),
    ValidationError: ErrorRule(400, "INVALID_VALUE"),
    BusinessRuleViolation: ErrorRule(422, "BUSINESS_RULE_VIOLATION"),
    # a domain's own refusal (require(cond, CourseFull)) that derives from neither row above
    DomainRefusal: ErrorRule(422, "DOMAIN_REFUSAL"),
    IdempotencyKeyReused: ErrorRule(422, "IDEMPOTENCY_KEY_REUSED"),
    StreamNotFound: ErrorRule(404, "RESOURCE_NOT_FOUND"),
    ResourceNotFound: ErrorRule(404, "RESOURCE_NOT_FOUND"),
    ConcurrencyConflict: ErrorRule(
        409,
        "CONFLICT",
        "Resource was modified by another request",
        help="The resource was modified. Please refresh and try again.",
        retry_after=1,
    ),
    # a store's own conflicts, when code appends without the executor (which turns them into the above)
    VersionConflict: ErrorRule(409, "CONFLICT", "Resource was modified by another request", retry_after=1),
    AppendConditionFailed: ErrorRule(
        409, "CONFLICT", "Resource was modified by another request", retry_after=1
    ),
    RequestInProgress: ErrorRule(409, "REQUEST_IN_PROGRESS", retry_after=1),
    NotAuthenticated: ErrorRule(401, "UNAUTHORIZED"),
    Unauthorized: ErrorRule(403, "FORBIDDEN"),
    PayloadTooLarge: ErrorRule(413, "PAYLOAD_TOO_LARGE"),
    RateLimited: ErrorRule(429, "RATE_LIMITED"),
    ConnectionFailed: ErrorRule(
        503, "SERVICE_UNAVAILABLE", "The event store is unavailable; try again shortly", retry_after=1
    ),
    ConnectionPoolExhausted: ErrorRule(
        503, "SERVICE_UNAVAILABLE", "The server is busy; try again shortly", retry_after=1
    ),
    Timeout: ErrorRule(504, "TIMEOUT"),
    ReadModelBehind: ErrorRule(503, "READ_MODEL_BEHIND", retry_after=1),
}

_TRANSIENT = ErrorRule(
    503, "SERVICE_UNAVAILABLE", "A transient store error occurred; try again", retry_after=1
)


def rule_for(
    error: BaseException, table: Mapping[type[BaseException], ErrorRule] = ERROR_STATUS
) -> ErrorRule:
    """The row for ``error``: the nearest class in its MRO, else 500 without details."""
    if isinstance(error, TransactionError) and error.retriable:
        return table.get(type(error), _TRANSIENT)
    for klass in type(error).__mro__:
        rule = table.get(klass)
        if rule is not None:
            return rule
    return INTERNAL


def error_body(error: BaseException, rule: ErrorRule, request_id: str | None) -> dict[str, object]:
    """The one body shape: ``{"error": {"code", "message", "field_errors"?, "help"?}, "request_id"}``."""
    if rule.message is not None:
        message = rule.message
    elif isinstance(error, EventCoreError):
        message = error.message
    else:
        message = str(error)
    detail: dict[str, object] = {"code": rule.code, "message": message}
    field_errors = getattr(error, "field_errors", None)
    if field_errors:
        detail["field_errors"] = field_errors
    if rule.help:
        detail["help"] = rule.help
    return {"error": detail, "request_id": request_id}
