#!/usr/bin/env python3
"""Transform CSV files and ingest their rows into a SageMaker Feature Store feature group.

This file runs on its own inside the SageMaker Processing container (scikit-learn image): it needs
pandas and boto3 only, and stays compatible with Python 3.9 and pandas 1.1+.

What it ingests:

* object path (``--input-dir``): SageMaker downloaded the object named by the execution as an ``S3Prefix``
  input. Its URL comes from ``--source-uri`` or else from the job's ``/opt/ml/config/processingjobconfig.json``
  (never from an argument the pipeline builds: those are limited to 256 characters). Exactly that object is
  ingested -- ``in/a.csv`` also brings ``in/a.csv.old.csv``, which is ignored and logged -- and it must be a
  CSV file with a header row. A prefix URL (ending with ``/``), or no URL at all, ingests every ``*.csv`` file
  below the input dir;
* manifest path (``--manifest-dir``): the input is a SageMaker ManifestFile document,
  ``[{"prefix": "s3://bucket/prefix/"}, "key1", ...]``. The script reads each listed object from S3 itself
  (GetObject into a short local file name, so keys of any length work), and with several instances each
  takes the objects whose URL hashes (SHA-256) to its index among the hosts of
  ``/opt/ml/config/resourceconfig.json``: every object is ingested by exactly one instance.

It is driven by the feature group's definition (DescribeFeatureGroup), not by per-dataset code:

* column names are normalised (lowercase; runs of non-alphanumerics become ``_``, trimmed);
* a column that is a feature passes through; a column ``c`` whose values appear as features
  ``c_<value>`` is one-hot encoded (1/0 in the features' type); other columns are dropped (one warning);
* a missing record identifier is derived from the object's URL (``s3://bucket/key``, the same in both
  paths) and the row number: stable across re-runs, unique across objects;
* a missing event time is the ingestion time, in the format the event time feature's type demands;
* values are cast to the feature types; rows that cannot be cast or written are written to a file in
  ``--failed-rows-dir`` and counted, the other rows are still ingested, and the exit status is 1.

No scaling happens here: features from different files stay comparable.

Rows are written with BatchWriteRecord when the installed botocore has it (PutRecord otherwise), from
a thread pool, with botocore's adaptive retries plus a retry of the failed entries of every batch.
The clients honour ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` (boto3 does that natively).

Exit status: 0 every row was written; 1 some rows were not written, or a named object was not ingested at
all (not a CSV file with a header row: empty, Parquet, binary, unparsable; or unreadable in S3); 2 nothing
was attempted (no such feature group, unusable arguments, the named object is not in the input directory,
the manifest is missing or invalid). A failed job also writes its one-line outcome to
``/opt/ml/output/message``, which SageMaker shows as the job's ExitMessage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import boto3
import pandas as pd
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOG = logging.getLogger("transform_and_ingest")

BATCH_WRITE_MAX_ENTRIES = 25  # the BatchWriteRecord API limit
CHUNK_ROWS = 20_000  # rows read, transformed and written at a time: bounded memory for big files
# Error codes worth another attempt: throttling and transient service faults.
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "SlowDown",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalServerError",
    "InternalError", "RequestTimeout", "RequestTimeoutException",
})
RETRY_BASE_DELAY = 0.25  # seconds; backoff of the entries retried after a BatchWriteRecord call
FAILED_ROW_NUMBER = "failed_row_number"
FAILURE_REASON = "failure_reason"
_ISO_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
_INT_TEXT = r"[+-]?\d+"

Record = list[dict[str, str]]
RowKey = tuple[str, int]  # (file path relative to the input dir, 1-based data row number)


class JobError(Exception):
    """The job cannot start; the message says why."""


class FileError(Exception):
    """One input file cannot be ingested at all; the message says why."""


# --------------------------------------------------------------------------------------------------
# The feature group's schema
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """What the transformation needs to know about the feature group."""

    name: str
    record_identifier: str
    event_time: str
    types: dict[str, str]  # scalar feature name -> Integral | Fractional | String

    @classmethod
    def from_description(cls, description: dict) -> Schema:
        types = {}
        for feature in description["FeatureDefinitions"]:
            if feature.get("CollectionType"):
                # CSV cells cannot carry lists; such features are left out of every record.
                LOG.warning("feature %r is a %s collection: CSV files cannot fill it, it is skipped",
                            feature["FeatureName"], feature["CollectionType"])
                continue
            types[feature["FeatureName"]] = feature["FeatureType"]
        schema = cls(
            name=description["FeatureGroupName"],
            record_identifier=description["RecordIdentifierFeatureName"],
            event_time=description["EventTimeFeatureName"],
            types=types,
        )
        if schema.types.get(schema.event_time) not in ("String", "Fractional"):
            raise JobError(f"event time feature {schema.event_time!r} must be String or Fractional")
        if schema.record_identifier not in schema.types:
            raise JobError(f"record identifier {schema.record_identifier!r} is not a scalar feature")
        return schema


def describe_schema(sagemaker_client, feature_group_name: str) -> Schema:
    try:
        description = sagemaker_client.describe_feature_group(FeatureGroupName=feature_group_name)
    except (ClientError, BotoCoreError) as error:
        raise JobError(f"cannot describe feature group {feature_group_name!r}: {error}") from error
    return Schema.from_description(description)


# --------------------------------------------------------------------------------------------------
# Columns: names, one-hot encoding, what is dropped
# --------------------------------------------------------------------------------------------------


def normalise(name: object) -> str:
    """Lowercase; every run of non-alphanumeric characters becomes one ``_``; trimmed of ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


