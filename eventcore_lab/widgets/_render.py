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
        f"<td style='white-space:nowrap'>{e.recorded_at:%Y-%m-%d %H:%M:%S}</td></tr>"
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
    """A read model as tables: its ``to_frame()``, its own ``_repr_html_``, or its public fields.

    Public fields become one table each when they hold rows (a mapping of mappings, or a list of
    mappings), a two-column table for a flat mapping, and a ``name: value`` line otherwise.
    """
    to_frame = getattr(projection, "to_frame", None)
    if callable(to_frame):
        return _table(to_frame())
    own = getattr(projection, "_repr_html_", None)
    if callable(own):
        return str(own())
    try:
        state = {k: v for k, v in vars(projection).items() if not k.startswith("_")}
    except TypeError:  # no __dict__ (slots, msgspec structs): its fields as builtins
        built = to_builtins(projection)
        state = built if isinstance(built, dict) else {"value": built}
    parts = [_field_html(name, to_builtins(value)) for name, value in state.items()]
    return f'<div class="ec-read-model">{"".join(parts) or "<i>no public fields</i>"}</div>'


def _field_html(name: str, value: Any) -> str:
    import pandas as pd

    title = f'<div style="font-weight:bold;margin-top:4px">{html.escape(name)}</div>'
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        frame = pd.DataFrame.from_dict(value, orient="index")
        frame.index.name = "key"
        return title + _table(frame.reset_index())
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return title + _table(pd.DataFrame(value))
    if isinstance(value, dict) and value:
        rows = [{"key": k, "value": _scalar(v)} for k, v in value.items()]
        return title + _table(pd.DataFrame(rows))
    if isinstance(value, dict | list) and not value:
        return f"{title}<i>empty</i>"
    return f"<div><b>{html.escape(name)}</b>: {html.escape(_scalar(value))}</div>"


def _table(frame: Any) -> str:
    from ..display import tidy

    cells = frame.map(lambda v: _scalar(v) if isinstance(v, dict | list) else v)
    return str(tidy(cells, max_rows=50).to_html())


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
