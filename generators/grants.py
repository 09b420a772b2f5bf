"""IAM grants as data: what a building block needs, merged across blocks and products into policy statements.

A building block returns :class:`Grant` values next to the resources it creates (the launch role must be
able to create, update and delete them; the project roles must be able to run them). ``sm-policies``
merges the grants of every registered product: grants with the same ``sid`` (the same need of the same
block, e.g. "ProjectFunction") become one statement whose actions and resources are the union, so two
products using one block add resources to one statement instead of repeating it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from awacs.aws import Action, Allow, Condition, Statement
from troposphere import encode_to_dict

from .common import unique_actions


@dataclass(frozen=True)
class Grant:
    """Allow ``actions`` on ``resources`` (ARN ``Fn::Sub`` values or ``"*"``), optionally under ``condition``."""

    sid: str
    actions: Sequence[Action]
    resources: Sequence[object]
    condition: Condition | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.actions or not self.resources:
            raise ValueError(f"grant {self.sid}: needs at least one action and one resource")


def _key(value: object) -> str:
    return json.dumps(encode_to_dict(value), sort_keys=True)


def statements(grants: Iterable[Grant]) -> list[Statement]:
    """One Allow statement per sid, in order of first appearance; actions and resources de-duplicated."""
    merged: dict[str, tuple[list[Action], list[object], Condition | None]] = {}
    known: dict[str, set[str]] = {}  # sid -> the keys of its resources so far
    for grant in grants:
        actions, resources, condition = merged.setdefault(grant.sid, ([], [], grant.condition))
        if _key(condition) != _key(grant.condition):
            raise ValueError(f"grants {grant.sid} disagree on their condition: give them different sids")
        actions.extend(grant.actions)
        seen = known.setdefault(grant.sid, set())
        for resource in grant.resources:
            key = _key(resource)
            if key not in seen:
                resources.append(resource)
                seen.add(key)
    result = []
    for sid, (actions, resources, condition) in merged.items():
        statement = Statement(Sid=sid, Effect=Allow, Action=unique_actions(actions), Resource=resources)
        if condition is not None:
            statement.Condition = condition
        result.append(statement)
    return result