@dataclass
class ColumnPlan:
    """How the (normalised) columns of one file map to features."""

    passthrough: dict[str, str] = field(default_factory=dict)  # column -> feature
    one_hot: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {value -> feature}
    dropped: list[str] = field(default_factory=list)


def plan_columns(columns: Sequence[str], sample: pd.DataFrame, schema: Schema) -> ColumnPlan:
    """Decide, from the header and a first chunk of rows, what each column becomes."""
    by_normalised = {normalise(feature): feature for feature in schema.types}
    plan = ColumnPlan()
    for column in columns:
        if column in by_normalised:
            plan.passthrough[column] = by_normalised[column]
    provided = set(plan.passthrough.values())
    for column in columns:
        if column in plan.passthrough:
            continue
        prefix = column + "_"
        categories = {
            key[len(prefix):]: feature
            for key, feature in by_normalised.items()
            if key.startswith(prefix) and feature not in provided
        }
        values = {normalise(value) for value in sample[column].unique() if str(value).strip() != ""}
        if categories and values & set(categories):
            plan.one_hot[column] = categories
        else:
            plan.dropped.append(column)
    return plan


# --------------------------------------------------------------------------------------------------
# Casting (vectorised: a chunk at a time)
# --------------------------------------------------------------------------------------------------


@dataclass
class Cast:
    """A column cast to a feature type: the value to send (None = leave the feature out) per row,
    and the rows whose value could not be cast."""

    values: pd.Series  # object: str or None
    invalid: pd.Series  # bool


def _empty_like(series: pd.Series) -> pd.Series:
    return pd.Series([None] * len(series), index=series.index, dtype=object)


def cast_integral(raw: pd.Series) -> Cast:
    text = raw.astype(str).str.strip()
    present = text.ne("")
    out = _empty_like(raw)
    exact = present & text.str.fullmatch(_INT_TEXT).fillna(False).astype(bool)
    if exact.any():
        ints = text[exact].map(int)
        good = ints[ints.map(lambda v: -(2**63) <= v < 2**63).astype(bool)]
        out.loc[good.index] = good.map(str).tolist()
    other = present & ~exact
    if other.any():
        numbers = _floats(text[other])
        good = numbers[numbers.notna() & (numbers.abs() < 2.0**53) & (numbers % 1 == 0)]
        out.loc[good.index] = good.astype("int64").astype(str).tolist()
    return Cast(out, present & out.isna())


def _floats(text: pd.Series) -> pd.Series:
    """Python's correctly rounded float() per cell (NaN where it fails): pandas 1.x's to_numeric can be
    one unit in the last place off (0.101 -> 0.10099999999999999)."""

    def parse(value: str) -> float:
        try:
            return float(value) if "_" not in value else float("nan")
        except ValueError:
            return float("nan")

    return pd.Series([parse(value) for value in text.tolist()], index=text.index, dtype=float)


