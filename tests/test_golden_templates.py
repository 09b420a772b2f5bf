"""Golden files: every template change shows up as a reviewable diff.

Regenerate after an intended change with:

    UPDATE_GOLDEN=1 .tox/tests/bin/pytest tests/test_golden_templates.py

(or `UPDATE_GOLDEN=1 tox -e tests -- tests/test_golden_templates.py`), then review `git diff tests/golden`.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from generators.build import template_dicts, template_names
from generators.settings import Settings

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
# Fixed coordinates, so the golden files do not change with the package version.
GOLDEN_SETTINGS = Settings(version="1.0.0")


def _dump(template: dict) -> str:
    return json.dumps(template, indent=1, sort_keys=True) + "\n"


@pytest.mark.parametrize("name", template_names())  # the platform and every registered product
def test_template_matches_golden_file(name: str) -> None:
    rendered = _dump(template_dicts(GOLDEN_SETTINGS)[name])
    golden = GOLDEN_DIR / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    expected = golden.read_text(encoding="utf-8")
    if rendered != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                fromfile=f"golden/{name}.json",
                tofile=f"generated {name}",
                n=2,
            )
        )
        pytest.fail(f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept):\n{diff}", pytrace=False)
