"""The build writes the long-form YAML templates and deterministic zips, byte-identical across runs."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from generators.build import build
from generators.packaging import FIXED_DATE_TIME, deterministic_zip
from generators.products import products
from generators.settings import Settings

# The platform's two templates, and every product's template, seed code and Lambdas (today's product's
# file names never change: they are published interfaces).
EXPECTED_FILES = {"sm-policies.yaml", "sm-project-sc-portfolio.yaml"} | {
    name for product in products() for name in product.files
}


def test_todays_product_keeps_its_file_names() -> None:
    assert {
        "project-s3-fs-ingestion.yaml",
        "seed-code-s3-fs-ingestion.zip",
        "lambda-start-ingestion-pipeline.zip",
        "lambda-data-bucket-events.zip",
    } <= EXPECTED_FILES


def test_build_writes_templates_and_zips(built) -> None:
    assert {p.name for p in built.files} == EXPECTED_FILES
    for path in built.files:
        assert path.stat().st_size > 0, path


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    first = build(Settings(), tmp_path / "one")
    second = build(Settings(), tmp_path / "two")
    for a, b in zip(first.files, second.files, strict=True):
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two builds"


def test_templates_are_long_form_yaml(built) -> None:
    for name, path in built.templates.items():
        text = path.read_text(encoding="utf-8")
        assert "!GetAtt" not in text and "!Ref" not in text and "!Sub" not in text, name
        assert "Fn::GetAtt" in text or name != "project-s3-fs-ingestion"


def test_zip_entries_are_sorted_with_fixed_timestamps(built) -> None:
    for path in built.archives.values():
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            assert names == sorted(names)
            assert all(info.date_time == FIXED_DATE_TIME for info in archive.infolist())
            assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_lambda_zip_has_handler_at_root(built) -> None:
    with zipfile.ZipFile(built.archives["lambda-start-ingestion-pipeline.zip"]) as archive:
        assert "app.py" in archive.namelist()


def test_zip_does_not_depend_on_file_mtimes(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "b.py").write_text("b = 1\n")
    (source / "a.py").write_text("a = 1\n")
    first = deterministic_zip(source, tmp_path / "first.zip").read_bytes()
    for path in source.rglob("*.py"):
        path.touch()
    (source / "pkg" / "__pycache__").mkdir()
    (source / "pkg" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"junk")
    assert deterministic_zip(source, tmp_path / "second.zip").read_bytes() == first


def test_zip_of_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory"):
        deterministic_zip(tmp_path / "nope", tmp_path / "x.zip")
