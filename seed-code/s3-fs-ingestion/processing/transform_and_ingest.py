#!/usr/bin/env python3
"""Transform CSV files and ingest their rows into a SageMaker Feature Store feature group.

This file runs on its own inside the SageMaker Processing container (scikit-learn image): it needs
pandas and boto3 only, and stays compatible with Python 3.9 and pandas 1.1+.

It is driven by the feature group's definition (DescribeFeatureGroup), not by per-dataset code:

* column names are normalised (lowercase; runs of non-alphanumerics become ``_``, trimmed);
* a column that is a feature passes through; a column ``c`` whose values appear as features
  ``c_<value>`` is one-hot encoded (1/0 in the features' type); other columns are dropped (one warning);
* a missing record identifier is derived from the source (``--source-uri`` joined with the file's
  path below ``--input-dir``) and the row number: stable across re-runs, unique across files;
* a missing event time is the ingestion time, in the format the event time feature's type demands;
* values are cast to the feature types; rows that cannot be cast or written are written to a file in
  ``--failed-rows-dir`` and counted, the other rows are still ingested, and the exit status is 1.

No scaling happens here: features from different files stay comparable.

Rows are written with BatchWriteRecord when the installed botocore has it (PutRecord otherwise), from
a thread pool, with botocore's adaptive retries plus a retry of the failed entries of every batch.
The clients honour ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` (boto3 does that natively).

Exit status: 0 every row was written; 1 some rows or files were not written; 2 the job could not
start (no such feature group, no input directory, unusable arguments).
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
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

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
    again, ``s3://b/in/`` with key ``in/x/batch.csv`` arrives as ``x/batch.csv``.
    """
    relative = path.relative_to(input_dir).as_posix()
    if not source_uri:
        return relative
    parsed = urlparse(source_uri)
    if parsed.scheme and parsed.netloc:
        directory = parsed.path[: parsed.path.rfind("/") + 1] or "/"
        return f"{parsed.scheme}://{parsed.netloc}{directory}{relative}"
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
# Files
# --------------------------------------------------------------------------------------------------


def find_csv_files(input_dir: Path) -> list[Path]:
    return sorted(path for path in input_dir.rglob("*") if path.is_file() and path.suffix.lower() == ".csv")


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


def read_chunks(path: Path) -> Iterable[pd.DataFrame]:
    # Every cell as text, empty stays empty ("NA" is not missing data here); index_col=False keeps a
    # trailing delimiter from turning the first column into the index.
    return pd.read_csv(
        path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig",
        index_col=False, chunksize=CHUNK_ROWS,
    )


def ingest_file(
    path: Path,
    input_dir: Path,
    schema: Schema,
    writer: FeatureStoreWriter,
    failed_rows: FailedRows,
    summary: Summary,
    source_uri: str | None,
) -> None:
    relative = path.relative_to(input_dir).as_posix()
    source = source_name(path, input_dir, source_uri)
    event_time_now = ingestion_time(schema.types[schema.event_time])
    plan: ColumnPlan | None = None
    first_row = 1
    try:
        chunks = read_chunks(path)
    except pd.errors.EmptyDataError:
        LOG.warning("%s is empty: nothing to ingest", relative)
        return
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
                raise FileError(f"none of its columns ({', '.join(columns)}) is a feature of {schema.name}")
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


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"),
                        help="directory searched recursively for *.csv files with a header row")
    parser.add_argument("--feature-group-name", required=True, help="feature group to ingest into")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                        help="AWS region of the feature group (default: AWS_REGION / AWS_DEFAULT_REGION)")
    parser.add_argument("--max-workers", type=int, default=16, help="concurrent write calls (default 16)")
    parser.add_argument("--failed-rows-dir", type=Path, default=Path("/opt/ml/processing/failed-rows"),
                        help="where rows that could not be cast or written are written, one CSV per input")
    parser.add_argument("--source-uri", default=None,
                        help="where the input dir's files came from (the pipeline passes InputDataUrl); "
                        "used to derive record identifiers that are unique across uploads")
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


def run(args: argparse.Namespace) -> Summary:
    started = time.monotonic()
    if not args.input_dir.is_dir():
        raise JobError(f"input directory {args.input_dir} does not exist")
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
    files = find_csv_files(args.input_dir)
    LOG.info("ingesting %d CSV file(s) from %s into %s with %s", len(files), args.input_dir, schema.name,
             writer.api)
    if not files:
        LOG.warning("no *.csv files under %s: nothing to ingest", args.input_dir)
    for path in files:
        summary.files += 1
        try:
            ingest_file(path, args.input_dir, schema, writer, failed_rows, summary, args.source_uri)
        except (FileError, ValueError, UnicodeDecodeError) as error:  # pandas raises ValueError subclasses
            relative = path.relative_to(args.input_dir).as_posix()
            LOG.error("%s was not ingested: %s (copied to %s)", relative, error, failed_rows.path_for(relative))
            failed_rows.copy_file(relative, path)
            summary.files_failed += 1
    summary.write_calls = writer.calls
    summary.seconds = time.monotonic() - started
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        summary = run(args)
    except JobError as error:
        LOG.error("%s", error)
        return 2
    LOG.info("summary %s", json.dumps(summary.as_dict(), sort_keys=True))
    if summary.failed or summary.files_failed:
        LOG.error("%d row(s) and %d file(s) were not ingested into %s; see %s",
                  summary.failed, summary.files_failed, args.feature_group_name, args.failed_rows_dir)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
