"""Copies of the built templates with other parameter defaults, so scanners see every conditional resource.

checkov evaluates ``Conditions`` with the parameters' defaults and skips a resource whose condition is
false: with the default trigger (S3EventBridge), the CloudTrail trail and its bucket would never be
scanned. ``python -m security.variants --build build --out DIR`` writes, for every template whose
conditions depend on parameters with ``AllowedValues``, one copy per value of each such parameter other
than its default, named ``<template>__<Parameter>-<Value>.yaml``, beside a copy of every built template:
scan ``DIR`` (checkov 3.3.30 given two ``--directory`` options scans the first twice and the second not at
all). :func:`template_of` maps a variant's file name back to its template.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from .iam_policies import load_templates
from .scenarios import condition_parameters

SEPARATOR = "__"


def template_of(file_name: str) -> str:
    """``project-x__TriggerMode-CloudTrail.yaml`` -> ``project-x.yaml`` (a plain template name unchanged)."""
    stem = Path(file_name).name.removesuffix(".yaml")
    return stem.split(SEPARATOR, 1)[0] + ".yaml"


def variants(name: str, template: Mapping[str, Any]) -> Iterator[tuple[str, dict]]:
    """(file name, template) for every non-default allowed value of every condition-driving parameter."""
    parameters = template.get("Parameters", {})
    for parameter in sorted(condition_parameters(template)):
        spec = parameters.get(parameter, {})
        for value in spec.get("AllowedValues", []):
            if str(value) == str(spec.get("Default")):
                continue
            variant = copy.deepcopy(dict(template))
            variant["Parameters"][parameter]["Default"] = value
            yield f"{name}{SEPARATOR}{parameter}-{value}.yaml", variant


def write_variants(build_dir: Path, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, template in sorted(load_templates(build_dir).items()):
        original = out_dir / f"{name}.yaml"
        original.write_bytes((build_dir / f"{name}.yaml").read_bytes())
        written.append(original)
        for file_name, variant in variants(name, template):
            path = out_dir / file_name
            path.write_text(yaml.safe_dump(variant, sort_keys=False), encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=Path("build"), help="directory with the built templates")
    parser.add_argument("--out", type=Path, required=True, help="directory for the variants (not build/)")
    args = parser.parse_args(argv)
    for path in write_variants(args.build, args.out):
        print(f"variant {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
