"""An offline IAM policy evaluator: does a set of policies allow one request (action, resource, context)?

It implements the parts of IAM's rules that our templates and the AWS-managed SageMaker project policies
use, from the IAM User Guide:

* "Policy evaluation logic" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
  an explicit ``Deny`` in any applicable policy wins; otherwise an ``Allow`` in an identity policy of the
  principal, or in the resource's resource-based policy naming the principal, allows (same account);
  otherwise the request is implicitly denied. Service control policies, resource control policies,
  permissions boundaries and session policies are **not** modelled: the project roles carry none of them
  in the product's design, and an account's own ones cannot be known offline.
* "IAM JSON policy elements: Action / NotAction, Resource / NotResource": ``*`` (any run of characters,
  ``:`` and ``/`` included) and ``?`` (one character) wildcards; action names are case-insensitive, resource
  ARNs case-sensitive. Policy variables ``${key}`` (and ``${*}``, ``${?}``, ``${$}``) are replaced from the
  request context; a statement whose variable is missing from the context does not match.
* "IAM JSON policy elements: Condition" and "Condition operators"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html,
  .../reference_policies_elements_condition_operators.html): several operators, or several keys under one
  operator, are ANDed; several values for one key are ORed (NOR for the negated operators); condition key
  names are case-insensitive. A key missing from the request context makes the condition false -- except
  for the negated operators (``StringNotEquals``, ``StringNotLike``, ``ArnNotLike``, ...), which are true
  then, for ``...IfExists`` (true when the key is missing) and for ``Null`` (which tests the presence).
* "Set operators for multivalued context keys"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html):
  ``ForAnyValue:`` is true when at least one request value satisfies the operator (false when the key is
  missing), ``ForAllValues:`` when every request value does (true when the key is missing or empty). A
  multivalued context value under a plain operator is refused (the policies we evaluate never do that,
  and IAM's result then depends on the key).

Operators: String(Not)Equals, String(Not)EqualsIgnoreCase, String(Not)Like, Numeric*, Bool, Null,
Arn(Not)Equals, Arn(Not)Like (each of the six ARN components matched on its own), (Not)IpAddress, all with
the ``IfExists`` suffix. Anything else (Date*, Binary*, NotPrincipal, ``${key, 'default'}`` variables)
raises :class:`UnsupportedPolicy`: a gate must not guess.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ContextValue = str | Sequence[str]
Context = Mapping[str, ContextValue]

ALLOW = "Allow"
DENY = "Deny"


class UnsupportedPolicy(ValueError):
    """A policy uses an element or operator this evaluator does not implement."""


@dataclass(frozen=True)
class Policy:
    """A policy document with a name for messages (e.g. ``sm-policies.ProjectRolesPolicy``)."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    """One authorization request: ``action`` on ``resource`` with the request context keys."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The outcome and why: the statements that allowed or denied, or the near misses of a denial."""

    allowed: bool
    explicit_deny: bool = False
    by: tuple[str, ...] = ()  # "policy#sid" of the deciding statements
    near_misses: tuple[str, ...] = ()  # statements matching action and resource whose condition failed

    def explain(self) -> str:
        if self.allowed:
            return "allowed by " + ", ".join(self.by)
        if self.explicit_deny:
            return "explicitly denied by " + ", ".join(self.by)
        if self.near_misses:
            return "no statement allows it; conditions not met: " + "; ".join(self.near_misses)
        return "no statement allows the action on this resource"


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- wildcards and variables ----------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's ``*``/``?`` matching over the whole string (no character classes, unlike fnmatch)."""
    return _glob(pattern, ignore_case).fullmatch(value) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}


class _MissingVariable(Exception):
    pass


def _lookup(context: Context, key: str) -> ContextValue | None:
    wanted = key.lower()
    for name, value in context.items():
        if name.lower() == wanted:
            return value
    return None


