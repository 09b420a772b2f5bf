"""The Feature Store side: the feature group's definition, and writing records into the group.

Rows are written with BatchWriteRecord (25 entries a call) when the installed botocore has it, PutRecord
otherwise, from a pool of threads, under a concurrency control shared by every writer of the job:

* botocore makes **one attempt** per write call (``standard`` mode, ``total_max_attempts=1``): this module is
  the retry loop. botocore's own retries would wait up to a second after each throttle (its standard mode
  backs throttles off with ``rand(0, 1) x 2^i`` seconds, ``botocore/retries/standard.py``), hidden from the
  control below, which is what made a short burst of throttles cost the rest of a job;
* :class:`AIMD` limits the write calls in flight: it halves the limit when a call is throttled (once per
  round trip: a throttle of a call sent before the last decrease does not decrease it again) and adds one
  call per round trip of successes (``1 / limit`` per successful call), so after a burst the limit is back
  at its maximum after ``maximum - minimum`` round trips. The state lives in shared memory when several
  worker processes write (:func:`shared_aimd_state`): all of them back off together and recover together;
* only what was throttled is sent again: a throttled call as a whole, or the entries of a BatchWriteRecord
  response's ``Errors`` (with a throttling or transient code) and ``UnprocessedEntries`` ("These entries can
  be retried", BatchWriteRecord API reference), after a full-jitter exponential backoff ("Exponential Backoff
  And Jitter", AWS Architecture Blog) that holds neither a thread nor a slot of the limit. Entries the
  service refused (``ValidationError``, ...) come back with the reason; a call refused as a whole is split
  into PutRecord calls to find the bad records. Nothing is dropped silently: what could not be written after
  :data:`MAX_ATTEMPTS` attempts comes back with the last reason.

Requests: BatchWriteRecord's body is the JSON of its input (REST-JSON; "BatchWriteRecord", SageMaker Feature
Store Runtime API reference, Request Syntax). The entries arrive here as JSON text
(:meth:`transform.Transformed.entries`) and the body is their concatenation, put in place of botocore's own
serialization by a ``before-call`` hook (:func:`runtime_client`), which halves the client's CPU per call;
botocore still signs, sends, retries nothing and parses the response. The clients honour
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` (boto3 does that natively).

Runs in the SageMaker scikit-learn image: boto3 and Python 3.9+ only.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from errors import JobError

LOG = logging.getLogger("transform_and_ingest.writer")

BATCH_WRITE_MAX_ENTRIES = 25  # the BatchWriteRecord API limit ("Entries": 1 to 25 items)
MAX_ATTEMPTS = 10  # per entry, first attempt included
RETRY_BASE_DELAY = 0.1  # seconds: the backoff before attempt n is uniform(0, min(MAX_RETRY_DELAY, base x 2^(n-2)))
MAX_RETRY_DELAY = 10.0
# Throttling: the codes botocore's standard retry mode treats as throttles (botocore/retries/standard.py,
# ThrottledRetryableChecker), which include the "ThrottlingException" (HTTP 400) of the SageMaker API's common
# errors, and the HTTP statuses of throttling (429) and of an overloaded service (503, the Feature Store
# runtime's "ServiceUnavailable"). Each decreases the concurrency and is retried.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
    "PriorRequestNotComplete", "EC2ThrottledException", "ServiceUnavailable", "ServiceUnavailableException",
})
THROTTLING_STATUSES = frozenset({429, 503})
# Transient faults: retried, without decreasing the concurrency ("InternalFailure" is the runtime's HTTP 500).
TRANSIENT_CODES = frozenset({
    "InternalFailure", "InternalServerError", "InternalError", "InternalFailureException", "RequestTimeout",
    "RequestTimeoutException",
})
TRANSIENT_STATUSES = frozenset({500, 502, 504})

RowKey = int  # the 1-based data row number of the record in its file
Item = tuple[RowKey, str]  # (row, BatchWriteRecordEntry as JSON text)
Failure = tuple[RowKey, str]  # (row, reason)


def retry_config() -> dict | None:
    """The control-plane clients (DescribeFeatureGroup, S3): botocore's standard retries with a few attempts,
    unless AWS_RETRY_MODE or AWS_MAX_ATTEMPTS say otherwise (botocore reads those when the code sets nothing)."""
    if os.environ.get("AWS_RETRY_MODE") or os.environ.get("AWS_MAX_ATTEMPTS"):
        return None
    return {"mode": "standard", "total_max_attempts": 3}


def describe_feature_group(session: boto3.session.Session, feature_group_name: str) -> dict:
    """The DescribeFeatureGroup response of the group; JobError when it cannot be had."""
    client = session.client("sagemaker", config=Config(retries=retry_config()))
    try:
        return client.describe_feature_group(FeatureGroupName=feature_group_name)
    except (ClientError, BotoCoreError) as error:
        raise JobError(f"cannot describe feature group {feature_group_name!r}: {error}") from error


# -- requests ---------------------------------------------------------------------------------------------

_PREPARED = threading.local()  # the body of the BatchWriteRecord call this thread is making


def _use_prepared_body(params: dict, **_: Any) -> None:
    """``before-call``: botocore serialized a placeholder; send the entries' JSON text instead."""
    body = getattr(_PREPARED, "body", None)
    if body is not None:
        params["body"] = body


