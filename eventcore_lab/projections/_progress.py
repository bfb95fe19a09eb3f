"""Progress bars for long replays: tqdm's notebook-aware bar, shown only when it is worth it."""

from __future__ import annotations

from typing import Any

#: Replays of at least this many events show a bar when ``progress=None`` (the default).
AUTO_THRESHOLD = 100_000


def progress_bar(total: int, description: str, enabled: bool | None) -> Any:
    """A tqdm bar over ``total`` events; ``enabled=None`` shows it only for long replays."""
    from tqdm.auto import tqdm

    show = total >= AUTO_THRESHOLD if enabled is None else enabled
    return tqdm(
        total=total,
        desc=f"{description}: replay",
        unit="event",
        unit_scale=True,
        disable=not show,
        leave=False,
    )