def substitute(text: str, context: Context, *, literal_wildcards: bool) -> str:
    """Replace ``${key}`` from the context; raises _MissingVariable when a key is absent or multivalued."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in _SPECIAL_VARIABLES:
            # In a pattern, ${*} is a literal asterisk: escape it from the glob by a placeholder.
            return "\0" + name if literal_wildcards else name
        if "," in name:
            raise UnsupportedPolicy(f"policy variables with a default value are not supported: {match.group(0)}")
        value = _lookup(context, name)
        if value is None or not isinstance(value, str):
            raise _MissingVariable(name)
        return value

    return _VARIABLE.sub(replace, text)


def _pattern_match(pattern: str, value: str, context: Context, *, ignore_case: bool = False) -> bool:
    resolved = substitute(pattern, context, literal_wildcards=True)
    if "\0" not in resolved:
        return wildcard_match(resolved, value, ignore_case=ignore_case)
    parts = re.split("(\0.)", resolved)
    body = "".join(
        re.escape(part[1]) if part.startswith("\0") else _glob(part, ignore_case).pattern for part in parts if part
    )
    return re.fullmatch(body, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


# --- conditions -----------------------------------------------------------------------------------

_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "ArnNotEquals",
    "ArnNotLike",
    "NotIpAddress",
}


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-delimited components is matched on its own."""
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(wildcard_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare_one(base: str, expected: str, actual: str) -> bool:  # noqa: C901, PLR0911 - one operator each
    """The positive form of ``base`` (negated operators are handled by the caller)."""
    if base in ("StringEquals", "StringNotEquals"):
        return actual == expected
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() == expected.lower()
    if base in ("StringLike", "StringNotLike"):
        return wildcard_match(expected, actual)
    if base in ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"):
        return _arn_like(expected, actual)
    if base == "Bool":
        return actual.lower() == expected.lower()
    if base.startswith("Numeric"):
        left, right = _number(actual), _number(expected)
        if left is None or right is None:
            return False
        return {
            "NumericEquals": left == right,
            "NumericNotEquals": left == right,
            "NumericLessThan": left < right,
            "NumericLessThanEquals": left <= right,
            "NumericGreaterThan": left > right,
            "NumericGreaterThanEquals": left >= right,
        }[base]
    if base in ("IpAddress", "NotIpAddress"):
        try:
            return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
        except ValueError:
            return False
    raise UnsupportedPolicy(f"condition operator {base} is not supported")


_KNOWN_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "Bool",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "IpAddress",
    "NotIpAddress",
    "Null",
}


def _value_satisfies(base: str, policy_values: list[str], actual: str, context: Context) -> bool:
    """One request value against the policy's values: OR for positive operators, NOR for negated ones."""
    expected = []
    for value in policy_values:
        try:
            expected.append(substitute(value, context, literal_wildcards=False))
        except _MissingVariable:
            continue  # a value whose variable is missing matches nothing
    matched = any(_compare_one(base, value, actual) for value in expected)
    return not matched if base in _NEGATED else matched


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    qualifier = None
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if operator.startswith(prefix):
            qualifier, operator = prefix[:-1], operator[len(prefix) :]
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    if base not in _KNOWN_OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator} is not supported")
    if base == "Null" and (if_exists or qualifier):
        raise UnsupportedPolicy(f"{operator}: Null takes no IfExists or set qualifier")
    return qualifier, base, if_exists


def _values(actual: ContextValue) -> list[str]:
    return [actual] if isinstance(actual, str) else list(actual)


def condition_holds(operator: str, key: str, policy_value: Any, context: Context) -> bool:
    """One (operator, key, values) triple of a Condition block against the request context."""
    qualifier, base, if_exists = _split_operator(operator)
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in as_list(policy_value)]
    actual = _lookup(context, key)
    present = actual is not None and actual != [] and actual != ()
    if base == "Null":
        wanted_absent = {v.lower() for v in values}
        if wanted_absent - {"true", "false"}:
            raise UnsupportedPolicy(f"Null takes true or false, not {values}")
        return any((v == "true") != present for v in wanted_absent)
    if qualifier == "ForAllValues":
        if not present:
            return True
        return all(_value_satisfies(base, values, a, context) for a in _values(actual))
    if qualifier == "ForAnyValue":
        if not present:
            return False
        return any(_value_satisfies(base, values, a, context) for a in _values(actual))
    if not present:
        return if_exists or base in _NEGATED
    if not isinstance(actual, str):
        raise UnsupportedPolicy(f"{operator} on the multivalued key {key} needs ForAnyValue: or ForAllValues:")
    return _value_satisfies(base, values, actual, context)