def _float_text(numbers: pd.Series) -> list[str]:
    """Shortest round-trip text of each float, the same with every pandas and numpy version."""
    return [repr(float(number)) for number in numbers.tolist()]


def cast_fractional(raw: pd.Series) -> Cast:
    text = raw.astype(str).str.strip()
    present = text.ne("")
    out = _empty_like(raw)
    if present.any():
        numbers = _floats(text[present])
        good = numbers[numbers.notna() & numbers.abs().lt(float("inf"))]
        out.loc[good.index] = _float_text(good)
    return Cast(out, present & out.isna())


def cast_string(raw: pd.Series) -> Cast:
    text = raw.astype(str)
    present = text.str.strip().ne("")
    out = _empty_like(raw)
    out.loc[present] = text[present].tolist()
    return Cast(out, pd.Series(False, index=raw.index))


def _parse_instant(value: str) -> dt.datetime | None:
    """An ISO-8601 date/time (naive = UTC) or else epoch seconds, as an aware UTC datetime; None if neither."""
    value = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        try:
            return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
        except (ValueError, OverflowError, OSError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def format_iso(instant: dt.datetime) -> str:
    """The ISO-8601 form Feature Store accepts for String event times (UTC, ``Z``, milliseconds)."""
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def cast_event_time(raw: pd.Series, feature_type: str) -> Cast:
    """Event times as Feature Store wants them: ISO-8601 UTC for String, epoch seconds for Fractional."""
    text = raw.astype(str).str.strip()
    present = text.ne("")
    out = _empty_like(raw)
    if feature_type == "String":
        ready = present & text.str.match(_ISO_EVENT_TIME).fillna(False).astype(bool)
        out.loc[ready] = text[ready].tolist()
        todo = present & ~ready
        convert: Callable[[dt.datetime], str] = format_iso
    else:
        numbers = _floats(text)
        ready = present & numbers.notna() & numbers.abs().lt(float("inf"))
        out.loc[ready] = _float_text(numbers[ready])
        todo = present & ~ready
        convert = lambda instant: repr(instant.timestamp())  # noqa: E731
    for index, value in text[todo].items():
        instant = _parse_instant(value)
        if instant is not None:
            out.at[index] = convert(instant)
    return Cast(out, present & out.isna())


CASTS = {"Integral": cast_integral, "Fractional": cast_fractional, "String": cast_string}


def one_hot(raw: pd.Series, categories: dict[str, str], schema: Schema) -> tuple[dict[str, Cast], pd.Series]:
    """One Cast per category feature (1 where the row has that value, else 0), and the rows whose value
    is not a category. An empty cell leaves every category feature out of the record."""
    text = raw.astype(str)
    keys = text.map({value: normalise(value) for value in text.unique()})
    present = keys.ne("")
    unknown = present & ~keys.isin(list(categories))
    casts = {}
    for key, feature in categories.items():
        one, zero = ("1.0", "0.0") if schema.types[feature] == "Fractional" else ("1", "0")
        values = keys.eq(key).map({True: one, False: zero}).astype(object)
        values[~present | unknown] = None
        casts[feature] = Cast(values, pd.Series(False, index=raw.index))
    return casts, unknown


# --------------------------------------------------------------------------------------------------
# Record identifiers and event times that are not in the file
# --------------------------------------------------------------------------------------------------


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


def derived_record_ids(source: str, row_numbers: pd.Series, feature_type: str) -> pd.Series:
    """Stable across re-runs, unique across files: ``<source>#<row>`` (String) or a 63-bit hash of it."""
    text = source + "#" + row_numbers.astype(str)
    if feature_type == "String":
        return text.astype(object)
    return text.map(
        lambda value: str(int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big") >> 1)
    ).astype(object)


def ingestion_time(feature_type: str, now: dt.datetime | None = None) -> str:
    instant = now or dt.datetime.now(dt.timezone.utc)
    return format_iso(instant) if feature_type == "String" else repr(round(instant.timestamp(), 3))


# --------------------------------------------------------------------------------------------------
# Transformation of one chunk
# --------------------------------------------------------------------------------------------------


@dataclass
class Transformed:
    records: list[tuple[int, Record]]  # (row number, record)
    failures: list[tuple[int, str]]  # (row number, reason)


def transform_chunk(
    chunk: pd.DataFrame,
    plan: ColumnPlan,
    schema: Schema,
    *,
    source: str,
    first_row: int,
    event_time_now: str,
) -> Transformed:
    """Cast one chunk (normalised column names, string cells) into Feature Store records."""
    chunk = chunk.reset_index(drop=True)
    row_numbers = pd.Series(range(first_row, first_row + len(chunk)), index=chunk.index)
    casts: dict[str, Cast] = {}
    reasons = pd.Series([None] * len(chunk), index=chunk.index, dtype=object)

    def blame(mask: pd.Series, column: str, what: str) -> None:
        fresh = mask & reasons.isna()
        if fresh.any():
            reasons.loc[fresh] = [f"column {column!r}: {what} {value!r}" for value in chunk.loc[fresh, column]]

    for column, feature in plan.passthrough.items():
        if feature == schema.event_time:
            cast = cast_event_time(chunk[column], schema.types[feature])
            blame(cast.invalid, column, f"not an event time ({schema.types[feature]}):")
        else:
            cast = CASTS[schema.types[feature]](chunk[column])
            blame(cast.invalid, column, f"cannot cast to {schema.types[feature]}:")
        casts[feature] = cast
    for column, categories in plan.one_hot.items():
        encoded, unknown = one_hot(chunk[column], categories, schema)
        casts.update(encoded)
        blame(unknown, column, "no one-hot feature for value")

    if schema.record_identifier not in casts:
        ids = derived_record_ids(source, row_numbers, schema.types[schema.record_identifier])
        casts[schema.record_identifier] = Cast(ids, pd.Series(False, index=chunk.index))
    if schema.event_time not in casts:
        now = pd.Series([event_time_now] * len(chunk), index=chunk.index, dtype=object)
        casts[schema.event_time] = Cast(now, pd.Series(False, index=chunk.index))
    for feature in (schema.record_identifier, schema.event_time):
        missing = casts[feature].values.isna() & reasons.isna()
        reasons[missing] = f"feature {feature!r} is empty"

    names = list(casts)
    columns = [casts[name].values.tolist() for name in names]
    failed = reasons.notna().tolist()
    result = Transformed(records=[], failures=[])
    for position, values in enumerate(zip(*columns)):
        row = first_row + position
        if failed[position]:
            result.failures.append((row, reasons.iat[position]))
            continue
        record = [
            {"FeatureName": name, "ValueAsString": value}
            for name, value in zip(names, values)
            if value is not None
        ]
        result.records.append((row, record))
    return result


# --------------------------------------------------------------------------------------------------
# Writing to the Feature Store runtime
# --------------------------------------------------------------------------------------------------


def supports_batch_write(runtime_client) -> bool:
    """True when the installed botocore knows the BatchWriteRecord operation."""
    return "BatchWriteRecord" in runtime_client.meta.service_model.operation_names


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code", "ClientError")
    return type(error).__name__


class FeatureStoreWriter:
    """Writes records from a thread pool; returns what could not be written, with the reason.

    botocore's adaptive retry mode retries throttled and failed calls and slows the client down; on top
    of that every batch retries its failed or unprocessed entries (and whole calls that still failed
    with a retryable error) with exponential backoff and full jitter, so throttling loses no rows.
    """

    def __init__(
        self,
        client,
        feature_group_name: str,
        *,
        max_workers: int,
        use_batch_write: bool,
        max_attempts: int = 8,
        base_delay: float | None = None,
        max_delay: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.feature_group_name = feature_group_name
        self.max_workers = max_workers
        self.use_batch_write = use_batch_write
        self.max_attempts = max_attempts
        self.base_delay = RETRY_BASE_DELAY if base_delay is None else base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def api(self) -> str:
        return "BatchWriteRecord" if self.use_batch_write else "PutRecord"

    def write(self, items: Sequence[tuple[RowKey, Record]]) -> list[tuple[RowKey, str]]:
        """Write every record; return (row key, reason) for those that could not be written."""
        size = BATCH_WRITE_MAX_ENTRIES
        batches = [items[start:start + size] for start in range(0, len(items), size)]
        task = self._write_batch if self.use_batch_write else self._put_each
        failures: list[tuple[RowKey, str]] = []
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="ingest") as pool:
            for result in pool.map(task, batches):
                failures.extend(result)
        return failures

    def _backoff(self, attempt: int) -> None:
        self.sleep(random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt)))  # noqa: S311

    def _count_call(self) -> None:
        with self._lock:
            self.calls += 1

    def _put_each(self, items: Sequence[tuple[RowKey, Record]]) -> list[tuple[RowKey, str]]:
        failures = []
        for key, record in items:
            reason = self._put_one(record)
            if reason:
                failures.append((key, reason))
        return failures

    def _put_one(self, record: Record) -> str | None:
        reason = ""
        for attempt in range(self.max_attempts):
            if attempt:
                self._backoff(attempt)
            try:
                self._count_call()
                self.client.put_record(FeatureGroupName=self.feature_group_name, Record=record)
                return None
            except (ClientError, BotoCoreError) as error:
                code = _error_code(error)
                reason = f"{code}: {error}"
                if isinstance(error, ClientError) and code not in RETRYABLE_CODES:
                    return reason
        return f"not written after {self.max_attempts} attempts: {reason}"

    def _write_batch(self, items: Sequence[tuple[RowKey, Record]]) -> list[tuple[RowKey, str]]:
        pending = list(items)
        failures: list[tuple[RowKey, str]] = []
        reason = ""
        for attempt in range(self.max_attempts):
            if attempt:
                self._backoff(attempt)
            entries = [{"FeatureGroupName": self.feature_group_name, "Record": rec} for _, rec in pending]
            try:
                self._count_call()
                response = self.client.batch_write_record(Entries=entries)
            except (ClientError, BotoCoreError) as error:
                code = _error_code(error)
                reason = f"{code}: {error}"
                if isinstance(error, ClientError) and code not in RETRYABLE_CODES:
                    # A batch rejected as a whole: write its records one by one to find the bad ones.
                    return failures + self._put_each(pending)
                continue
            retry, failed = self._sort_out(pending, response)
            failures.extend(failed)
            if not retry:
                return failures
            reason = f"{len(retry)} entries throttled or unprocessed"
            pending = retry
        return failures + [(key, f"not written after {self.max_attempts} attempts: {reason}")
                           for key, _ in pending]

    @staticmethod
    def _sort_out(pending, response) -> tuple[list, list[tuple[RowKey, str]]]:
        """Split a BatchWriteRecord response into entries to retry and entries that failed for good."""
        errors = response.get("Errors") or []
        unprocessed = response.get("UnprocessedEntries") or []
        if not errors and not unprocessed:
            return [], []
        by_record: dict[str, list] = {}
        for item in pending:
            by_record.setdefault(json.dumps(item[1], sort_keys=True), []).append(item)

        def take(entry: dict):
            matches = by_record.get(json.dumps(entry.get("Record"), sort_keys=True))
            return matches.pop() if matches else None

        retry, failed = [], []
        for error in errors:
            item = take(error.get("Entry", {}))
            if item is None:  # cannot tell which row it was: retry the batch (writes are idempotent)
                return list(pending), []
            if error.get("ErrorCode") in RETRYABLE_CODES:
                retry.append(item)
            else:
                failed.append((item[0], f"{error.get('ErrorCode')}: {error.get('ErrorMessage')}"))
        for entry in unprocessed:
            item = take(entry)
            if item is None:
                return list(pending), []
            retry.append(item)
        return retry, failed


