"""Input manifests for a project's pipeline: SageMaker's ManifestFile format, the bytes the start Lambda writes.

``[{"prefix": "s3://bucket/"}, "key1", "key2", ...]``: each object's URL is the prefix followed by the entry
(SageMaker API Reference, ``S3DataSource``/``TransformS3DataSource``, ``S3Uri`` with ``ManifestFile``). The start
Lambda (``lambda_functions/start_ingestion_pipeline/app.py``, ``manifest_for``) writes the same document for one
object, serialised the same way (``json.dumps``, ``ensure_ascii=False``, UTF-8); the tests hold both to the same
bytes. The processing script reads the listed objects itself and shards them across the job's instances by a hash
of each object's URL.

No object count limit is documented for a manifest: it is one S3 object, read whole by the processing script (and,
in Data Wrangler mode, by SageMaker, which downloads every listed object). A backfill therefore splits its objects
into manifests of at most :data:`MANIFEST_MAX_BYTES` each, one pipeline execution per manifest. Pure standard
library: no AWS call here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

# The processing script holds the parsed manifest in memory: 64 MiB is some 300,000 keys of 200 bytes.
MANIFEST_MAX_BYTES = 64 * 1024 * 1024
BACKFILL_SCHEME = "backfill-v1"  # bump when the request token material changes


@dataclass(frozen=True)
class S3Object:
    key: str
    etag: str
    size: int


def manifest_body(bucket: str, keys: Sequence[str]) -> bytes:
    """The manifest listing ``keys`` of ``bucket``, in the given order."""
    return json.dumps([{"prefix": f"s3://{bucket}/"}, *keys], ensure_ascii=False).encode("utf-8")


def _entry_bytes(key: str) -> int:
    """What one more key adds to a body: the ``", "`` separator and the JSON string."""
    return 2 + len(json.dumps(key, ensure_ascii=False).encode("utf-8"))


def split(bucket: str, objects: Sequence[S3Object], max_bytes: int = MANIFEST_MAX_BYTES) -> list[list[S3Object]]:
    """``objects`` in order, cut into runs whose manifest body is at most ``max_bytes`` long (at least one object
    per manifest)."""
    empty = len(manifest_body(bucket, []))
    parts: list[list[S3Object]] = []
    current: list[S3Object] = []
    size = empty
    for obj in objects:
        grow = _entry_bytes(obj.key)
        if current and size + grow > max_bytes:
            parts.append(current)
            current, size = [], empty
        current.append(obj)
        size += grow
    if current:
        parts.append(current)
    return parts


def execution_token(pipeline: str, bucket: str, objects: Sequence[S3Object]) -> str:
    """64 hex characters (StartPipelineExecution ``ClientRequestToken``: 32-128) from the pipeline and each listed
    object's key and ETag: the same backfill of the same object versions cannot start a second execution, a backfill
    after objects were rewritten (new ETags) can."""
    material = json.dumps([BACKFILL_SCHEME, pipeline, bucket, [[o.key, o.etag] for o in objects]])  # ASCII JSON
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def manifest_key(manifest_prefix: str, token: str) -> str:
    return f"{manifest_prefix}backfill-{token}.manifest"