def runtime_client(session: boto3.session.Session, max_workers: int):
    """A Feature Store runtime client for ``max_workers`` threads; one attempt per call (the writer retries)."""
    client = session.client("sagemaker-featurestore-runtime", config=Config(
        retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=max(10, max_workers),
        # Checking 25 x features nested parameters against the model costs more CPU than the call itself;
        # the records are built from the group's own definition and the service validates them anyway.
        parameter_validation=False))
    event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.BatchWriteRecord"
    client.meta.events.register(event, _use_prepared_body, unique_id="transform-and-ingest-prepared-body")
    return client


def batch_write(client, feature_group_name: str, entries: Sequence[str]) -> dict:
    """BatchWriteRecord of ``entries`` (JSON text of BatchWriteRecordEntry objects, all of the group).

    botocore serializes a one-entry placeholder naming the group (what request hooks and recorders see),
    and the ``before-call`` hook of :func:`runtime_client` swaps in the real body before it is signed."""
    _PREPARED.body = ('{"Entries":[' + ",".join(entries) + "]}").encode("utf-8")
    try:
        return client.batch_write_record(Entries=[{"FeatureGroupName": feature_group_name, "Record": []}])
    finally:
        _PREPARED.body = None


def supports_batch_write(runtime) -> bool:
    """True when the installed botocore knows the BatchWriteRecord operation."""
    return "BatchWriteRecord" in runtime.meta.service_model.operation_names


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code", "ClientError")
    return type(error).__name__


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_throttle(error: ClientError) -> bool:
    return _error_code(error) in THROTTLING_CODES or _status(error) in THROTTLING_STATUSES


def is_transient(error: ClientError) -> bool:
    return _error_code(error) in TRANSIENT_CODES or _status(error) in TRANSIENT_STATUSES


# -- concurrency control ------------------------------------------------------------------------------------


class _LocalState:
    """AIMD state for the writers of one process: [limit, time of the last decrease] and a lock."""

    def __init__(self, limit: float) -> None:
        self.values = [float(limit), float("-inf")]
        self.lock = threading.Lock()


def shared_aimd_state(context, maximum: int) -> tuple[Any, Any]:
    """The AIMD state in shared memory for the worker processes of ``context`` (a multiprocessing context):
    (values, lock) to pass to every process's :class:`AIMD`."""
    return context.RawArray("d", [float(maximum), float("-inf")]), context.Lock()