# --------------------------------------------------------------------------------------------------
# Inputs: which files, from where
# --------------------------------------------------------------------------------------------------

# Where SageMaker Processing describes the running job inside the container ("How Amazon SageMaker
# Processing Configures Your Processing Container", in "Build Your Own Processing Container (Advanced
# Scenario)", SageMaker developer guide): the job's configuration (its ProcessingInputs with their resolved
# S3Uri and LocalPath) and the cluster (current_host, hosts).
JOB_CONFIG = Path("/opt/ml/config/processingjobconfig.json")
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")
# The first 1 KB of this file becomes the job's ExitMessage (DescribeProcessingJob), "Save and Access
# Metadata Information About Your Processing Job" (byoc-metadata), SageMaker developer guide.
EXIT_MESSAGE = Path("/opt/ml/output/message")
EXIT_MESSAGE_MAX_BYTES = 1024
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
            code = _error_code(error)
            hint = {"NoSuchKey": "it does not exist (deleted since?)",
                    "AccessDenied": "access denied: the pipeline's execution role needs s3:GetObject on it"}
            raise FileError(f"cannot read {url}: {hint.get(code, f'{code}: {error}')}") from error
        except (BotoCoreError, OSError) as error:  # a broken stream: start the object again
            if attempt == attempts:
                raise FileError(f"cannot read {url} after {attempts} attempts: {error}") from error
            LOG.warning("reading %s failed (%s); attempt %d of %d", url, error, attempt + 1, attempts)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


