"""Plots in the house style: a qualitative palette with a colour per category, labelled axes, a legend
whenever there is more than one series, and a check that says what a figure lacks."""

from __future__ import annotations

from typing import Any

#: Twenty qualitative colours: matplotlib's tab20 with its ten strong colours first, so that up to ten
#: categories get clearly different hues and up to twenty still get a colour each.
_TAB20 = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
    "#dbdb8d", "#9edae5",
]  # fmt: skip


def palette(n: int) -> list[str]:
    """``n`` distinct colours for ``n`` categories (beyond twenty, evenly spaced hues)."""
    if n <= len(_TAB20):
        return _TAB20[:n]
    import colorsys

    return [
        "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in colorsys.hsv_to_rgb(i / n, 0.65, 0.85)))
        for i in range(n)
    ]


def use_house_style() -> None:
    """matplotlib settings of the lab: 20-colour cycle, constrained layout, readable sizes."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=_TAB20),
            "figure.constrained_layout.use": True,
            "figure.figsize": (9.0, 4.0),
            "axes.titlesize": "large",
            "axes.labelsize": "medium",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "legend.fontsize": "small",
        }
    )


def plot_problems(figure: Any) -> list[str]:
    """What a reader would miss in ``figure``: an axis without a label, several series and no legend.

    Colour bars, twin axes that share the x axis, and axes with nothing drawn are judged with the
    axes they belong to.
    """
    problems: list[str] = []
    for number, ax in enumerate(figure.axes, 1):
        if _is_colorbar(ax) or not ax.get_visible() or not ax.has_data():
            continue
        name = ax.get_title() or f"axes {number}"
        twin = _twin_of(ax, figure)
        if not ax.get_xlabel() and not (twin is not None and twin.get_xlabel()):
            problems.append(f"{name}: the x axis has no label")
        if not ax.get_ylabel():
            problems.append(f"{name}: the y axis has no label")
        series = _series(ax) + (_series(twin) if twin is not None else 0)
        legends = [a.get_legend() for a in (ax, twin) if a is not None] + list(figure.legends)
        if series > 1 and not any(legend is not None for legend in legends):
            problems.append(f"{name}: {series} series and no legend")
    return problems


def _is_colorbar(ax: Any) -> bool:
    return bool(getattr(ax, "_colorbar", None)) or ax.get_label() == "<colorbar>"


def _twin_of(ax: Any, figure: Any) -> Any:
    """The other axes sharing ``ax``'s x axis in the same place (``ax.twinx()``), if any."""
    siblings = ax.get_shared_x_axes().get_siblings(ax)
    for other in figure.axes:
        if other is not ax and other in siblings and other.get_position().bounds == ax.get_position().bounds:
            return other
    return None


def _series(ax: Any) -> int:
    """Lines, bar groups and filled areas that are data; reference lines (``axvline``, ``axhline``,
    drawn in axes coordinates on one side) do not count."""
    lines = [line for line in ax.get_lines() if line.get_transform() == ax.transData]
    groups = list(ax.containers)
    areas = [c for c in ax.collections if c.get_label() and not c.get_label().startswith("_")]
    return len(lines) + len(groups) + len(areas)
