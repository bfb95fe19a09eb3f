"""The book's reference pages are generated from the code: every error class, with its code,
retriable flag and HTTP status; links from notebooks into symlinked chapters resolve."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from eventcore_lab.core import errors
from eventcore_lab.modeling import GraphvizMissing
from eventcore_lab.widgets import FormInvalid

BOOK = Path(__file__).resolve().parents[1] / "book"


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "eventcore_reference", BOOK / "_ext" / "eventcore_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_error_class_is_listed_wherever_it_lives(reference: ModuleType) -> None:
    rows = {row.name: row for row in reference.error_catalogue()}
    for cls in (errors.ValidationFailed, errors.VersionConflict, GraphvizMissing, FormInvalid):
        assert cls.__name__ in rows, cls
        assert rows[cls.__name__].code == cls.code
    assert rows["VersionConflict"].retriable and not rows["ValidationFailed"].retriable
    assert rows["GraphvizMissing"].module == "eventcore_lab.modeling"  # where a user imports it from
    assert rows["ValidationFailed"].meaning.startswith("A ``require(...)`` check")

    class BrandNewError(errors.StoreError):
        """Made up by this test: the reference must pick it up without editing any page."""

        code = "ES999"

    BrandNewError.__module__ = "eventcore_lab.core.errors"  # as if added to the package: listed
    try:
        fresh = {row.name: row for row in reference.error_catalogue()}
        assert fresh["BrandNewError"].code == "ES999" and fresh["BrandNewError"].parent == "StoreError"
    finally:
        del BrandNewError


def test_http_status_follows_the_manuals_mapping(reference: ModuleType) -> None:
    status = reference.http_status
    assert status(errors.ValidationFailed) == 400
    assert status(errors.BusinessRuleViolation) == 422
    assert status(errors.StreamNotFound) == 404
    assert status(errors.ConcurrencyConflict) == 409 and status(errors.VersionConflict) == 409
    assert status(errors.Unauthorized) == 401
    assert status(errors.StreamAccessDenied) == 403
    assert status(errors.Timeout) == 504
    assert status(errors.ConnectionFailed) == 500 and status(errors.EventCoreError) == 500
    assert status(FormInvalid) == 400  # through its parent InvalidFormat

    class Teapot(errors.CommandError):
        http_status = 418

    assert status(Teapot) == 418  # a class's own http_status wins


def test_the_error_table_has_a_row_per_class(reference: ModuleType) -> None:
    table = reference.error_table_rst()
    assert table.startswith(".. list-table::")
    for row in reference.error_catalogue():
        assert f"``{row.name}``" in table
    assert "     - 504" in table and "     - 422" in table


def test_links_into_symlinked_folders_map_back_to_the_book(reference: ModuleType, tmp_path: Path) -> None:
    real = tmp_path / "tutorials"
    real.mkdir()
    book = tmp_path / "book"
    book.mkdir()
    (book / "tutorials").symlink_to(real)
    assert reference.symlinked_doc(str(real / "2.4-projections"), book) == "tutorials/2.4-projections"
    assert reference.symlinked_doc(str(tmp_path / "elsewhere" / "x"), book) is None
    assert reference.symlinked_doc("tutorials/x", book) is None  # already a docname
