"""The SageMaker scikit-learn serving image of a Region (what ``image_uris.retrieve("sklearn", ...)`` answers).

The walkthrough registers its model with this image without importing the SageMaker Python SDK. The
registry accounts below are public data, vendored from the SDK the seed code pins:

    source:    sagemaker-core 2.27.0 (PyPI), sagemaker/core/image_uri_config/sklearn.json,
               "inference" > "versions" > "1.2-1" > "registries" (repository "sagemaker-scikit-learn",
               processor "cpu", Python "py3")
    retrieved: 2026-12-02

``tests/test_notebooks_batch.py`` compares every Region's URI with the pinned SDK's own answer, so an SDK
upgrade that moves an image fails the suite instead of a transform job.

1.2-1 is the version the ingestion seed code's processing step uses (Python 3.9): one image family for both.
The URI's domain is the Region's partition DNS suffix, read from botocore's endpoint data (amazonaws.com,
amazonaws.com.cn for China, c2s.ic.gov and others for the isolated partitions).
"""

from __future__ import annotations

import re
from functools import lru_cache

import botocore.session

from .aws import WalkthroughError

SKLEARN_VERSION = "1.2-1"
REPOSITORY = "sagemaker-scikit-learn"
TAG_SUFFIX = "-cpu-py3"
REGISTRIES = {
    "1.2-1": {
        "af-south-1": "510948584623",
        "ap-east-1": "651117190479",
        "ap-northeast-1": "354813040037",
        "ap-northeast-2": "366743142698",
        "ap-northeast-3": "867004704886",
        "ap-south-1": "720646828776",
        "ap-south-2": "628508329040",
        "ap-southeast-1": "121021644041",
        "ap-southeast-2": "783357654285",
        "ap-southeast-3": "951798379941",
        "ap-southeast-4": "106583098589",
        "ca-central-1": "341280168497",
        "ca-west-1": "190319476487",
        "cn-north-1": "450853457545",
        "cn-northwest-1": "451049120500",
        "eu-central-1": "492215442770",
        "eu-central-2": "680994064768",
        "eu-north-1": "662702820516",
        "eu-south-1": "978288397137",
        "eu-south-2": "104374241257",
        "eu-west-1": "141502667606",
        "eu-west-2": "764974769150",
        "eu-west-3": "659782779980",
        "il-central-1": "898809789911",
        "me-central-1": "272398656194",
        "me-south-1": "801668240914",
        "sa-east-1": "737474898029",
        "us-east-1": "683313688378",
        "us-east-2": "257758044811",
        "us-gov-east-1": "237065988967",
        "us-gov-west-1": "414596584902",
        "us-iso-east-1": "833128469047",
        "us-isob-east-1": "281123927165",
        "us-isof-east-1": "108575199400",
        "us-isof-south-1": "124985052026",
        "us-west-1": "746614075791",
        "us-west-2": "246618743249",
    },
}


@lru_cache(maxsize=1)
def _partitions() -> list[dict]:
    return list(botocore.session.get_session().get_data("endpoints")["partitions"])


def dns_suffix(region: str) -> str:
    """The DNS suffix of the partition ``region`` belongs to (botocore's endpoint data)."""
    for partition in _partitions():
        if region in partition.get("regions", {}):
            return str(partition["dnsSuffix"])
    for partition in _partitions():
        if re.match(partition.get("regionRegex", "$^"), region):
            return str(partition["dnsSuffix"])
    raise WalkthroughError(f"unknown AWS Region {region!r}")


def sklearn_image_uri(region: str, version: str = SKLEARN_VERSION) -> str:
    """``<account>.dkr.ecr.<region>.<suffix>/sagemaker-scikit-learn:<version>-cpu-py3``."""
    registries = REGISTRIES.get(version)
    if registries is None:
        raise WalkthroughError(f"no scikit-learn image version {version!r} here (known: {', '.join(REGISTRIES)})")
    account = registries.get(region)
    if account is None:
        raise WalkthroughError(f"SageMaker publishes no scikit-learn {version} image in {region}")
    return f"{account}.dkr.ecr.{region}.{dns_suffix(region)}/{REPOSITORY}:{version}{TAG_SUFFIX}"
