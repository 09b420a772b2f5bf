"""Fills three gaps in moto 5.2.5's feature groups, so the build can be tested end to end against moto.

Measured with moto 5.2.5 (pinned in requirements.txt):

1. DescribeFeatureGroup of a missing group raises a Python KeyError; the service answers
   ``ResourceNotFound``.
2. CreateFeatureGroup drops ``OnlineStoreConfig`` and ``Description``, so DescribeFeatureGroup never
   shows an online store.
3. UpdateFeatureGroup is not implemented.

:func:`patch` fixes these on the moto classes for one test (through pytest's ``monkeypatch``); everything
else is moto's own behaviour.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.core.responses import ActionResult
from moto.sagemaker import models, responses
from moto.sagemaker.exceptions import ResourceNotFound

_KEPT = ("OnlineStoreConfig", "Description")


def _group(backend: Any, name: str) -> Any:
    for group in backend.feature_groups.values():
        if group.feature_group_name == name or group.arn == name:
            return group
    raise ResourceNotFound(f"Resource Not Found: FeatureGroup {name} not found")


def patch(monkeypatch: pytest.MonkeyPatch) -> None:
    original_create = responses.SageMakerResponse.create_feature_group

    def create_feature_group(self: Any) -> ActionResult:
        result = original_create(self)
        group = _group(self.sagemaker_backend, self._get_param("FeatureGroupName"))
        group.kept = {key: self._get_param(key) for key in _KEPT if self._get_param(key) is not None}
        return result

    def describe_feature_group(self: Any, feature_group_name: str) -> dict:
        group = _group(self, feature_group_name)
        return {**group.describe(), **getattr(group, "kept", {}), **getattr(group, "last_update", {})}

    def update_feature_group(self: Any) -> ActionResult:
        group = _group(self.sagemaker_backend, self._get_param("FeatureGroupName"))
        group.feature_definitions = list(group.feature_definitions) + list(
            self._get_param("FeatureAdditions") or [])
        group.last_update = {"LastUpdateStatus": {"Status": "Successful"}}
        return ActionResult({"FeatureGroupArn": group.arn})

    monkeypatch.setattr(responses.SageMakerResponse, "create_feature_group", create_feature_group)
    monkeypatch.setattr(responses.SageMakerResponse, "update_feature_group", update_feature_group, raising=False)
    monkeypatch.setattr(models.SageMakerModelBackend, "describe_feature_group", describe_feature_group)
