"""A small, conservative evaluator of resolved IAM policy documents, for the security tests.

It answers "does this document allow ``action`` on ``arn``?" the way IAM would for the cases our
templates use: ``*``/``?`` wildcards in actions (case-insensitive) and resources (case-sensitive), explicit
Deny wins, and a condition is only considered satisfied when it is one the caller can vouch for
(``<service>:PassedToService``, or a key the caller passes in ``context``, e.g. ``lambda:FunctionArn`` of an
event source mapping request) with ``StringEquals``/``StringLike``/``ArnEquals``/``ArnLike``; any other
condition makes the statement not count as a grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def statements(document: Mapping[str, Any]) -> list[dict]:
    return as_list(document.get("Statement", []))


def action_matches(pattern: str, action: str) -> bool:
    return fnmatchcase(action.lower(), pattern.lower())


def resource_matches(pattern: str, arn: str) -> bool:
    return fnmatchcase(arn, pattern)


_EXACT = ("StringEquals", "ArnEquals")
_PATTERN = ("StringLike", "ArnLike")


def _conditions_hold(condition: Mapping[str, Any] | None, passed_to: str | None,
                     context: Mapping[str, str] | None = None) -> bool:
    if not condition:
        return True
    for operator, pairs in condition.items():
        if operator not in _EXACT + _PATTERN:
            return False
        for key, expected in pairs.items():
            if key.endswith(":PassedToService") and operator.startswith("String"):
                actual = passed_to
            else:
                actual = (context or {}).get(key)
            if actual is None:
                return False
            patterns = as_list(expected)
            if operator in _EXACT:
                holds = actual in patterns
            else:
                holds = any(fnmatchcase(actual, pattern) for pattern in patterns)
            if not holds:
                return False
    return True


def _applies(statement: Mapping[str, Any], action: str, arn: str) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise ValueError(f"NotAction/NotResource are not used by these templates: {statement}")
    actions = as_list(statement.get("Action", []))
    resources = as_list(statement.get("Resource", []))
    return any(action_matches(a, action) for a in actions) and any(resource_matches(r, arn) for r in resources)


def allows(documents: Iterable[Mapping[str, Any]], action: str, arn: str, *, passed_to: str | None = None,
           context: Mapping[str, str] | None = None) -> bool:
    """True when the documents together allow ``action`` on ``arn`` (and no statement denies it); ``context``:
    condition keys of the request the caller vouches for."""
    allowed = False
    for document in documents:
        for statement in statements(document):
            if not _applies(statement, action, arn):
                continue
            if statement["Effect"] == "Deny" and _conditions_hold(statement.get("Condition"), passed_to, context):
                return False
            if statement["Effect"] == "Allow" and _conditions_hold(statement.get("Condition"), passed_to, context):
                allowed = True
    return allowed


def grants(documents: Iterable[Mapping[str, Any]]) -> Iterator[tuple[dict, str, str]]:
    """Every (statement, action, resource) an Allow statement grants, as written."""
    for document in documents:
        for statement in statements(document):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement.get("Action", [])):
                for resource in as_list(statement.get("Resource", [])):
                    yield statement, action, resource
