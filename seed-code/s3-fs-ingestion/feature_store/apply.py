"""Feature group as code: make the live feature group match ``feature_group.json``.

The file uses the CreateFeatureGroup field names (see the API reference for their meaning):
``Description``, ``RecordIdentifierFeatureName``, ``EventTimeFeatureName``, ``FeatureDefinitions``,
``OnlineStoreConfig``, ``OfflineStoreConfig``, ``ThroughputConfig``. The group's name, the offline store's
S3 URI and its role come from the build's environment, not from the file.

Changes are additive only, because that is all Feature Store allows on a live group:

* no group yet: create it and wait until it is ``Created``;
* the file gained features: add them (UpdateFeatureGroup ``FeatureAdditions``) and wait for the update;
* a feature removed or retyped, another record identifier or event time, a store switched on or off:
  refused with a message that names every difference and what to do instead.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError

FEATURE_TYPES = ("Integral", "Fractional", "String")
EVENT_TIME_TYPES = ("String", "Fractional")
RESERVED_FEATURE_NAMES = ("is_deleted", "write_time", "api_invocation_time")
MAX_FEATURES = 2500
MAX_ADDITIONS_PER_UPDATE = 100
FEATURE_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
FEATURE_GROUP_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
TOP_LEVEL_KEYS = {
    "Description", "RecordIdentifierFeatureName", "EventTimeFeatureName", "FeatureDefinitions",
    "OnlineStoreConfig", "OfflineStoreConfig", "ThroughputConfig",
}
FEATURE_KEYS = {"FeatureName", "FeatureType", "CollectionType", "CollectionConfig"}


class FeatureGroupError(Exception):
    """The definition is invalid, or the live group cannot be changed to match it."""


# --------------------------------------------------------------------------------------------------
# The definition file
# --------------------------------------------------------------------------------------------------


def load_definition(path: Path) -> dict:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FeatureGroupError(f"cannot read {path}: {error}") from error
    return validate_definition(document, source=str(path))


def validate_definition(document: object, source: str = "feature_group.json") -> dict:
    """Check the definition before any AWS call; return it unchanged."""
    problems: list[str] = []
    if not isinstance(document, dict):
        raise FeatureGroupError(f"{source}: expected a JSON object")
    unknown = sorted(set(document) - TOP_LEVEL_KEYS)
    if unknown:
        problems.append(f"unknown keys {unknown} (allowed: {sorted(TOP_LEVEL_KEYS)})")
    features = document.get("FeatureDefinitions")
    if not isinstance(features, list) or not features:
        problems.append("FeatureDefinitions must be a non-empty list")
        features = []
    if len(features) > MAX_FEATURES:
        problems.append(f"at most {MAX_FEATURES} features, found {len(features)}")
    types: dict[str, str] = {}
    seen: set[str] = set()
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or set(feature) - FEATURE_KEYS:
            problems.append(f"FeatureDefinitions[{index}] must be an object with keys from {sorted(FEATURE_KEYS)}")
            continue
        name, feature_type = feature.get("FeatureName"), feature.get("FeatureType")
        if not isinstance(name, str) or not FEATURE_NAME.match(name) or name.lower() in RESERVED_FEATURE_NAMES:
            problems.append(f"feature name {name!r} is invalid (letters, digits, '-' and '_', at most 64, "
                            f"not one of {', '.join(RESERVED_FEATURE_NAMES)})")
            continue
        if name.lower() in seen:
            problems.append(f"feature {name!r} is defined twice (names are case-insensitive)")
        seen.add(name.lower())
        if feature_type not in FEATURE_TYPES:
            problems.append(f"feature {name!r} has type {feature_type!r}, expected one of {', '.join(FEATURE_TYPES)}")
        types[name] = feature_type
    record_id, event_time = document.get("RecordIdentifierFeatureName"), document.get("EventTimeFeatureName")
    if record_id not in types:
        problems.append(f"RecordIdentifierFeatureName {record_id!r} must name one of the features")
    if event_time not in types:
        problems.append(f"EventTimeFeatureName {event_time!r} must name one of the features")
    elif types[event_time] not in EVENT_TIME_TYPES:
        problems.append(f"event time feature {event_time!r} must be String or Fractional, not {types[event_time]}")
    online, offline = document.get("OnlineStoreConfig"), document.get("OfflineStoreConfig")
    if not _online_enabled(online) and offline is None:
        problems.append("enable the online store, the offline store or both")
    if offline is not None and not isinstance(offline, dict):
        problems.append("OfflineStoreConfig must be an object")
    elif offline and "S3Uri" in offline.get("S3StorageConfig", {}):
        problems.append("OfflineStoreConfig.S3StorageConfig.S3Uri is set by the build (OFFLINE_STORE_S3_URI)")
    if problems:
        raise FeatureGroupError(f"{source}: " + "; ".join(problems))
    return document


def _online_enabled(config: object) -> bool:
    return isinstance(config, dict) and bool(config.get("EnableOnlineStore"))


def create_request(
    definition: dict, name: str, *, role_arn: str, offline_store_s3_uri: str, tags: list[dict] | None = None
) -> dict:
    """The CreateFeatureGroup request for ``definition``."""
    if not FEATURE_GROUP_NAME.match(name):
        raise FeatureGroupError(f"feature group name {name!r} is invalid (letters, digits, '-' and '_', at most 64)")
    request = copy.deepcopy(definition)
    request["FeatureGroupName"] = name
    if "OfflineStoreConfig" in request:
        storage = request["OfflineStoreConfig"].setdefault("S3StorageConfig", {})
        storage["S3Uri"] = offline_store_s3_uri
        request["RoleArn"] = role_arn
    if tags:
        request["Tags"] = tags
    return request


# --------------------------------------------------------------------------------------------------
# Comparing with the live group
# --------------------------------------------------------------------------------------------------


def plan_additions(existing: dict, definition: dict) -> list[dict]:
    """The features to add to the live group ``existing`` (a DescribeFeatureGroup response).

    Raises FeatureGroupError naming every incompatible difference.
    """
    name = existing.get("FeatureGroupName", "?")
    problems = []
    for key in ("RecordIdentifierFeatureName", "EventTimeFeatureName"):
        if existing.get(key) != definition[key]:
            problems.append(f"{key} is {existing.get(key)!r} in the live group, {definition[key]!r} in the file")
    live = {f["FeatureName"]: f for f in existing.get("FeatureDefinitions", [])}
    wanted = {f["FeatureName"]: f for f in definition["FeatureDefinitions"]}
    for feature_name in live:
        if feature_name not in wanted:
            problems.append(f"feature {feature_name!r} was removed (features cannot be deleted)")
    for feature_name, feature in wanted.items():
        current = live.get(feature_name)
        if current is None:
            continue
        for key in ("FeatureType", "CollectionType"):
            if current.get(key) != feature.get(key):
                problems.append(
                    f"feature {feature_name!r} changed {key} from {current.get(key)!r} to {feature.get(key)!r}")
    if _online_enabled(existing.get("OnlineStoreConfig")) != _online_enabled(definition.get("OnlineStoreConfig")):
        problems.append("the online store cannot be switched on or off")
    if ("OfflineStoreConfig" in existing) != ("OfflineStoreConfig" in definition):
        problems.append("the offline store cannot be switched on or off")
    if problems:
        raise FeatureGroupError(
            f"feature group {name!r} cannot be changed to match the definition: " + "; ".join(problems)
            + ". Only new features can be added: restore the definition, or use a new feature group name."
        )
    return [feature for feature_name, feature in wanted.items() if feature_name not in live]


# --------------------------------------------------------------------------------------------------
# Applying
# --------------------------------------------------------------------------------------------------


def apply(
    client,
    definition: dict,
    name: str,
    *,
    role_arn: str,
    offline_store_s3_uri: str,
    tags: list[dict] | None = None,
    timeout: float = 900.0,
    poll: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Create or extend the feature group ``name``; return "created", "updated" or "unchanged"."""
    waiter = _Waiter(client, name, timeout, poll, sleep)
    existing = _describe(client, name)
    if existing is None:
        client.create_feature_group(**create_request(
            definition, name, role_arn=role_arn, offline_store_s3_uri=offline_store_s3_uri, tags=tags))
        waiter.until_created()
        return "created"
    if existing["FeatureGroupStatus"] == "Creating":
        existing = waiter.until_created()
    elif existing["FeatureGroupStatus"] != "Created":
        raise FeatureGroupError(
            f"feature group {name!r} is {existing['FeatureGroupStatus']}"
            + _reason(existing) + "; delete it (or wait for its deletion) and run the build again")
    if existing.get("LastUpdateStatus", {}).get("Status") == "InProgress":
        existing = waiter.until_updated()
    additions = plan_additions(existing, definition)
    if not additions:
        return "unchanged"
    for start in range(0, len(additions), MAX_ADDITIONS_PER_UPDATE):
        client.update_feature_group(FeatureGroupName=name,
                                    FeatureAdditions=additions[start:start + MAX_ADDITIONS_PER_UPDATE])
        waiter.until_updated()
    return "updated"


