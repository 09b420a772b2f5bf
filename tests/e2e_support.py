"""Shared by the notebook and end-to-end tests: paths, loaders, a moto server and the Abalone fixture.

Nothing here reaches AWS or the internet: the moto server and the Feature Store stand-in listen on
127.0.0.1 only.
"""

from __future__ import annotations

import copy
import io
import json
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from loading import load_event, load_module
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO / "notebooks"
SEED_CODE_DIR = REPO / "seed-code" / "s3-fs-ingestion"
LAMBDA_APP = REPO / "lambda_functions" / "start_ingestion_pipeline" / "app.py"
ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"


class FakeClock:
    """``clock`` and ``sleep`` for the waiting helpers: sleeping advances time (and is recorded), nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

# The first twelve lines of the published abalone.data (no header): enough for every test.
ABALONE_LINES = """\
M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15
M,0.35,0.265,0.09,0.2255,0.0995,0.0485,0.07,7
F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9
M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,10
I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7
I,0.425,0.3,0.095,0.3515,0.141,0.0775,0.12,8
F,0.53,0.415,0.15,0.7775,0.237,0.1415,0.33,20
F,0.545,0.425,0.125,0.768,0.294,0.1495,0.26,16
M,0.475,0.37,0.125,0.5095,0.2165,0.1125,0.165,9
F,0.55,0.44,0.15,0.8945,0.3145,0.151,0.32,19
F,0.525,0.38,0.14,0.6065,0.194,0.1475,0.21,14
M,0.43,0.35,0.11,0.406,0.1675,0.081,0.135,10
"""


def walkthrough_helpers() -> ModuleType:
    """The notebooks' helper package ``fsi_walkthrough`` (it lives next to the notebooks)."""
    if str(NOTEBOOKS_DIR) not in sys.path:
        sys.path.insert(0, str(NOTEBOOKS_DIR))
    import fsi_walkthrough

    return fsi_walkthrough


def feature_store_standin() -> ModuleType:
    """The seed code's local Feature Store stand-in (its tests own it)."""
    return load_module("seed_featurestore_standin", SEED_CODE_DIR / "tests" / "featurestore_standin.py")


def moto_feature_group_fixes() -> ModuleType:
    """The seed code's fixes for moto's feature group gaps (missing group answered ResourceNotFound, ...)."""
    return load_module("seed_moto_feature_groups", SEED_CODE_DIR / "tests" / "moto_feature_groups.py")


def processing_script() -> ModuleType:
    """The seed code's processing entry point. Its modules import each other by name (in the container the
    folder is the entry point's directory, first on sys.path), so the folder goes first on sys.path here too."""
    folder = SEED_CODE_DIR / "processing"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return load_module("seed_transform_and_ingest", folder / "transform_and_ingest.py")


def lambda_app() -> ModuleType:
    return load_module("start_ingestion_pipeline_app", LAMBDA_APP)


def feature_group_definition() -> dict[str, Any]:
    return json.loads((SEED_CODE_DIR / "feature_group.json").read_text(encoding="utf-8"))


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port; yields its URL. Its state lives in this process."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    _reset(url)  # moto's backends are global to the process: start from nothing, leave nothing behind
    try:
        yield url
    finally:
        _reset(url)
        server.stop()


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310 - local http:// URL
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200


def write_abalone_zip(path: Path) -> Path:
    """A stand-in for the UCI archive (abalone.zip holding abalone.data and abalone.names)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("abalone.data", ABALONE_LINES)
        archive.writestr("abalone.names", "Abalone data (fixture: the first lines of the UCI file)\n")
    path.write_bytes(buffer.getvalue())
    return path


def cloudtrail_put_event(bucket: str, key: str, *, version_id: str, size: int) -> dict[str, Any]:
    """What EventBridge delivers for a PutObject recorded by a data-event trail (from tests/events)."""
    event = load_event("cloudtrail-putobject.json")
    event = copy.deepcopy(event)
    event["account"] = ACCOUNT
    detail = event["detail"]
    detail["recipientAccountId"] = ACCOUNT
    detail["requestParameters"].update(bucketName=bucket, key=key, Host=f"{bucket}.s3.{REGION}.amazonaws.com")
    detail["responseElements"]["x-amz-version-id"] = version_id
    detail["additionalEventData"]["bytesTransferredIn"] = float(size)
    detail["resources"] = [
        {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
        {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
    ]
    return event
