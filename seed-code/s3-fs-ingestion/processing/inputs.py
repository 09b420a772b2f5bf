"""The inputs: which files to ingest, and where each came from.

* object path (``--input-dir``): SageMaker downloaded the object named by the execution as an ``S3Prefix``
  input. Its URL comes from ``--source-uri`` or else from the job's ``/opt/ml/config/processingjobconfig.json``
  (never from an argument the pipeline builds: those are limited to 256 characters). Exactly that object is
  ingested -- ``in/a.csv`` also brings ``in/a.csv.old.csv``, which is ignored and logged -- and it must be a
  CSV file with a header row (:func:`check_csv_text`). A prefix URL (ending with ``/``), or no URL at all,
  ingests every ``*.csv`` file below the input dir (:func:`select_input_files`);
* manifest path (``--manifest-dir``): the input is a SageMaker ManifestFile document,
  ``[{"prefix": "s3://bucket/prefix/"}, "key1", ...]`` (:func:`read_manifest`). The objects it lists are read
  from S3 one at a time (:func:`download`: GetObject into a short local file name, so keys of any length
  work), and with several instances each takes the objects whose URL hashes (SHA-256) to its index among the
  hosts of ``/opt/ml/config/resourceconfig.json`` (:func:`my_share`): every object is ingested by exactly one
  instance.

The object's URL (``s3://bucket/key``) is its identity in both paths: record identifiers derive from it.

Runs in the SageMaker scikit-learn image: boto3 and Python 3.9+ only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from errors import FileError, JobError

LOG = logging.getLogger("transform_and_ingest.inputs")

# Where SageMaker Processing describes the running job inside the container ("How Amazon SageMaker
# Processing Configures Your Processing Container", in "Build Your Own Processing Container (Advanced
# Scenario)", SageMaker developer guide): the job's configuration (its ProcessingInputs with their resolved
# S3Uri and LocalPath) and the cluster (current_host, hosts).
JOB_CONFIG = Path("/opt/ml/config/processingjobconfig.json")
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")
MAX_FILE_NAME_BYTES = 255  # a Linux file name component
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# First bytes of files that are certainly not CSV text, and what to tell the uploader.
_NOT_CSV = (
    (b"PAR1", "a Parquet file"),
    (b"\x1f\x8b", "gzip-compressed (upload the uncompressed CSV)"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"),
    (b"ORC", "an ORC file"),
)


@dataclass(frozen=True)
class InputFile:
    """One file to ingest."""

    path: Path  # where it is on this machine
    relative: str  # its name below --failed-rows-dir (and in the log)
    source: str  # where it came from (s3://bucket/key): record identifiers derive from it
    named: bool  # the execution named exactly this object: it must be a CSV file with a header row


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); taken as text (keys may hold ``#``, ``?``, spaces, ...)."""
    bucket, _, key = url[len("s3://"):].partition("/") if url.startswith("s3://") else ("", "", "")
    if not _BUCKET.match(bucket) or not key:
        raise ValueError(f"not an s3://bucket/key URL: {url!r}")
    return bucket, key


# The object path ------------------------------------------------------------------------------------


def input_uri_from_job_config(config_path: Path, local_dir: Path) -> str | None:
    """The S3 URI that SageMaker downloaded into ``local_dir``, read from the job's processingjobconfig.json;
    None when there is no such file (not running as a SageMaker processing job)."""
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        inputs = config.get("ProcessingInputs") or []
    except (OSError, ValueError, AttributeError) as error:
        raise JobError(f"cannot read the job configuration {config_path}: {error}") from error
    wanted = os.path.normpath(str(local_dir))
    for item in inputs:
        s3_input = (item or {}).get("S3Input") or {}
        if s3_input.get("LocalPath") and os.path.normpath(s3_input["LocalPath"]) == wanted:
            if not s3_input.get("S3Uri"):
                raise JobError(f"the job's input at {local_dir} has no S3Uri in {config_path}")
            return str(s3_input["S3Uri"])
    raise JobError(f"the job has no S3 input downloaded to {local_dir} (see {config_path})")


def _names_an_object(source_uri: str) -> bool:
    """``s3://b/in/a.csv`` names an object; ``s3://b/in/`` and ``s3://b`` name a prefix."""
    scheme = source_uri.find("://")
    return not source_uri.endswith("/") and (scheme < 0 or source_uri.find("/", scheme + 3) >= 0)


def find_files(input_dir: Path) -> list[Path]:
    return sorted(path for path in input_dir.rglob("*") if path.is_file())


