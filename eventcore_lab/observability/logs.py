"""Structured logging with the standard library: an observer that logs commands, and a JSON formatter.

Every record this module writes carries ``correlation_id`` and ``causation_id`` (as ``extra`` fields),
so logs of one request can be found together; the JSON formatter emits them, plus any other extra.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from .events import CommandFailed, CommandRetried, CommandStarted, CommandSucceeded, Observation

#: Attributes every LogRecord has; anything else on a record is an ``extra`` and goes into the JSON.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation/causation ids and extras."""

    def __init__(self, *, include_location: bool = False) -> None:
        super().__init__()
        self.include_location = include_location

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None),
            "causation_id": getattr(record, "causation_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if self.include_location:
            entry["location"] = f"{record.pathname}:{record.lineno}"
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    *,
    stream: IO[str] | None = None,
    include_location: bool = False,
    logger: str = "eventcore_lab",
) -> logging.Handler:
    """Send the ``eventcore_lab`` loggers to ``stream`` (stderr) as JSON (``fmt="json"``) or text.

    Returns the handler, so a caller can remove it again. Replaces a handler this function added before.
    """
    target = logging.getLogger(logger)
    for old in [h for h in target.handlers if getattr(h, "_eventcore", False)]:
        target.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._eventcore = True  # type: ignore[attr-defined]
    if fmt == "json":
        handler.setFormatter(JsonFormatter(include_location=include_location))
    else:
        where = " %(pathname)s:%(lineno)d" if include_location else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s %(name)s [%(correlation_id)s]{where} %(message)s")
        )
        handler.addFilter(_with_ids)
    target.addHandler(handler)
    target.setLevel(level.upper())
    return handler


def _with_ids(record: logging.LogRecord) -> bool:
    for key in ("correlation_id", "causation_id"):
        if not hasattr(record, key):
            setattr(record, key, None)
    return True


class LoggingObserver:
    """Logs each command's start (debug), retries (warning), success (info) and failure (error)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("eventcore_lab.commands")
        self._causes: dict[int, str | None] = {}

    def observe(self, observation: Observation) -> None:
        log = self.logger
        kind = type(observation)
        if kind is CommandStarted:
            o: Any = observation
            self._causes[o.command_id] = o.causation_id
            if log.isEnabledFor(logging.DEBUG):
                log.debug("command started", extra=self._extra(o))
        elif kind is CommandRetried:
            o = observation
            log.warning(
                "command retried after %s",
                o.error_code,
                extra={
                    **self._extra(o),
                    "retry_attempt": o.attempt,
                    "delay_ms": round(o.delay * 1000, 3),
                    "conflicting_streams": list(o.streams),
                },
            )
        elif kind is CommandSucceeded:
            o = observation
            log.info(
                "command executed",
                extra={
                    **self._extra(o, done=True),
                    "attempts": o.attempts,
                    "duration_ms": round(o.duration * 1000, 3),
                    "events_written": o.events_written,
                    "streams_affected": len(o.streams),
                },
            )
        elif kind is CommandFailed:
            o = observation
            log.error(
                "command failed: %s",
                o.message,
                extra={
                    **self._extra(o, done=True),
                    "attempts": o.attempts,
                    "duration_ms": round(o.duration * 1000, 3),
                    "error_code": o.error_code,
                },
            )

    def _extra(self, o: Any, done: bool = False) -> dict[str, Any]:
        cause = self._causes.pop(o.command_id, None) if done else self._causes.get(o.command_id)
        return {"command_type": o.command_type, "correlation_id": o.correlation_id, "causation_id": cause}
