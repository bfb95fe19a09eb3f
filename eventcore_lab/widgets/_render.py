"""HTML pieces shared by the widgets: event tables, one event in detail, a read model, an error."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import msgspec


def to_builtins(value: Any) -> Any:
    """A JSON-ready version of payloads, metadata and read-model state (for display only)."""
    try:
        return msgspec.to_builtins(value, str_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def events_table(events: Sequence[Any], *, css_class: str = "ec-events") -> str:
    if not events:
        return f'<div class="{css_class} ec-empty"><i>no events</i></div>'
    rows = "".join(
        f"<tr><td>{e.version}</td><td>{e.position}</td><td><b>{html.escape(e.event_type)}</b></td>"
        f"<td><code>{html.escape(_short(json.dumps(to_builtins(e.payload))))}</code></td>"
        f"<td>{e.recorded_at:%Y-%m-%d %H:%M:%S}</td></tr>"
        for e in events
    )
    head = "<tr><th>version</th><th>position</th><th>type</th><th>payload</th><th>recorded</th></tr>"
    return f'<table class="{css_class}">{head}{rows}</table>'


def event_detail(event: Any) -> str:
    body = {
        "event_id": str(event.event_id),
        "stream_id": event.stream_id,
        "version": event.version,
        "position": event.position,
        "event_type": event.event_type,
        "recorded_at": event.recorded_at.isoformat(),
        "payload": to_builtins(event.payload),
        "metadata": to_builtins(event.metadata),
    }
    return f'<pre class="ec-event-detail">{html.escape(json.dumps(body, indent=2, default=str))}</pre>'


def error_box(error: BaseException) -> str:
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(error)
    title = f"{type(error).__name__}{f' [{code}]' if code else ''}"
    return (
        f'<div class="ec-error" style="color:#b71c1c"><b>{html.escape(title)}</b>: '
        f"{html.escape(message)}</div>"
    )


def read_model_html(projection: Any) -> str:
    """A read model as HTML: its ``to_frame()`` table, its own ``_repr_html_``, or its public fields."""
    to_frame = getattr(projection, "to_frame", None)
    if callable(to_frame):
        return str(to_frame().to_html(max_rows=50))
    own = getattr(projection, "_repr_html_", None)
    if callable(own):
        return str(own())
    state = {k: v for k, v in vars(projection).items() if not k.startswith("_")}
    text = json.dumps(to_builtins(state), indent=2, default=str)
    return f'<pre class="ec-read-model">{html.escape(text)}</pre>'


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
