"""Template parameters as data: one table yields the parameters, Studio's interface metadata and the README.

A :class:`ParameterSpec` is one row (name, group, label, CloudFormation properties, and the README text
when it says more than the description). A product's :class:`ParameterTable` lists its rows in display
order; :meth:`ParameterTable.add_to` adds them to a template, :meth:`ParameterTable.interface` is the
``AWS::CloudFormation::Interface`` metadata Studio and Service Catalog show, :meth:`ParameterTable.ref`
is how template ``Rules`` name a parameter (an unknown name is an error), and
:meth:`ParameterTable.readme_rows` is the README's table (``tests/test_readme.py`` checks they match;
``python -m generators parameters`` prints it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from troposphere import Parameter, Template


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    group: str
    label: str
    properties: Mapping[str, Any]  # Type, Default, AllowedValues, AllowedPattern, Description, ...
    readme: str = ""  # the README's "meaning" column; the Description when empty
    readme_default: str = ""  # the README's "default" column when there is no Default (e.g. "set by SageMaker")

    def __post_init__(self) -> None:
        if "Type" not in self.properties or "Description" not in self.properties:
            raise ValueError(f"parameter {self.name}: Type and Description are required")

    @property
    def default_text(self) -> str:
        if self.readme_default:
            return self.readme_default
        if "Default" not in self.properties:
            return "*required*"
        default = str(self.properties["Default"])
        return f"`{default}`" if default else "empty"


@dataclass(frozen=True)
class ParameterTable:
    rows: tuple[ParameterSpec, ...]

    def __post_init__(self) -> None:
        names = [row.name for row in self.rows]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"parameters listed twice: {', '.join(duplicates)}")

    @classmethod
    def of(cls, *groups: Iterable[ParameterSpec]) -> ParameterTable:
        return cls(tuple(row for group in groups for row in group))

    def __contains__(self, name: str) -> bool:
        return any(row.name == name for row in self.rows)

    def add_to(self, template: Template) -> dict[str, Parameter]:
        """Add every parameter to ``template``; name -> the troposphere Parameter."""
        return {row.name: template.add_parameter(Parameter(row.name, **row.properties)) for row in self.rows}

    def ref(self, name: str) -> dict[str, str]:
        """``{"Ref": name}`` for template Rules, which troposphere writes as plain data."""
        if name not in self:
            raise KeyError(f"no parameter {name} in this template")
        return {"Ref": name}

    def interface(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for row in self.rows:
            groups.setdefault(row.group, []).append(row.name)
        return {
            "AWS::CloudFormation::Interface": {
                "ParameterGroups": [
                    {"Label": {"default": label}, "Parameters": names} for label, names in groups.items()
                ],
                "ParameterLabels": {row.name: {"default": row.label} for row in self.rows},
            }
        }

    def readme_rows(self) -> list[str]:
        rows = ["| parameter | default | meaning |", "|---|---|---|"]
        for row in self.rows:
            text = row.readme or row.properties["Description"]
            rows.append(f"| `{row.name}` | {row.default_text} | {text} |")
        return rows
