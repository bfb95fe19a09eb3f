"""Watch the figures a notebook displays, to check them against the house style afterwards.

:func:`watch_figures` wraps the notebook's PNG formatter for matplotlib figures, so that every figure
that reaches the page, by ``plt.show()``, by being a cell's value or by ``display()``, is recorded with
the cell that showed it. :func:`figure_report` then lists what a reader would stumble on: a figure
shown twice, an axis without a label, several series without a legend, text under 10 px, a figure
wider than the output area.
"""

from __future__ import annotations

from typing import Any

from ._plots import plot_problems

#: Widest figure, in CSS px, that a JupyterLab output at 1440x900 (about 1,000 px wide with the file
#: browser open) shows without shrinking it, with a little room to spare.
MAX_WIDTH_PX = 980
MIN_TEXT_PX = 10.0

_SHOWN: list[tuple[int, Any]] = []


def watch_figures() -> None:
    """Record each figure the notebook displays (call once, first thing in the kernel)."""
    from IPython import get_ipython
    from matplotlib.figure import Figure

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("watch_figures() runs inside an IPython kernel")
    shell.run_line_magic("matplotlib", "inline")  # the inline backend and its formatter, set up now
    formatter = shell.display_formatter.formatters["image/png"]
    draw = formatter.lookup_by_type(Figure)

    def recorded(figure: Any) -> Any:
        _SHOWN.append((shell.execution_count, figure))
        return draw(figure)

    formatter.for_type(Figure, recorded)


def figure_report() -> list[str]:
    """Problems of the figures shown so far, one line each (empty: all is well)."""
    problems: list[str] = []
    seen: dict[int, int] = {}
    for cell, figure in _SHOWN:
        if id(figure) in seen:
            problems.append(f"cell {cell}: a figure is displayed twice (first in cell {seen[id(figure)]})")
            continue
        seen[id(figure)] = cell
        name = _name(figure)
        problems += [f"cell {cell}: {p}" for p in plot_problems(figure)]
        width = shown_width_px(figure)
        if width > MAX_WIDTH_PX + 1:
            problems.append(f"cell {cell}: {name}: {width:.0f} px wide, more than {MAX_WIDTH_PX} px")
        smallest = min_text_px(figure)
        if smallest < MIN_TEXT_PX:
            problems.append(f"cell {cell}: {name}: text of {smallest:.1f} px, under {MIN_TEXT_PX:g} px")
    return problems


def shown_width_px(figure: Any) -> float:
    """The width of the PNG the notebook shows, drawn the way the inline backend draws it: cropped to
    the artists (``bbox_inches="tight"``), so a legend outside the axes makes it wider than
    ``figsize``."""
    import io
    import struct

    png = io.BytesIO()
    figure.savefig(png, format="png", bbox_inches="tight")
    return float(struct.unpack(">I", png.getvalue()[16:20])[0])  # the IHDR chunk's width


def min_text_px(figure: Any) -> float:
    """The smallest visible text of ``figure`` in px, as drawn at its dpi."""
    sizes = [
        text.get_fontsize()
        for text in figure.findobj(lambda artist: hasattr(artist, "get_fontsize"))
        if text.get_visible() and getattr(text, "get_text", lambda: "")()
    ]
    return min(sizes, default=MIN_TEXT_PX * 72 / figure.dpi) * figure.dpi / 72


def _name(figure: Any) -> str:
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    return repr(titles[0]) if titles else "a figure"
