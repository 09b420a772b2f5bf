"""Where the SageMaker Data Wrangler processing container exists (DataWranglerFlow transform mode).

Vendored data: the Regions of the image the seed code's pipeline uses (version ``3.x``, the default of
``sagemaker.core.image_uris.retrieve("data-wrangler", region)``) in the pinned SageMaker Python SDK
(sagemaker-core 2.27.0, file ``sagemaker/core/image_uri_config/data-wrangler.json``), read on 2026-12-02.
``tests/test_deploy_constraints.py`` compares this tuple with that file, so an SDK upgrade that adds a
Region fails the tests until it is copied here.
"""

from __future__ import annotations

DATA_WRANGLER_IMAGE_VERSION = "3.x"
DATA_WRANGLER_REGIONS: tuple[str, ...] = (
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-north-1",
    "eu-south-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-south-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)