def find_csv_files(input_dir: Path) -> list[Path]:
    return [path for path in find_files(input_dir) if path.suffix.lower() == ".csv"]


def source_name(path: Path, input_dir: Path, source_uri: str | None) -> str:
    """Where the file came from: the source URI's "directory" joined with the path below the input dir.

    SageMaker copies the objects under an S3 prefix into the input dir by their key below the prefix's
    last ``/``: ``s3://b/in/batch.csv`` arrives as ``batch.csv`` and is named ``s3://b/in/batch.csv``
    again, ``s3://b/in/`` with key ``in/x/batch.csv`` arrives as ``x/batch.csv``. The URI is taken as
    text, not parsed as a URL: S3 keys may hold ``#`` and ``?``.
    """
    relative = path.relative_to(input_dir).as_posix()
    if not source_uri:
        return relative
    scheme = source_uri.find("://")
    if scheme >= 0 and source_uri.find("/", scheme + 3) < 0:  # s3://bucket: the whole bucket
        return f"{source_uri}/{relative}"
    return source_uri[: source_uri.rfind("/") + 1] + relative


def select_input_files(input_dir: Path, source_uri: str | None) -> list[InputFile]:
    """The files of ``input_dir`` to ingest.

    When ``source_uri`` names an object, exactly that object: SageMaker downloads an ``S3Prefix`` input, so
    ``s3://b/in/a.csv`` also brings ``in/a.csv.old.csv`` (as ``a.csv.old.csv``); the object is the file whose
    path below the input dir is the key's last component, every other file is ignored (and logged). When
    it names a prefix (ends with ``/``) or is unknown, every ``*.csv`` file below the input dir.
    """
    if not input_dir.is_dir():
        raise JobError(f"input directory {input_dir} does not exist")
    if source_uri and _names_an_object(source_uri):
        name = source_uri[source_uri.rfind("/") + 1:]
        if len(name.encode("utf-8")) > MAX_FILE_NAME_BYTES:
            raise JobError(f"the object {source_uri} ends in a name longer than {MAX_FILE_NAME_BYTES} bytes, which "
                           "no file can have: start the pipeline with InputManifestUrl for such keys")
        target = input_dir / name
        others = [path.relative_to(input_dir).as_posix() for path in find_files(input_dir) if path != target]
        if others:
            LOG.warning("ingesting only %s: %d other file(s) that came with the same S3 prefix are ignored: %s",
                        source_uri, len(others), ", ".join(others[:10]) + (", ..." if len(others) > 10 else ""))
        if not target.is_file():
            raise JobError(f"the object {source_uri} is not in {input_dir} (expected the file {name!r}); "
                           f"found {len(others)} other file(s)")
        return [InputFile(target, name, source_uri, named=True)]
    return [InputFile(path, path.relative_to(input_dir).as_posix(), source_name(path, input_dir, source_uri),
                      named=False)
            for path in find_csv_files(input_dir)]


def check_csv_text(path: Path) -> None:
    """Refuse, with a reason, what is certainly not CSV text: empty, a known binary format, NUL bytes."""
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    if not head.strip():
        raise FileError("the file is empty: a CSV file with a header row is expected")
    for magic, what in _NOT_CSV:
        if head.startswith(magic):
            raise FileError(f"the file is {what}, not a CSV file with a header row")
    if b"\x00" in head:
        raise FileError("the file is binary (it holds NUL bytes), not a CSV file with a header row")


# The manifest path -----------------------------------------------------------------------------------


def parse_manifest(text: str, name: str) -> list[str]:
    """The object URLs a SageMaker ManifestFile document lists, in order, without duplicates.

    The format (CreateProcessingJob ``S3DataType=ManifestFile``; the ``S3DataSource`` reference shows it):
    ``[{"prefix": "s3://bucket/some/prefix/"}, "relative/key1", "relative/key2", ...]``; each object's URL is
    the prefix followed by the entry.
    """
    try:
        document = json.loads(text)
    except ValueError as error:
        raise JobError(f"the input manifest {name} is not JSON: {error}") from error
    if (not isinstance(document, list) or not document or not isinstance(document[0], dict)
            or not isinstance(document[0].get("prefix"), str)):
        raise JobError(f'the input manifest {name} is not a SageMaker ManifestFile document: expected '
                       '[{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]')
    prefix = document[0]["prefix"]
    urls: list[str] = []
    seen: set[str] = set()
    for position, entry in enumerate(document[1:], start=1):
        if not isinstance(entry, str) or not entry:
            raise JobError(f"the input manifest {name}: entry {position} is not a non-empty string")
        url = prefix + entry
        try:
            split_s3_url(url)
        except ValueError as error:
            raise JobError(f"the input manifest {name}: entry {position}: {error}") from error
        if url in seen:
            LOG.warning("the input manifest lists %s more than once: ingested once", url)
            continue
        seen.add(url)
        urls.append(url)
    if not urls:
        raise JobError(f"the input manifest {name} lists no object")
    return urls