class AIMD:
    """Additive-increase / multiplicative-decrease limit on the write calls in flight.

    * :meth:`throttled` multiplies the limit by ``decrease`` (down to ``minimum``), once per round trip: only a
      throttled call sent after the last decrease decreases it again, the others were in flight already;
    * :meth:`succeeded` adds ``1 / limit``: one more call per round trip of successes, up to ``maximum``.

    ``state`` is (values, lock) from :func:`shared_aimd_state` when several processes share the limit; the
    clock must then be the system-wide ``time.monotonic`` (CLOCK_MONOTONIC on Linux).
    """

    def __init__(self, maximum: float, minimum: float = 1.0, *, decrease: float = 0.5,
                 state: tuple[Any, Any] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < minimum <= maximum or not 0 < decrease < 1:
            raise ValueError("need 0 < minimum <= maximum and 0 < decrease < 1")
        self.maximum, self.minimum, self.decrease, self.clock = float(maximum), float(minimum), decrease, clock
        if state is None:
            local = _LocalState(maximum)
            state = (local.values, local.lock)
        self._values, self._lock = state

    @property
    def limit(self) -> float:
        return float(self._values[0])

    def succeeded(self) -> None:
        with self._lock:
            limit = self._values[0]
            if limit < self.maximum:
                self._values[0] = min(self.maximum, limit + 1.0 / limit)

    def throttled(self, sent_at: float) -> bool:
        """A call sent at ``sent_at`` (this clock) was throttled; True when that decreased the limit."""
        with self._lock:
            if sent_at <= self._values[1]:
                return False
            self._values[0] = max(self.minimum, self._values[0] * self.decrease)
            self._values[1] = self.clock()
            return True


class Gate:
    """The write calls in flight in this process: at most ``share`` of the AIMD limit (at least one)."""

    def __init__(self, aimd: AIMD, share: float = 1.0) -> None:
        self.aimd, self.share = aimd, share
        self.in_flight = 0
        self._cond = threading.Condition()

    def allowed(self) -> int:
        return max(1, int(self.aimd.limit * self.share + 1e-9))

    def acquire(self) -> float:
        """Wait for a slot; returns when the call is sent (the AIMD clock)."""
        with self._cond:
            while self.in_flight >= self.allowed():
                self._cond.wait(0.05)  # another process's successes raise the limit without notifying here
            self.in_flight += 1
        return self.aimd.clock()

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify(max(1, self.allowed() - self.in_flight))


# -- the writer ---------------------------------------------------------------------------------------------


@dataclass
class Written:
    """What became of the items of one :meth:`FeatureStoreWriter.submit` call."""

    failures: list[Failure] = field(default_factory=list)  # (row, reason) of the items not written
    written: int = 0
    calls: int = 0  # write calls made for them, retries included
    throttles: int = 0  # of which throttled (as a whole, or some entries)


@dataclass
class _Task:
    """The items of one submit() call, until every one of them is written or failed."""

    remaining: int
    on_done: Callable[[Written], None]
    report: Written = field(default_factory=Written)


@dataclass
class _Batch:
    task: _Task
    items: list[Item]
    api: str  # "batch" (BatchWriteRecord) or "put" (PutRecord, one item)
    attempt: int = 1


@dataclass
class _Outcome:
    written: int = 0
    retry: list[Item] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    split: list[Item] = field(default_factory=list)  # a call refused as a whole: PutRecord each
    throttled: bool = False
    reason: str = ""


class _DelayQueue:
    """Batches ordered by the time they are due: new ones now, retries after their backoff."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._heap: list[tuple[float, int, _Batch | None]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._clock = clock

    def put(self, batch: _Batch | None, delay: float = 0.0) -> None:
        with self._cond:
            heapq.heappush(self._heap, (self._clock() + delay, next(self._counter), batch))
            self._cond.notify()

    def get(self) -> _Batch | None:
        with self._cond:
            while True:
                if self._heap:
                    wait = self._heap[0][0] - self._clock()
                    if wait <= 0:
                        return heapq.heappop(self._heap)[2]
                    self._cond.wait(wait)
                else:
                    self._cond.wait()


class FeatureStoreWriter:
    """Writes JSON entries from up to ``max_workers`` threads, under ``gate``; reports per submitted group of
    items what could not be written, with the reason. Threads start on demand; :meth:`close` ends them."""

    def __init__(
        self,
        client,
        feature_group_name: str,
        *,
        max_workers: int,
        use_batch_write: bool,
        gate: Gate | None = None,
        max_attempts: int | None = None,
        base_delay: float | None = None,
        max_delay: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.feature_group_name = feature_group_name
        self.max_workers = max_workers
        self.use_batch_write = use_batch_write
        self.gate = gate or Gate(AIMD(max_workers))
        self.max_attempts = MAX_ATTEMPTS if max_attempts is None else max_attempts
        self.base_delay = RETRY_BASE_DELAY if base_delay is None else base_delay
        self.max_delay = MAX_RETRY_DELAY if max_delay is None else max_delay
        self.calls = 0
        self.throttles = 0
        self._queue = _DelayQueue(clock)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._open_tasks = 0
        self._all_done = threading.Condition(self._lock)

    @property
    def api(self) -> str:
        return "BatchWriteRecord" if self.use_batch_write else "PutRecord"

    def submit(self, items: Sequence[Item], on_done: Callable[[Written], None]) -> None:
        """Write ``items``; ``on_done`` is called once with what became of them, from a writer thread (from
        here when there is nothing to write)."""
        if not items:
            on_done(Written())
            return
        task = _Task(remaining=len(items), on_done=on_done)
        with self._lock:
            self._open_tasks += 1
        size = BATCH_WRITE_MAX_ENTRIES if self.use_batch_write else 1
        api = "batch" if self.use_batch_write else "put"
        for start in range(0, len(items), size):
            self._enqueue(_Batch(task, list(items[start:start + size]), api))

    def write(self, items: Sequence[Item]) -> list[Failure]:
        """Write ``items`` and wait: (row, reason) of those that could not be written."""
        result: list[Written] = []
        done = threading.Event()

        def finished(written: Written) -> None:
            result.append(written)
            done.set()

        self.submit(items, finished)
        done.wait()
        return result[0].failures

    def close(self) -> None:
        """Wait until everything submitted is written or failed; end the threads."""
        with self._lock:
            while self._open_tasks:
                self._all_done.wait()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    # -- internals --------------------------------------------------------------------------------------

    def _enqueue(self, batch: _Batch, delay: float = 0.0) -> None:
        if not self._threads:  # started with the first batch, ended by close()
            with self._lock:
                while len(self._threads) < self.max_workers:
                    thread = threading.Thread(target=self._run, name=f"ingest-{len(self._threads)}", daemon=True)
                    self._threads.append(thread)
                    thread.start()
        self._queue.put(batch, delay)

    def _backoff(self, attempt: int) -> float:
        """Full jitter before attempt ``attempt`` (2, 3, ...)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 2)))  # noqa: S311

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            sent_at = self.gate.acquire()
            try:
                outcome = self._send(batch)
            except Exception as error:  # noqa: BLE001 - a bug must not lose rows: they fail with the reason
                outcome = _Outcome(failed=[(row, f"unexpected error: {error!r}") for row, _ in batch.items])
            finally:
                self.gate.release()
            if outcome.throttled:
                self.gate.aimd.throttled(sent_at)
            elif not outcome.retry:
                self.gate.aimd.succeeded()
            self._settle(batch, outcome)

    def _settle(self, batch: _Batch, outcome: _Outcome) -> None:
        failed = list(outcome.failed)
        if outcome.retry:
            if batch.attempt >= self.max_attempts:
                failed += [(row, f"not written after {self.max_attempts} attempts: {outcome.reason}")
                           for row, _ in outcome.retry]
            else:
                retry = _Batch(batch.task, outcome.retry, batch.api, batch.attempt + 1)
                self._enqueue(retry, self._backoff(retry.attempt))
        for item in outcome.split:
            self._enqueue(_Batch(batch.task, [item], "put"))
        task, report, finished = batch.task, batch.task.report, False
        with self._lock:
            self.calls += 1
            self.throttles += outcome.throttled
            report.calls += 1
            report.throttles += outcome.throttled
            report.written += outcome.written
            report.failures += failed
            task.remaining -= outcome.written + len(failed)
            if task.remaining == 0:
                finished = True
                self._open_tasks -= 1
                self._all_done.notify_all()
        if finished:
            report.failures.sort()
            try:
                task.on_done(report)
            except Exception:  # noqa: BLE001 - the rows are counted; a broken callback must not stop the thread
                LOG.exception("reporting written rows failed")

    def _send(self, batch: _Batch) -> _Outcome:
        if batch.api == "put":
            return self._put(batch.items[0])
        try:
            response = batch_write(self.client, self.feature_group_name, [entry for _, entry in batch.items])
        except ClientError as error:
            reason = f"{_error_code(error)}: {error}"
            if is_throttle(error):
                return _Outcome(retry=batch.items, throttled=True, reason=reason)
            if is_transient(error):
                return _Outcome(retry=batch.items, reason=reason)
            return _Outcome(split=batch.items)  # refused as a whole: find the bad records one by one
        except BotoCoreError as error:  # connection reset, timeout, ...: send it again (writes are idempotent)
            return _Outcome(retry=batch.items, reason=f"{_error_code(error)}: {error}")
        return sort_out(batch.items, response)

    def _put(self, item: Item) -> _Outcome:
        row, entry = item
        try:
            self.client.put_record(FeatureGroupName=self.feature_group_name, Record=json.loads(entry)["Record"])
        except ClientError as error:
            reason = f"{_error_code(error)}: {error}"
            if is_throttle(error):
                return _Outcome(retry=[item], throttled=True, reason=reason)
            if is_transient(error):
                return _Outcome(retry=[item], reason=reason)
            return _Outcome(failed=[(row, reason)])
        except BotoCoreError as error:
            return _Outcome(retry=[item], reason=f"{_error_code(error)}: {error}")
        return _Outcome(written=1)


