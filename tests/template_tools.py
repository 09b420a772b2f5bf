"""Small helpers to walk rendered templates in tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

POLICY_KEYS = ("PolicyDocument", "AssumeRolePolicyDocument")


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) pair in a nested dict/list structure, depth first."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


def strings(value: Any) -> Iterator[tuple[str, str]]:
    for path, item in walk(value):
        if isinstance(item, str):
            yield path, item


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template.get("Resources", {}).items() if v["Type"] == resource_type}


def policy_documents(template: dict) -> Iterator[tuple[str, dict]]:
    """(location, document) for every IAM policy document in the template (inline, managed, resource)."""
    for logical_id, resource in template.get("Resources", {}).items():
        for path, item in walk(resource.get("Properties", {})):
            if path.rsplit("/", 1)[-1] in POLICY_KEYS and isinstance(item, dict):
                yield f"{logical_id}{path}", item


def statements(document: dict) -> list[dict]:
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]