@dataclass
class Summary:
    files: int = 0
    files_failed: int = 0
    rows: int = 0
    written: int = 0
    failed: int = 0
    write_calls: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        rate = self.written / self.seconds if self.seconds else 0.0
        return {**self.__dict__, "seconds": round(self.seconds, 3), "rows_per_second": round(rate, 1)}


class FailedRows:
    """Appends the rows that were not written to ``<failed-rows-dir>/<file's relative path>``:
    the original columns plus the data row number and the reason."""

    def __init__(self, failed_dir: Path) -> None:
        self.failed_dir = failed_dir

    def path_for(self, relative: str) -> Path:
        return self.failed_dir / relative

    def add(self, relative: str, raw: pd.DataFrame, failures: Iterable[tuple[int, str]], first_row: int):
        failures = sorted(failures)
        if not failures:
            return
        positions = [row - first_row for row, _ in failures]
        rows = raw.iloc[positions].copy()
        rows[FAILED_ROW_NUMBER] = [row for row, _ in failures]
        rows[FAILURE_REASON] = [reason for _, reason in failures]
        target = self.path_for(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(target, mode="a", header=not target.exists(), index=False)

    def copy_file(self, relative: str, path: Path) -> None:
        target = self.path_for(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


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


def read_chunks(path: Path) -> Iterable[pd.DataFrame]:
    # Every cell as text, empty stays empty ("NA" is not missing data here); index_col=False keeps a
    # trailing delimiter from turning the first column into the index.
    return pd.read_csv(
        path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig",
        index_col=False, chunksize=CHUNK_ROWS,
    )


def ingest_file(
    item: InputFile,
    schema: Schema,
    writer: FeatureStoreWriter,
    failed_rows: FailedRows,
    summary: Summary,
) -> None:
    """Ingest one file. A file that cannot be ingested at all raises FileError (or a pandas ValueError)."""
    relative, source = item.relative, item.source
    event_time_now = ingestion_time(schema.types[schema.event_time])
    plan: ColumnPlan | None = None
    first_row = 1
    if item.named:
        check_csv_text(item.path)
    try:
        chunks = read_chunks(item.path)
        for raw in chunks:
            raw = raw.fillna("")  # short rows: their missing cells are empty, not NaN
            columns = [normalise(column) for column in raw.columns]
            chunk = raw.set_axis(columns, axis=1)
            if plan is None:
                duplicates = sorted({c for c in columns if columns.count(c) > 1})
                if duplicates:
                    raise FileError(f"columns normalise to the same name: {', '.join(duplicates)}")
                plan = plan_columns(columns, chunk, schema)
                if not plan.passthrough and not plan.one_hot:  # a file meant for another feature group
                    raise FileError(f"none of its columns ({', '.join(columns)[:300]}) is a feature of {schema.name}")
                if plan.dropped:
                    LOG.warning("%s: columns that are not features of %s are dropped: %s",
                                relative, schema.name, ", ".join(plan.dropped))
                LOG.info("%s: features %s, one-hot %s", relative, sorted(plan.passthrough.values()),
                         {column: sorted(cats.values()) for column, cats in plan.one_hot.items()})
            transformed = transform_chunk(
                chunk, plan, schema, source=source, first_row=first_row, event_time_now=event_time_now
            )
            items = [((relative, row), record) for row, record in transformed.records]
            not_written = writer.write(items)
            failures = transformed.failures + [(row, reason) for (_, row), reason in not_written]
            failed_rows.add(relative, raw, failures, first_row)
            summary.rows += len(raw)
            summary.failed += len(failures)
            summary.written += len(items) - len(not_written)
            for row, reason in failures[:5]:
                LOG.error("%s row %d not written: %s", relative, row, reason)
            if len(failures) > 5:
                LOG.error("%s: %d more rows not written (see %s)", relative, len(failures) - 5,
                          failed_rows.path_for(relative))
            first_row += len(raw)
    except pd.errors.EmptyDataError as error:
        if item.named:
            raise FileError("the file has no header row: a CSV file with a header row is expected") from error
        LOG.warning("%s is empty: nothing to ingest", relative)
        return
    except UnicodeDecodeError as error:
        raise FileError(f"the file is not UTF-8 text ({error.reason} at byte {error.start}): "
                        "a CSV file is expected") from error
    except pd.errors.ParserError as error:
        raise FileError(f"the file does not parse as CSV: {' '.join(str(error).split())}") from error
    if plan is None:
        LOG.warning("%s has a header row but no data rows: nothing to ingest", relative)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

EXIT_OK = 0  # every row of every selected file was written
EXIT_NOT_ALL_INGESTED = 1  # some rows, or whole files (not CSV, unreadable), were not ingested
EXIT_CANNOT_START = 2  # nothing was attempted: arguments, feature group, input or manifest unusable


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"),
                        help="where SageMaker put the input object; searched recursively for *.csv files when "
                        "the input is a prefix")
    parser.add_argument("--feature-group-name", required=True, help="feature group to ingest into")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                        help="AWS region of the feature group (default: AWS_REGION / AWS_DEFAULT_REGION)")
    parser.add_argument("--max-workers", type=int, default=16, help="concurrent write calls (default 16)")
    parser.add_argument("--failed-rows-dir", type=Path, default=Path("/opt/ml/processing/failed-rows"),
                        help="where rows that could not be cast or written are written, one CSV per input")
    parser.add_argument("--source-uri", default=None,
                        help="the S3 URL the input dir's files came from (default: the job's input, read from "
                        "--job-config). An object URL (s3://bucket/key): exactly that object is ingested and "
                        "must be a CSV file with a header row; a prefix (ending with /): every *.csv file. "
                        "Record identifiers derive from it")
    parser.add_argument("--manifest-dir", type=Path, default=None,
                        help="manifest path: the directory where SageMaker put the input manifest (a SageMaker "
                        "ManifestFile JSON document); the objects it lists are read from S3 by this script, "
                        "shared among the job's instances, and --input-dir is not used")
    parser.add_argument("--download-dir", type=Path, default=None,
                        help="manifest path: where each listed object is downloaded while it is ingested "
                        "(default: a temporary directory)")
    parser.add_argument("--job-config", type=Path, default=JOB_CONFIG,
                        help=f"the processing job's configuration (default {JOB_CONFIG}); absent outside SageMaker")
    parser.add_argument("--resource-config", type=Path, default=RESOURCE_CONFIG,
                        help=f"the job's hosts (default {RESOURCE_CONFIG}); absent: one host")
    parser.add_argument("--exit-message-file", type=Path, default=None,
                        help=f"where the one-line outcome of a failed job is written (default {EXIT_MESSAGE} "
                        "when its directory exists: SageMaker shows it as the job's ExitMessage)")
    parser.add_argument("--write-api", choices=("auto", "BatchWriteRecord", "PutRecord"), default="auto",
                        help="auto: BatchWriteRecord when the installed botocore has it, else PutRecord")
    args = parser.parse_args(argv)
    if args.max_workers < 1:
        parser.error("--max-workers must be at least 1")
    if not args.region:
        parser.error("--region is required when AWS_REGION and AWS_DEFAULT_REGION are not set")
    return args


