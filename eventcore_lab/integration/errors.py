"""Errors of the integration layer (code prefix IN): publishing, circuits, routing and contracts."""

from __future__ import annotations

from ..core.errors import EventCoreError


class IntegrationError(EventCoreError):
    """Exchanging events with other services failed."""


class PublishFailed(IntegrationError):
    """The broker did not confirm every message; ``confirmed`` leading messages were confirmed.

    Retriable: the relay keeps its place and publishes the unconfirmed rest again (the broker drops the
    copies it already stored by message id).
    """

    code = "IN001"
    retriable = True

    def __init__(self, message: str, *, confirmed: int = 0) -> None:
        super().__init__(message)
        self.confirmed = confirmed


class CircuitOpen(IntegrationError):
    """The circuit breaker is open: the call was not made, so a failing service gets time to recover."""

    code = "IN002"
    retriable = True

    def __init__(self, name: str, retry_in: float) -> None:
        self.retry_in = retry_in
        super().__init__(f"circuit {name!r} is open; the next try is allowed in {retry_in:.2f} s")


class CallTimedOut(IntegrationError):
    """A call through a circuit breaker took longer than the breaker's timeout."""

    code = "IN003"
    retriable = True


class UnknownTransformation(IntegrationError):
    """A routing rule names a transformation that is not registered."""

    code = "IN004"


class IncompatibleContract(IntegrationError):
    """A consumer's expectations of an integration event do not match what the producer publishes."""

    code = "IN005"

    def __init__(self, event_type: str, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"consumer of {event_type!r} does not match the producer: " + "; ".join(problems))


class BrokerUnavailable(IntegrationError):
    """The broker could not be reached or refused a management call."""

    code = "IN006"
    retriable = True


class InvalidMessage(IntegrationError):
    """A message from the broker is not an integration event envelope."""

    code = "IN007"
