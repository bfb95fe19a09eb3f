"""The house style of tables: a wide frame wraps its long cells and long column names instead of
pushing columns past the right edge of the output, while ids, numbers and stream names stay whole."""

from __future__ import annotations

import re

import pandas as pd

from eventcore_lab.display import tidy


def _cell_css(html: str) -> dict[str, str]:
    """The CSS of each body cell by its text, read from the Styler's HTML."""
    rules = {}
    for selectors, body in re.findall(r"((?:#T_\w+_row\d+_col\d+(?:, )?)+) \{([^}]*)\}", html):
        for selector in selectors.split(", "):
            rules[selector.lstrip("#")] = " ".join(body.split())
    cells = re.findall(r'<td id="(T_\w+_row\d+_col\d+)"[^>]*>([^<]*)</td>', html)
    return {text: rules.get(cell_id, "") for cell_id, text in cells}


def test_long_values_wrap_phrases_wrap_at_spaces_and_ids_never() -> None:
    frame = pd.DataFrame(
        [
            {
                "stream_id": "account-7",
                "amount": 12_500,
                "reason": "rent share",
                "payload": "TaskCreated(task_id='task-1', title='Fix the login bug')",
            }
        ]
    )
    css = _cell_css(tidy(frame).to_html())
    assert css["account-7"] == "white-space: nowrap;"
    assert css["12,500"] == "white-space: nowrap;"
    assert css["rent share"] == "white-space: normal;"
    long = next(text for text in css if text.startswith("TaskCreated"))
    assert "overflow-wrap: anywhere" in css[long] and "min-width" in css[long]


def test_column_names_may_break_after_underscores_and_are_escaped() -> None:
    html = tidy(pd.DataFrame([{"initial_balance": 1, "a<b": 2}])).to_html()
    headers = re.findall(r'<th id="T_\w+_level0_col\d+"[^>]*>(.*?)</th>', html)
    assert headers == ["initial_<wbr>balance", "a&lt;b"]
    assert re.search(r"#T_\w+ th \{\s*white-space: normal;", html)