def retry_config() -> dict | None:
    """Adaptive retries (client-side rate limiting after throttles), unless AWS_RETRY_MODE or
    AWS_MAX_ATTEMPTS say otherwise: botocore reads those when the code sets nothing."""
    if os.environ.get("AWS_RETRY_MODE") or os.environ.get("AWS_MAX_ATTEMPTS"):
        return None
    return {"mode": "adaptive", "max_attempts": 10}


def _ingest_or_set_aside(item: InputFile, schema: Schema, writer: FeatureStoreWriter, failed_rows: FailedRows,
                         summary: Summary) -> None:
    summary.files += 1
    try:
        ingest_file(item, schema, writer, failed_rows, summary)
    except (FileError, ValueError, UnicodeDecodeError) as error:  # pandas raises ValueError subclasses
        summary.files_failed += 1
        if item.named:  # it is in S3 under its URL: no copy
            LOG.error("%s was not ingested: %s", item.source, error)
        else:
            LOG.error("%s was not ingested: %s (copied to %s)", item.relative, error,
                      failed_rows.path_for(item.relative))
            failed_rows.copy_file(item.relative, item.path)


def run(args: argparse.Namespace) -> Summary:
    started = time.monotonic()
    # What to ingest is settled first: a wrong input fails before any call to AWS.
    if args.manifest_dir is not None:
        manifest_name, urls = read_manifest(args.manifest_dir, args.job_config)
        current, hosts = cluster(args.resource_config)
        urls = my_share(urls, current, hosts)
        LOG.info("input manifest %s: %d object(s) for host %s of %d", manifest_name, len(urls), current, len(hosts))
        files: list[InputFile] = []
    else:
        source_uri = args.source_uri or input_uri_from_job_config(args.job_config, args.input_dir)
        files, urls = select_input_files(args.input_dir, source_uri), []
        if not files:
            LOG.warning("no *.csv files under %s: nothing to ingest", args.input_dir)

    session = boto3.session.Session(region_name=args.region)
    retries = retry_config()
    sagemaker = session.client("sagemaker", config=Config(retries=retries))
    schema = describe_schema(sagemaker, args.feature_group_name)
    runtime = session.client("sagemaker-featurestore-runtime", config=Config(
        retries=retries, max_pool_connections=max(10, args.max_workers),
        # Half of botocore's CPU per call is checking 25 x features nested parameters against the model;
        # the records are built from the group's own definition and the service validates them anyway.
        parameter_validation=False))
    use_batch = supports_batch_write(runtime) if args.write_api == "auto" else args.write_api == "BatchWriteRecord"
    writer = FeatureStoreWriter(runtime, args.feature_group_name, max_workers=args.max_workers,
                                use_batch_write=use_batch)
    failed_rows = FailedRows(args.failed_rows_dir)
    summary = Summary()
    LOG.info("ingesting %d file(s) into %s with %s", len(files) + len(urls), schema.name, writer.api)
    for item in files:
        _ingest_or_set_aside(item, schema, writer, failed_rows, summary)
    if urls:
        s3 = session.client("s3", config=Config(retries=retries))
        with tempfile.TemporaryDirectory(dir=_existing_dir(args.download_dir)) as scratch:
            for url in urls:
                try:
                    path = download(s3, url, Path(scratch))
                except FileError as error:
                    summary.files += 1
                    summary.files_failed += 1
                    LOG.error("%s was not ingested: %s", url, error)
                    continue
                try:
                    _ingest_or_set_aside(InputFile(path, failed_rows_name(url), url, named=True), schema, writer,
                                         failed_rows, summary)
                finally:
                    path.unlink()
    summary.write_calls = writer.calls
    summary.seconds = time.monotonic() - started
    return summary