def read_manifest(manifest_dir: Path, job_config: Path) -> tuple[str, list[str]]:
    """(name, object URLs) of the input manifest SageMaker downloaded into ``manifest_dir``."""
    uri = input_uri_from_job_config(job_config, manifest_dir)
    if not manifest_dir.is_dir():
        raise JobError(f"manifest directory {manifest_dir} does not exist")
    if uri is not None:
        if not _names_an_object(uri):
            raise JobError(f"the input manifest URL {uri} names a prefix, not a manifest object")
        [selected] = select_input_files(manifest_dir, uri)  # the same exact-object rule as for data
        path, name = selected.path, uri
    else:
        files = find_files(manifest_dir)
        if len(files) != 1:
            raise JobError(f"expected one input manifest in {manifest_dir}, found {len(files)} file(s)")
        path, name = files[0], str(files[0])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise JobError(f"cannot read the input manifest {name}: {error}") from error
    return name, parse_manifest(text, name)


def cluster(resource_config: Path) -> tuple[str, list[str]]:
    """(this host, every host, sorted) from resourceconfig.json; one host when the file does not exist."""
    if not resource_config.is_file():
        return "local", ["local"]
    try:
        config = json.loads(resource_config.read_text(encoding="utf-8"))
        current, hosts = str(config["current_host"]), sorted({str(host) for host in config["hosts"]})
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise JobError(f"cannot read the cluster configuration {resource_config}: {error}") from error
    if current not in hosts:
        raise JobError(f"{resource_config}: current_host {current!r} is not one of the hosts {hosts}")
    return current, hosts


def shard(url: str, host_count: int) -> int:
    """The index of the host that ingests ``url``: a stable hash (SHA-256), the same on every host and run."""
    return int.from_bytes(hashlib.sha256(url.encode("utf-8")).digest()[:8], "big") % host_count


def my_share(urls: Sequence[str], current: str, hosts: Sequence[str]) -> list[str]:
    index = list(hosts).index(current)
    return [url for url in urls if shard(url, len(hosts)) == index]


def failed_rows_name(url: str) -> str:
    """Where the failed rows of object ``url`` go below --failed-rows-dir: ``<bucket>/<key>`` when that is a
    safe relative path of valid file names (and short enough to keep the uploaded key under S3's 1,024
    bytes), else ``<bucket>/long-keys/<SHA-256 of the URL>.csv`` (the log names the object)."""
    bucket, key = split_s3_url(url)
    parts = key.split("/")
    if (len(key.encode("utf-8")) <= 512 and "\x00" not in key
            and all(part not in ("", ".", "..") and len(part.encode("utf-8")) <= MAX_FILE_NAME_BYTES
                    for part in parts)):
        return f"{bucket}/{key}"
    return f"{bucket}/long-keys/{hashlib.sha256(url.encode('utf-8')).hexdigest()}.csv"


def download(s3, url: str, directory: Path, attempts: int = 3) -> Path:
    """Stream the object ``url`` (GetObject) into a file of ``directory`` with a short name; any key works."""
    bucket, key = split_s3_url(url)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (hashlib.sha256(url.encode("utf-8")).hexdigest() + ".download")
    for attempt in range(1, attempts + 1):
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            with target.open("wb") as out:
                shutil.copyfileobj(body, out, 1024 * 1024)
            return target
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            hint = {"NoSuchKey": "it does not exist (deleted since?)",
                    "AccessDenied": "access denied: the pipeline's execution role needs s3:GetObject on it"}
            raise FileError(f"cannot read {url}: {hint.get(code, f'{code}: {error}')}") from error
        except (BotoCoreError, OSError) as error:  # a broken stream: start the object again
            if attempt == attempts:
                raise FileError(f"cannot read {url} after {attempts} attempts: {error}") from error
            LOG.warning("reading %s failed (%s); attempt %d of %d", url, error, attempt + 1, attempts)
    raise AssertionError("unreachable")