def _record_key(record: object) -> tuple:
    values = record if isinstance(record, list) else []
    return tuple(sorted((str(v.get("FeatureName")), str(v.get("ValueAsString"))) for v in values
                        if isinstance(v, dict)))


def sort_out(items: Sequence[Item], response: dict) -> _Outcome:
    """Split a BatchWriteRecord response: written, to retry (throttled, transient, unprocessed), failed."""
    errors = response.get("Errors") or []
    unprocessed = response.get("UnprocessedEntries") or []
    if not errors and not unprocessed:
        return _Outcome(written=len(items))
    by_record: dict[tuple, list[Item]] = {}
    for item in items:
        by_record.setdefault(_record_key(json.loads(item[1]).get("Record")), []).append(item)

    def take(entry: object) -> Item | None:
        matches = by_record.get(_record_key((entry or {}).get("Record") if isinstance(entry, dict) else None))
        return matches.pop() if matches else None

    outcome = _Outcome()
    for error in errors:
        item = take(error.get("Entry"))
        code = str(error.get("ErrorCode"))
        if item is None:  # cannot tell which row it was: send the whole batch again (writes are idempotent)
            return _Outcome(retry=list(items), reason=f"{code}: an error for an entry that was not sent")
        if code in THROTTLING_CODES or code in TRANSIENT_CODES:
            outcome.retry.append(item)
            outcome.throttled |= code in THROTTLING_CODES
            outcome.reason = f"{code}: {error.get('ErrorMessage')}"
        else:
            outcome.failed.append((item[0], f"{code}: {error.get('ErrorMessage')}"))
    for entry in unprocessed:
        item = take(entry)
        if item is None:
            return _Outcome(retry=list(items), reason="an unprocessed entry that was not sent")
        outcome.retry.append(item)
        outcome.throttled = True
        outcome.reason = outcome.reason or "UnprocessedEntries"
    outcome.written = len(items) - len(outcome.retry) - len(outcome.failed)
    return outcome
