"""The feature group, created from the seed code's definition file (feature group as code).

The definition (``seed-code/s3-fs-ingestion/feature_group.json``) and the code that applies it
(``feature_store/apply.py``) are the ones the project's build uses, so the group created here and the one
the pipeline writes to cannot drift apart. This module adds what the build never does: deleting the
group, its offline store data and its Glue table.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from .aws import Aws, WalkthroughError, error_code, error_message

LOG = logging.getLogger("fsi_walkthrough")

DEFINITION_FILE = "feature_group.json"
APPLY_MODULE = "feature_store/apply.py"  # the seed code's "feature group as code", as its build runs it
NOT_FOUND = ("ResourceNotFound", "ResourceNotFoundException")


def seed_apply(seed_code_dir: str | Path) -> ModuleType:
    """The seed code's ``feature_store/apply.py`` (boto3 only: no SageMaker SDK needed)."""
    path = Path(seed_code_dir) / APPLY_MODULE
    if not path.is_file():
        raise WalkthroughError(f"no {APPLY_MODULE} under {seed_code_dir}: set SEED_CODE_DIR to the seed code folder")
    spec = importlib.util.spec_from_file_location("fsi_walkthrough_seed_apply", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_definition(seed_code_dir: str | Path) -> dict[str, Any]:
    """The seed code's feature group definition, checked by the seed code's own validation."""
    path = Path(seed_code_dir) / DEFINITION_FILE
    if not path.is_file():
        raise WalkthroughError(f"no feature group definition at {path}: set SEED_CODE_DIR to the seed code folder")
    return seed_apply(seed_code_dir).load_definition(path)


def apply_definition(
    sm: Any,
    seed_code_dir: str | Path,
    name: str,
    offline_store_uri: str,
    role_arn: str,
    *,
    timeout: float = 900,
    poll: float = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Create the feature group from the seed code's definition, exactly as the project's build does.

    An existing group is kept (new features of the definition are added); an incompatible one is refused
    with a message naming every difference. Returns the group's description.
    """
    apply = seed_apply(seed_code_dir)
    definition = load_definition(seed_code_dir)
    outcome = apply.apply(
        sm, definition, name, role_arn=role_arn, offline_store_s3_uri=offline_store_uri.rstrip("/"),
        timeout=timeout, poll=poll, sleep=sleep,
    )
    LOG.info("feature group %s: %s", name, outcome)
    return sm.describe_feature_group(FeatureGroupName=name)


def delete_feature_group(
    sm: Any,
    name: str,
    *,
    timeout: float = 600,
    poll: float = 5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Delete the group and wait until it is gone; False when there was none."""
    try:
        sm.delete_feature_group(FeatureGroupName=name)
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            LOG.info("feature group %s does not exist", name)
            return False
        raise
    deadline = clock() + timeout
    while True:
        try:
            status = sm.describe_feature_group(FeatureGroupName=name).get("FeatureGroupStatus")
        except ClientError as error:
            if error_code(error) in NOT_FOUND:
                LOG.info("deleted feature group %s", name)
                return True
            raise
        if status == "DeleteFailed":
            raise WalkthroughError(f"deleting feature group {name} failed: check it in Studio and delete it there")
        if clock() >= deadline:
            raise TimeoutError(f"feature group {name} is still {status} after {timeout:.0f} s")
        sleep(poll)


def describe_if_exists(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return sm.describe_feature_group(FeatureGroupName=name)
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            return None
        raise


def offline_data_location(description: dict[str, Any]) -> tuple[str, str]:
    """(bucket, key prefix) of this group's offline store data.

    Feature Store writes below ``<S3Uri>/<account>/sagemaker/<region>/offline-store/<group>-<time>/data``
    (``ResolvedOutputS3Uri``); the folder above ``data`` belongs to this group alone.
    """
    storage = description.get("OfflineStoreConfig", {}).get("S3StorageConfig", {})
    uri = storage.get("ResolvedOutputS3Uri") or storage.get("S3Uri")
    if not uri:
        raise WalkthroughError(f"feature group {description.get('FeatureGroupName')} has no offline store")
    parsed = urlparse(uri)
    prefix = parsed.path.lstrip("/").rstrip("/")
    if storage.get("ResolvedOutputS3Uri") and prefix.endswith("/data"):
        prefix = prefix[: -len("/data")]
    return parsed.netloc, prefix + "/"


def delete_glue_table(aws: Aws, description: dict[str, Any]) -> bool:
    """Delete the offline store's Glue table (DeleteFeatureGroup leaves it behind); False if none."""
    catalog = description.get("OfflineStoreConfig", {}).get("DataCatalogConfig")
    if not catalog:
        return False
    try:
        aws.client("glue").delete_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])
    except ClientError as error:
        if error_code(error) == "EntityNotFoundException":
            LOG.info("Glue table %s.%s does not exist", catalog["Database"], catalog["TableName"])
            return False
        raise WalkthroughError(
            f"cannot delete Glue table {catalog['Database']}.{catalog['TableName']}: {error_message(error)}"
        ) from error
    LOG.info("deleted Glue table %s.%s", catalog["Database"], catalog["TableName"])
    return True