def _describe(client, name: str) -> dict | None:
    try:
        return client.describe_feature_group(FeatureGroupName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ResourceNotFoundException"):
            return None
        raise


def _reason(description: dict) -> str:
    reason = description.get("FailureReason") or description.get("LastUpdateStatus", {}).get("FailureReason")
    return f" ({reason})" if reason else ""


class _Waiter:
    def __init__(self, client, name: str, timeout: float, poll: float, sleep: Callable[[float], None]) -> None:
        self.client, self.name, self.timeout, self.poll, self.sleep = client, name, timeout, poll, sleep

    def _until(self, done: Callable[[dict], bool], what: str) -> dict:
        waited = 0.0
        while True:
            description = self.client.describe_feature_group(FeatureGroupName=self.name)
            if done(description):
                return description
            if waited >= self.timeout:
                raise FeatureGroupError(f"feature group {self.name!r} not {what} after {self.timeout:.0f} s")
            self.sleep(self.poll)
            waited += self.poll

    def until_created(self) -> dict:
        description = self._until(lambda d: d["FeatureGroupStatus"] != "Creating", "created")
        if description["FeatureGroupStatus"] != "Created":
            raise FeatureGroupError(f"feature group {self.name!r} is {description['FeatureGroupStatus']}"
                                    + _reason(description))
        return description

    def until_updated(self) -> dict:
        description = self._until(
            lambda d: d.get("LastUpdateStatus", {}).get("Status") != "InProgress", "updated")
        if description.get("LastUpdateStatus", {}).get("Status") == "Failed":
            raise FeatureGroupError(f"updating feature group {self.name!r} failed" + _reason(description))
        return description
