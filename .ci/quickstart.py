"""Print a command of the README's "## Quick start" block: `build` (first line) or `test` (second).

.ci/run executes exactly what the README tells a new user to run; tests check the block's shape.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart_commands(text: str) -> list[str]:
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, flags=re.S | re.M)
    if not section:
        raise SystemExit("README.md has no '## Quick start' section")
    blocks = re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", section.group(1), flags=re.S | re.M)
    if len(blocks) != 1:
        raise SystemExit(f"'## Quick start' must hold exactly one shell code block, found {len(blocks)}")
    lines = [line for line in blocks[0].splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 2:
        raise SystemExit(f"the Quick start block must hold exactly two commands, found {len(lines)}")
    return lines


if __name__ == "__main__":
    which = {"build": 0, "test": 1}
    if len(sys.argv) != 2 or sys.argv[1] not in which:
        raise SystemExit("usage: quickstart.py build|test")
    print(quickstart_commands(README.read_text(encoding="utf-8"))[which[sys.argv[1]]])
