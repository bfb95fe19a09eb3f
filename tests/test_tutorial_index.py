"""Every chapter of the manual built so far (and each chapter beyond it) has one tutorial notebook, and the
README counts them right."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = {"1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3", "2.4", "2.5", "3.1", "3.2", "3.3", "3.4", "3.5"}
CHAPTERS |= {"4.1", "4.2", "4.3", "4.4", "4.5"}  # Part 4: web APIs
CHAPTERS |= {"5.1", "5.2", "5.3", "5.4", "5.5", "5.6"}  # chapters of Part 5 with a notebook so far
CHAPTERS |= {"6.1", "6.2", "6.3", "6.4", "6.5"}  # Part 6: operations
# the examples, which the manual lists unnumbered after Part 7
CHAPTERS |= {"9.1", "9.2"}
BEYOND_THE_MANUAL = {"8.1", "8.2"}  # chapters the manual does not have


def tutorial_notebooks() -> list[Path]:
    return [
        p
        for p in (ROOT / "tutorials").glob("*.md")
        if p.read_text(encoding="utf-8").startswith("---\njupytext:")
    ]


def test_every_chapter_built_has_one_notebook() -> None:
    numbers = [re.match(r"(\d+\.\d+)-", p.name).group(1) for p in tutorial_notebooks()]  # type: ignore[union-attr]
    assert sorted(numbers) == sorted(CHAPTERS | BEYOND_THE_MANUAL)


def test_readme_states_the_notebook_counts() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    notebooks = list((ROOT / "notebooks").glob("*.ipynb"))
    assert f"runs {len(tutorial_notebooks())} tutorial notebooks" in readme
    assert f"and {len(notebooks)} workbench notebooks" in readme


def _chapter(path: Path) -> str:
    found = re.match(r"(\d+\.\d+)-", path.name)
    assert found, f"{path.name}: a tutorial's file name starts with its chapter number"
    return found.group(1)


def test_every_tutorial_notebook_is_in_the_index_and_in_the_book() -> None:
    """A chapter that has a notebook can be found: in tutorials/README.md and in the book's toctree
    (a glob of its part, or its own entry)."""
    index = (ROOT / "tutorials" / "README.md").read_text(encoding="utf-8")
    book = (ROOT / "book" / "index.md").read_text(encoding="utf-8")
    for notebook in tutorial_notebooks():
        assert f"]({notebook.name})" in index, f"{notebook.name} is not listed in tutorials/README.md"
        part = _chapter(notebook).split(".")[0]
        assert f"tutorials/{part}.*" in book or f"tutorials/{notebook.stem}" in book, (
            f"{notebook.name}: no toctree of book/index.md includes it"
        )


def test_every_workbench_notebook_is_in_the_book_with_the_tour_first() -> None:
    book = (ROOT / "book" / "index.md").read_text(encoding="utf-8")
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"notebooks/{notebook.stem}" in book or "notebooks/*" in book, (
            f"{notebook.name} not in the book"
        )
    assert book.index("notebooks/start-here") < book.index("notebooks/contention")  # the tour comes first
    assert book.index("notebooks/quick-start") < book.index("tutorials/1.*")  # the manual's opening
