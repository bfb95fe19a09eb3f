"""Read-side helpers: row-level filtering and field-level redaction of read models and frames."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ._crypto import REDACTED
from ._policy import StreamRules
from ._principal import as_principal


def filter_rows(
    frame: pd.DataFrame, principal: Any, rules: StreamRules, *, column: str = "stream_id"
) -> pd.DataFrame:
    """Only the rows whose stream (in ``column``) ``principal`` may read; an anonymous caller gets none."""
    if as_principal(principal) is None:
        return frame.iloc[0:0].copy()
    readable = {sid: rules.readable(principal, sid) for sid in frame[column].unique()}
    return frame[frame[column].map(readable).astype(bool)].copy()


def redact_columns(
    frame: pd.DataFrame, columns: Iterable[str], principal: Any, *, allowed_roles: Iterable[str] = ()
) -> pd.DataFrame:
    """``frame`` with ``columns`` replaced by REDACTED unless ``principal`` has one of ``allowed_roles``."""
    who = as_principal(principal)
    if who is not None and who.roles & set(allowed_roles):
        return frame
    out = frame.copy()
    for name in columns:
        if name in out.columns:
            out[name] = out[name].where(out[name].isna(), REDACTED)
    return out
