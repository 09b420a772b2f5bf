"""The Feature Store side: the feature group's definition, and writing records into the group.

Rows are written with BatchWriteRecord when the installed botocore has it (PutRecord otherwise), from a
thread pool, with botocore's adaptive retries plus a retry of the failed entries of every batch. What could
not be written comes back with the reason; nothing is dropped silently. The clients honour
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` (boto3 does that natively).

Runs in the SageMaker scikit-learn image: boto3 and Python 3.9+ only.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from errors import JobError

BATCH_WRITE_MAX_ENTRIES = 25  # the BatchWriteRecord API limit
# Error codes worth another attempt: throttling and transient service faults.
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "SlowDown",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalServerError",
    "InternalError", "RequestTimeout", "RequestTimeoutException",
})
RETRY_BASE_DELAY = 0.25  # seconds; backoff of the entries retried after a BatchWriteRecord call

Record = list[dict[str, str]]  # PutRecord's Record: [{"FeatureName": ..., "ValueAsString": ...}, ...]
RowKey = tuple[str, int]  # (file path relative to the input dir, 1-based data row number)


def retry_config() -> dict | None:
    """Adaptive retries (client-side rate limiting after throttles), unless AWS_RETRY_MODE or
    AWS_MAX_ATTEMPTS say otherwise: botocore reads those when the code sets nothing."""
    if os.environ.get("AWS_RETRY_MODE") or os.environ.get("AWS_MAX_ATTEMPTS"):
        return None
    return {"mode": "adaptive", "max_attempts": 10}


def describe_feature_group(session: boto3.session.Session, feature_group_name: str) -> dict:
    """The DescribeFeatureGroup response of the group; JobError when it cannot be had."""
    client = session.client("sagemaker", config=Config(retries=retry_config()))
    try:
        return client.describe_feature_group(FeatureGroupName=feature_group_name)
    except (ClientError, BotoCoreError) as error:
        raise JobError(f"cannot describe feature group {feature_group_name!r}: {error}") from error


def runtime_client(session: boto3.session.Session, max_workers: int):
    """A Feature Store runtime client for ``max_workers`` threads."""
    return session.client("sagemaker-featurestore-runtime", config=Config(
        retries=retry_config(), max_pool_connections=max(10, max_workers),
        # Half of botocore's CPU per call is checking 25 x features nested parameters against the model;
        # the records are built from the group's own definition and the service validates them anyway.
        parameter_validation=False))


def supports_batch_write(runtime) -> bool:
    """True when the installed botocore knows the BatchWriteRecord operation."""
    return "BatchWriteRecord" in runtime.meta.service_model.operation_names


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
