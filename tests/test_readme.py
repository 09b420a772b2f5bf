"""The README stays true: two Quick start commands, CI runs the second, every parameter documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from loading import load_module

REPO_ROOT = Path(__file__).resolve().parent.parent
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _quickstart():
    return load_module("quickstart", REPO_ROOT / ".ci" / "quickstart.py")


def test_quick_start_has_exactly_two_commands_build_then_tests() -> None:
    build, tests = _quickstart().quickstart_commands(README)
    assert "tox -e build" in build
    assert re.search(r"tox$", tests), tests
    for command in (build, tests):
        # PEP 668: never install into the system Python; the venv is created in the same line.
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install")


def test_quick_start_parser_rejects_a_third_command() -> None:
    broken = README.replace(".venv/bin/tox\n```", ".venv/bin/tox\nmake extra\n```")
    with pytest.raises(SystemExit, match="exactly two commands"):
        _quickstart().quickstart_commands(broken)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "quickstart.py test" in ci and 'bash -c "${test_command}"' in ci


def test_every_template_parameter_is_documented(templates) -> None:
    for name, template in templates.items():
        for parameter in template["Parameters"]:
            assert f"`{parameter}`" in README, f"{name} parameter {parameter} is not in the README"


def test_every_build_option_is_documented() -> None:
    for option in ("--out", "--version", "--artifacts-bucket", "--artifacts-prefix"):
        assert option in README


def test_every_product_parameter_table_is_in_the_readme() -> None:
    """The README's parameter tables are the products' ParameterTables (``python -m generators parameters``)."""
    from generators.products import products
    from generators.settings import Settings

    for product in products():
        rows = product.build(Settings()).table.readme_rows()
        assert "\n".join(rows) in README, f"README: paste `python -m generators parameters --product {product.slug}`"


def test_test_docstrings_cite_only_documents_that_exist() -> None:
    """A test that points at a file of this repository (docs/..., README.md, a module path) names one that exists."""
    folders = "docs|generators|security|seed-code|lambda_functions|notebooks|tests|benchmarks"
    cited = re.compile(rf"(?<![\w/.-])((?:{folders})"
                       r"/[\w./-]+\.(?:md|py|json|yml|yaml|ipynb))")
    missing = []
    for path in sorted((REPO_ROOT / "tests").glob("*.py")):
        for match in cited.finditer(path.read_text(encoding="utf-8")):
            if not (REPO_ROOT / match.group(1)).exists():
                missing.append(f"{path.name}: {match.group(1)}")
    assert not missing, missing


def test_tests_cite_no_document_outside_the_repository() -> None:
    """Design notes and issue texts are not in the repository: a test explains itself, cites the repository's
    documents or AWS's public ones."""
    outside = re.compile(r"\bSPEC(?:\.md| section)|\bSTYLE\.md|\b[Ii]ssue #?\d+|\.\./shared/|design card")
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in sorted([*(REPO_ROOT / "tests").glob("*.py"), *(REPO_ROOT / "seed-code").glob("*/tests/*.py")])
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if outside.search(line) and path.name != "test_readme.py"
    ]
    assert not found, found


def _commands(markdown: str) -> list[str]:
    """Every command the text shows: lines of shell code blocks and inline code spans."""
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", markdown, flags=re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", markdown, flags=re.DOTALL))
    return lines + spans


DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_commands_work_as_written_after_the_quick_start(document: str) -> None:
    """After the Quick start, tox is .venv/bin/tox and pytest is .tox/tests/bin/pytest: neither is on PATH, so a
    bare `tox ...` or `pytest ...` fails with "command not found" for a reader who follows the README."""
    path = REPO_ROOT / document
    bare = [c for c in _commands(path.read_text(encoding="utf-8"))
            if re.match(r"(?:[A-Z_]+=\S+\s+)*(tox|pytest|papermill|moto_server|python -m)\b", c)]
    assert bare == [], f"{document}: commands that are not on PATH after the Quick start: {bare}"
