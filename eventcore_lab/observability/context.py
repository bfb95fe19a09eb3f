"""Carrying one request's identity from an event to the command it causes, across processes.

The W3C trace context (``traceparent``/``tracestate``) travels in ``Metadata.custom``; correlation and
causation ids travel in their own fields. No tracing library is needed here.
"""

from __future__ import annotations

from typing import Any

from ..core.events import Metadata, StoredEvent

#: The keys of ``Metadata.custom`` that hold the W3C trace context.
TRACE_KEYS = ("traceparent", "tracestate")


def caused_by(event: StoredEvent, *, user_id: str | None = None, **custom: Any) -> Metadata:
    """Metadata for a command run because of ``event``: same correlation id, ``event`` as the cause,
    and the trace context of the command that wrote ``event`` (so its trace continues)."""
    carried = {k: event.metadata.custom[k] for k in TRACE_KEYS if k in event.metadata.custom}
    return Metadata(
        correlation_id=event.metadata.correlation_id,
        causation_id=str(event.event_id),
        user_id=user_id if user_id is not None else event.metadata.user_id,
        custom={**carried, **custom},
    )
