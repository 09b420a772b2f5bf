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
