"""Frames for people: payload first, short ids, rounded numbers, readable times, no empty columns.

Only the display changes (a pandas ``Styler``); the frame itself keeps every value, so code that
computes with it is not affected by how it looks.
"""

from __future__ import annotations

import html
import math
import re
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

#: Envelope columns of :func:`eventcore_lab.projections.events_frame`, in the order shown after the
#: payload: where and when first, then the ids a reader rarely needs in full.
_LEADING = ("position", "event_type", "stream_id")
_TRAILING = ("version", "recorded_at", "event_id", "correlation_id", "causation_id", "user_id")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_CELL_CSS = [
    # one selector each: pandas scopes only the first selector of a list to this table
    {"selector": "td", "props": "padding: 2px 5px; font-size: 12px;"},  # wrapping: per cell, below
    # headers break at the <wbr> after each underscore, so a long name is no wider than its values
    {"selector": "th", "props": "white-space: normal; padding: 2px 5px; font-size: 12px;"},
    {"selector": "caption", "props": "caption-side: bottom; text-align: left; color: #607d8b;"},
]
#: Values longer than this (a payload's repr, a hash) wrap inside their cell instead of widening the
#: table past the output; shorter ones (ids, times, numbers) stay on one line.
WRAP_AFTER = 24
_WRAP_CSS = "white-space: normal; overflow-wrap: anywhere; min-width: 9em;"
_NOWRAP_CSS = "white-space: nowrap;"
_SPACES_CSS = "white-space: normal;"


def tidy(
    data: pd.DataFrame | pd.Series,
    *,
    max_rows: int = 20,
    digits: int = 3,
    id_length: int = 8,
    drop_empty: bool = True,
) -> Any:
    """``data`` styled for reading: the house style of tables in the lab.

    Payload columns come right after position, type and stream, the envelope's ids and times last;
    UUIDs are cut to ``id_length`` characters (``018cc40a…``); floats keep ``digits`` significant
    digits (whole numbers show none); timestamps show to the second; missing values are blank;
    columns with no value at all are left out; only the first ``max_rows`` rows are shown, with a
    caption saying how many there are.
    """
    frame = data.to_frame() if isinstance(data, pd.Series) else data
    total = len(frame)
    if drop_empty and total:
        frame = frame.loc[:, frame.notna().any(axis=0).to_numpy()]
    frame = frame[_ordered(list(frame.columns))].head(max_rows)
    styler = frame.style.format(lambda v: _cell(v, digits, id_length), na_rep="")
    for column in frame.columns:  # whole minutes (hourly clocks, due dates) need no seconds column
        values = frame[column].dropna()
        if len(values) and all(isinstance(v, datetime) and v.second == v.microsecond == 0 for v in values):
            styler = styler.format(
                lambda v: _cell(v, digits, id_length, minutes=True), subset=[column], na_rep=""
            )
    styler = styler.format_index(lambda v: _cell(v, digits, id_length), axis=0)
    styler = styler.format_index(_header, axis=1)
    styler = styler.map(lambda v: _wrapping(_cell(v, digits, id_length)))
    if isinstance(frame.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    styler = styler.set_table_styles(_CELL_CSS)
    if total > len(frame):
        styler = styler.set_caption(f"first {len(frame):,} of {total:,} rows")
    return styler


def _wrapping(text: str) -> str:
    """How a cell may wrap: long text anywhere, text with spaces (times, phrases) at its spaces, and an
    id, a number or a stream name never (``account-7`` must not break at its hyphen)."""
    if len(text) > WRAP_AFTER:
        return _WRAP_CSS
    return _SPACES_CSS if " " in text else _NOWRAP_CSS


def _header(label: Any) -> str:
    """A column name as HTML that may break after an underscore (``initial_<wbr>balance``)."""
    return html.escape(str(label)).replace("_", "_<wbr>")


def _ordered(columns: list[Any]) -> list[Any]:
    leading = [c for c in _LEADING if c in columns]
    trailing = [c for c in _TRAILING if c in columns]
    payload = [c for c in columns if c not in leading and c not in trailing]
    return leading + payload + trailing


def _cell(value: Any, digits: int, id_length: int, *, minutes: bool = False) -> str:
    """One value as text, in the house style."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, uuid.UUID) or (isinstance(value, str) and _UUID.match(value)):
        return str(value)[:id_length] + "…"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d %H:%M:%S")
        return text if value.tzinfo is None or value.utcoffset() == timedelta(0) else f"{text} {value:%z}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(pd.Timedelta(value).round("s"))
    return str(value)