def _existing_dir(directory: Path | None) -> str | None:
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    return str(directory)


def write_exit_message(args: argparse.Namespace, message: str) -> None:
    """Best effort: the first 1 KB of the message, UTF-8 (SageMaker fails a job whose message is not UTF-8)."""
    path = args.exit_message_file
    if path is None:
        if not EXIT_MESSAGE.parent.is_dir():  # not in a SageMaker container
            return
        path = EXIT_MESSAGE
    data = message.encode("utf-8")[:EXIT_MESSAGE_MAX_BYTES].decode("utf-8", errors="ignore")
    try:
        path.write_text(data, encoding="utf-8")
    except OSError as error:
        LOG.warning("cannot write the exit message to %s: %s", path, error)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        summary = run(args)
    except JobError as error:
        LOG.error("%s", error)
        write_exit_message(args, f"not started: {error}")
        return EXIT_CANNOT_START
    LOG.info("summary %s", json.dumps(summary.as_dict(), sort_keys=True))
    if summary.failed or summary.files_failed:
        message = (f"{summary.failed} row(s) and {summary.files_failed} file(s) were not ingested into "
                   f"{args.feature_group_name}; the log names each, failed rows are in {args.failed_rows_dir}")
        LOG.error("%s", message)
        write_exit_message(args, message)
        return EXIT_NOT_ALL_INGESTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
