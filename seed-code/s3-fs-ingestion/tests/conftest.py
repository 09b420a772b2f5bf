"""Fixtures shared by the seed code's tests. No test reaches AWS or the internet.

The environment is fixed when this module is imported, before any test module imports the SageMaker
SDK (which reads its region and configuration at import time): fake credentials, a real region, no
instance metadata, no profiles or real endpoints, and SDK telemetry opted out.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from featurestore_standin import FeatureStoreStandIn

TESTS_DIR = Path(__file__).resolve().parent
SEED_DIR = TESTS_DIR.parent
PROCESSING_DIR = SEED_DIR / "processing"
DATA_DIR = TESTS_DIR / "data"
REGION = "eu-west-1"

# The processing modules import each other by name, as in the container, where the folder is the entry
# point's directory (sys.path[0]); the tests import them the same way (never as ``processing.<module>``,
# which would load a second copy of each).
if str(PROCESSING_DIR) not in sys.path:
    sys.path.insert(0, str(PROCESSING_DIR))

for _name in list(os.environ):
    if _name.startswith(("AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS")) or _name in (
        "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS",
        "SAGEMAKER_VALIDATE_ROLE",
    ):
        del os.environ[_name]
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "SAGEMAKER_USER_CONFIG_OVERRIDE": str(TESTS_DIR / "sagemaker-config.yaml"),
    "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(TESTS_DIR / "sagemaker-config.yaml"),
})


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def abalone_definition() -> dict:
    """The seed code's own feature group definition."""
    return load_json(SEED_DIR / "feature_group.json")


@pytest.fixture
def customers_definition() -> dict:
    """A second, unrelated feature group: record id and event time come from the file."""
    return load_json(DATA_DIR / "customers_feature_group.json")


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeatureStoreStandIn]:
    """The Feature Store stand-in on 127.0.0.1; boto3 clients created in the test go to it."""
    with FeatureStoreStandIn() as store:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", store.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME", store.url)
        yield store


@pytest.fixture(autouse=True, scope="session")
def _sdk_config_validated_once() -> Iterator[None]:
    """SageMaker SDK 3.27 validates its config (here: the telemetry opt-out) against its JSON schema,
    schema check included, whenever it loads the config or looks a value up: about 0.3 s each, dozens of
    times per pipeline built. The config does not change during a test run: validate each one once."""
    from sagemaker.core.config import config, config_manager

    validated: set[str] = set()

    def once(validate):
        def validate_once(sagemaker_config: dict | None = None, *args: object) -> None:
            key = json.dumps(sagemaker_config, sort_keys=True, default=str)
            if key not in validated:
                validate(sagemaker_config, *args)
                validated.add(key)
        return validate_once

    originals = (config.validate_sagemaker_config, config_manager.SageMakerConfig.validate_sagemaker_config)
    config.validate_sagemaker_config = once(originals[0])
    config_manager.SageMakerConfig.validate_sagemaker_config = staticmethod(once(originals[1]))
    yield
    config.validate_sagemaker_config = originals[0]
    config_manager.SageMakerConfig.validate_sagemaker_config = staticmethod(originals[1])
