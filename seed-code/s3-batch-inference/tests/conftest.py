"""Fixtures shared by the seed code's tests. No test reaches AWS or the internet.

The environment is fixed when this module is imported, before any test module imports the SageMaker
SDK (which reads its region and configuration at import time): fake credentials, a real region, no
instance metadata, no profiles or real endpoints, and SDK telemetry opted out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
SEED_DIR = TESTS_DIR.parent
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account

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


@pytest.fixture(autouse=True, scope="session")
def _sdk_config_validated_once() -> Iterator[None]:
    """SageMaker SDK 3.27 validates its config (here: the telemetry opt-out) against its JSON schema
    whenever it loads the config or looks a value up: about 0.3 s each, dozens of times per pipeline built.
    The config does not change during a test run: validate each one once."""
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
