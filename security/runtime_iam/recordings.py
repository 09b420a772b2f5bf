"""The calls recorded while the project's code ran (``tests/runtime_recorded_calls.json``).

``tests/test_runtime_calls_recorded.py`` runs the real code (the Lambdas' handlers, the seed code's
``deploy.py`` and processing script) against moto and local stand-ins with a botocore
``before-parameter-build`` hook on every client, and keeps for each activity the calls reduced to the
parameters :mod:`security.runtime_iam.operations` reads, plus every pipeline definition the build upserted
(reduced by :func:`security.runtime_iam.pipeline_steps.processing_steps`). It checks that the committed
file equals what the code does today, so the security gate (which cannot run that code: no boto3, moto or
SageMaker SDK in ``tox -e security``) evaluates current calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import ApiCall

FORMAT = 1


@dataclass(frozen=True)
class Activity:
    name: str  # what ran, e.g. "deploy.py: Script mode, first build"
    role: str  # key in roles.ROLES
    calls: tuple[ApiCall, ...]
    pipelines: tuple[Mapping[str, Any], ...] = ()  # reduced definitions upserted during the activity

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "role": self.role, "calls": [c.to_json() for c in self.calls]}
        if self.pipelines:
            data["pipelines"] = list(self.pipelines)
        return data


@dataclass(frozen=True)
class Recordings:
    activities: tuple[Activity, ...] = field(default_factory=tuple)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recordings:
        if data.get("format") != FORMAT:
            raise ValueError(f"recorded calls: format {data.get('format')!r}, expected {FORMAT}")
        return cls(tuple(
            Activity(a["name"], a["role"], tuple(ApiCall.from_json(c) for c in a["calls"]),
                     tuple(a.get("pipelines", [])))
            for a in data["activities"]
        ))

    @classmethod
    def load(cls, path: Path) -> Recordings:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "about": "API calls recorded by tests/test_runtime_calls_recorded.py; regenerate with "
            "UPDATE_RECORDED_CALLS=1 .tox/tests/bin/pytest tests/test_runtime_calls_recorded.py",
            "activities": [a.to_json() for a in self.activities],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    def for_role(self, role: str) -> list[Activity]:
        return [a for a in self.activities if a.role == role]

    @property
    def pipelines(self) -> list[Mapping[str, Any]]:
        return [p for a in self.activities for p in a.pipelines]

    @property
    def calls(self) -> list[tuple[Activity, ApiCall]]:
        return [(a, c) for a in self.activities for c in a.calls]
