"""Every chapter of Parts 1-3 of the manual has a tutorial notebook, and the README counts them right."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = {"1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3", "2.4", "2.5", "3.1", "3.2", "3.3", "3.4", "3.5"}
CHAPTERS |= {"5.1", "5.2"}  # Part 5: schema evolution and event versioning


def tutorial_notebooks() -> list[Path]:
    return [
        p
        for p in (ROOT / "tutorials").glob("*.md")
        if p.read_text(encoding="utf-8").startswith("---\njupytext:")
    ]


def test_every_chapter_of_parts_1_to_3_has_one_notebook() -> None:
    numbers = [re.match(r"(\d+\.\d+)-", p.name).group(1) for p in tutorial_notebooks()]  # type: ignore[union-attr]
    assert sorted(numbers) == sorted(CHAPTERS)


def test_readme_states_the_notebook_counts() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    notebooks = list((ROOT / "notebooks").glob("*.ipynb"))
    assert f"runs {len(tutorial_notebooks())} tutorial notebooks" in readme
    assert f"and {len(notebooks)} workbench notebooks" in readme
