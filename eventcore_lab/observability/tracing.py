"""OpenTelemetry spans: one per command, with a child span per phase (read, decide, commit, backoff).

Needs the ``tracing`` extra (``opentelemetry-api``; an SDK to export). The command span continues the
trace found in the command's metadata (``traceparent`` in ``Metadata.custom``, see
:func:`~eventcore_lab.observability.context.caused_by`) and puts its own context there, so the events it
writes carry it to whoever reacts to them, in this process or another.

Phase spans are recorded with the phases' real start and end times once each phase is over: the
executor's phases may be interleaved by a simulator, so they cannot be "current" spans.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .events import (
    CommandFailed,
    CommandRetried,
    CommandStarted,
    CommandSucceeded,
    Observation,
    PhaseCompleted,
    StoreOperation,
)

_propagator = TraceContextTextMapPropagator()


class TracingObserver:
    """An observer that turns command observations into spans of ``tracer`` (default: the global
    tracer provider's ``eventcore_lab`` tracer)."""

    def __init__(self, tracer: trace.Tracer | None = None, *, tracer_provider: Any = None) -> None:
        if tracer is None:
            tracer = trace.get_tracer("eventcore_lab", tracer_provider=tracer_provider)
        self.tracer = tracer
        self._open: dict[int, tuple[Any, Any]] = {}  # command id -> (span, context)
        self._backoff: dict[int, tuple[int, int]] = {}  # command id -> (start ns, attempt)
        self._lock = threading.Lock()

    def observe(self, observation: Observation) -> None:
        kind = type(observation)
        if kind is CommandStarted:
            self._start(observation)  # type: ignore[arg-type]
        elif kind is PhaseCompleted:
            self._phase(observation)  # type: ignore[arg-type]
        elif kind is CommandRetried:
            self._retried(observation)  # type: ignore[arg-type]
        elif kind is CommandSucceeded or kind is CommandFailed:
            self._end(observation)  # type: ignore[arg-type]
        elif kind is StoreOperation:
            pass  # store calls inside a command already appear as its read and commit phases

    def _start(self, o: CommandStarted) -> None:
        custom = o.metadata_custom
        carrier = {k: str(custom[k]) for k in ("traceparent", "tracestate") if k in custom}
        parent = _propagator.extract(carrier) if carrier else otel_context.get_current()
        span = self.tracer.start_span(
            f"command {o.command_type}",
            context=parent,
            start_time=o.start_ns,
            attributes={
                "command.type": o.command_type,
                "correlation_id": o.correlation_id,
                "causation_id": o.causation_id or "",
            },
        )
        ctx = trace.set_span_in_context(span)
        _propagator.inject(o.carry, context=ctx)
        with self._lock:
            self._open[o.command_id] = (span, ctx)

    def _context(self, command_id: int) -> Any:
        with self._lock:
            entry = self._open.get(command_id)
        return entry[1] if entry else None

    def _phase(self, o: PhaseCompleted) -> None:
        ctx = self._context(o.command_id)
        if ctx is None:
            return
        with self._lock:
            backoff = self._backoff.pop(o.command_id, None)
        if backoff is not None:
            start, attempt = backoff
            span = self.tracer.start_span("backoff", context=ctx, start_time=start)
            span.set_attribute("command.attempt", attempt)
            span.end(end_time=o.start_ns)
        span = self.tracer.start_span(
            o.phase,
            context=ctx,
            start_time=o.start_ns,
            attributes={"command.attempt": o.attempt, "streams.count": len(o.streams)},
        )
        if not o.ok:
            span.set_status(Status(StatusCode.ERROR, "version conflict"))
        span.end(end_time=o.end_ns)

    def _retried(self, o: CommandRetried) -> None:
        with self._lock:
            self._backoff[o.command_id] = (o.at_ns, o.attempt)
            entry = self._open.get(o.command_id)
        if entry is not None:
            entry[0].add_event(
                "retry",
                {"error.code": o.error_code, "retry.delay": o.delay, "conflicting_streams": list(o.streams)},
                timestamp=o.at_ns,
            )

    def _end(self, o: CommandSucceeded | CommandFailed) -> None:
        with self._lock:
            entry = self._open.pop(o.command_id, None)
            self._backoff.pop(o.command_id, None)
        if entry is None:
            return
        span = entry[0]
        span.set_attribute("command.attempts", o.attempts)
        if isinstance(o, CommandSucceeded):
            span.set_attribute("command.success", True)
            span.set_attribute("events.count", o.events_written)
            span.set_attribute("streams.count", len(o.streams))
        else:
            span.set_attribute("command.success", False)
            span.set_attribute("error.type", o.error_type)
            span.set_attribute("error.message", o.message)
            span.set_attribute("error.code", o.error_code)
            span.set_status(Status(StatusCode.ERROR, o.message))
        span.end(end_time=o.end_ns)