def conditions_hold(condition: Mapping[str, Mapping[str, Any]] | None, context: Context) -> tuple[bool, str]:
    """(all hold, the first failing "operator key=values" for messages)."""
    for operator, pairs in (condition or {}).items():
        for key, value in pairs.items():
            if not condition_holds(operator, key, value, context):
                shown = _lookup(context, key)
                return False, f"{operator} {key}={as_list(value)} (request: {shown if shown is not None else 'absent'})"
    return True, ""


# --- statements and policies ----------------------------------------------------------------------


def _matches_any(patterns: Iterable[str], value: str, context: Context, *, ignore_case: bool) -> bool:
    for pattern in patterns:
        try:
            if _pattern_match(pattern, value, context, ignore_case=ignore_case):
                return True
        except _MissingVariable:
            continue
    return False


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    """Action/NotAction and Resource/NotResource match (conditions not evaluated)."""
    if "NotPrincipal" in statement:
        raise UnsupportedPolicy("NotPrincipal is not supported")
    if "Action" in statement:
        action_ok = _matches_any(as_list(statement["Action"]), request.action, request.context, ignore_case=True)
    elif "NotAction" in statement:
        action_ok = not _matches_any(as_list(statement["NotAction"]), request.action, request.context, ignore_case=True)
    else:
        raise UnsupportedPolicy(f"statement without Action or NotAction: {statement}")
    if not action_ok:
        return False
    if "Resource" in statement:
        return _matches_any(as_list(statement["Resource"]), request.resource, request.context, ignore_case=False)
    if "NotResource" in statement:
        return not _matches_any(as_list(statement["NotResource"]), request.resource, request.context, ignore_case=False)
    raise UnsupportedPolicy(f"statement without Resource or NotResource: {statement}")


def principal_matches(principal: Any, principal_arn: str | None) -> bool:
    """A resource policy's Principal against the calling role (service principals never match a role)."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    aws = as_list(principal.get("AWS", []))
    return "*" in aws or (principal_arn is not None and principal_arn in aws)


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return as_list(document.get("Statement", []))


def evaluate(
    request: Request,
    identity_policies: Sequence[Policy],
    resource_policies: Sequence[Policy] = (),
    *,
    principal_arn: str | None = None,
) -> Decision:
    """IAM's decision for ``request`` made by a principal with ``identity_policies`` on a resource whose
    resource-based policies are ``resource_policies`` (same account)."""
    allows: list[str] = []
    denies: list[str] = []
    near: list[str] = []
    sources = [(p, False) for p in identity_policies] + [(p, True) for p in resource_policies]
    for policy, is_resource_policy in sources:
        for index, statement in enumerate(_statements(policy.document)):
            effect = statement.get("Effect")
            if effect not in (ALLOW, DENY):
                raise UnsupportedPolicy(f"{policy.name}: Effect {effect!r}")
            if is_resource_policy and not principal_matches(statement.get("Principal"), principal_arn):
                continue
            if not statement_applies(statement, request):
                continue
            label = f"{policy.name}#{statement.get('Sid') or index}"
            holds, failing = conditions_hold(statement.get("Condition"), request.context)
            if holds:
                (denies if effect == DENY else allows).append(label)
            elif effect == ALLOW:
                near.append(f"{label}: {failing}")
    if denies:
        return Decision(False, explicit_deny=True, by=tuple(denies))
    if allows:
        return Decision(True, by=tuple(allows))
    return Decision(False, near_misses=tuple(near))
