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


# Run in a fresh interpreter: the build forks only where no other thread runs, which a test runner cannot
# promise. Prints, as JSON, what Archives did with each case.
_ARCHIVES_SCRIPT = """
import json, sys
from pathlib import Path
from generators.packaging import Archives
root = Path(sys.argv[1])
report = {}
for case, sources in {
    "good": {"a.zip": root / "src", "b.zip": root / "src" / "pkg"},
    "missing": {"a.zip": root / "src", "gone.zip": root / "nope"},
    "empty": {"empty.zip": root / "hollow"},
}.items():
    out = root / case
    try:
        archives = Archives(sources, out, fork=None if case == "good" else True)
        forked = archives.in_child
        written = archives.wait()
        report[case] = {"forked": forked, "written": sorted(written), "files": sorted(p.name for p in out.iterdir())}
    except (OSError, ValueError) as error:
        report[case] = {"error": type(error).__name__, "message": str(error),
                        "files": sorted(p.name for p in out.iterdir()) if out.exists() else []}
print(json.dumps(report))
"""


def test_zips_packed_in_a_child_process_match_the_ones_packed_here(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from generators.packaging import Archives

    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "a.py").write_text("a = 1\n" * 500)
    (tmp_path / "src" / "pkg" / "b.py").write_text("b = 2\n")
    (tmp_path / "hollow").mkdir()
    completed = subprocess.run([sys.executable, "-c", _ARCHIVES_SCRIPT, str(tmp_path)], capture_output=True,
                               text=True, timeout=60, check=True)
    report = json.loads(completed.stdout)

    # A single-threaded process forks by itself, and the child's zips are the bytes packed in this process.
    assert report["good"] == {"forked": True, "written": ["a.zip", "b.zip"], "files": ["a.zip", "b.zip"]}
    here = Archives({"a.zip": tmp_path / "src", "b.zip": tmp_path / "src" / "pkg"}, tmp_path / "here", fork=False)
    assert not here.in_child
    for name, path in here.wait().items():
        assert (tmp_path / "good" / name).read_bytes() == path.read_bytes(), name

    # The child's failure is raised in the parent with its type and message; nothing half-written is left.
    assert report["missing"]["error"] == "OSError"
    assert "cannot package" in report["missing"]["message"] and "not a directory" in report["missing"]["message"]
    assert not any(name.endswith(".partial") for name in report["missing"]["files"])
    assert report["empty"] == {"error": "ValueError", "message": f"cannot package {tmp_path / 'hollow'}: no files to "
                               "include", "files": []}


def test_a_zip_that_fails_midway_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.py").write_text("a = 1\n")
    (source / "b.py").write_text("b = 1\n")
    real_read = Path.read_bytes

    def failing_read(path: Path) -> bytes:
        if path.name == "b.py":
            raise PermissionError(f"cannot read {path}")
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", failing_read)
    with pytest.raises(PermissionError, match="cannot read"):
        deterministic_zip(source, tmp_path / "out" / "x.zip")
    assert list((tmp_path / "out").iterdir()) == []
