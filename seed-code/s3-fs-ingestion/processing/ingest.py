"""Ingesting files: read each in chunks, have every chunk transformed and written, keep what failed, count it.

:class:`Ingestion` reads the files one after the other, :data:`transform.CHUNK_ROWS` rows at a time, and
hands the chunks to where they are written (``workers.py``): this process alone while the job has had one
chunk (a small upload); from its second chunk on, this process and ``--processes`` - 1 worker processes, for
the rest of the job. At most a few chunks per process are in hand at any time: memory stays flat.

A row that cannot be cast, or that the service refuses, goes to ``--failed-rows-dir`` (same file name,
original columns plus ``failed_row_number``, ``failed_row_source`` -- the file's URL -- and ``failure_reason``);
the other rows are still ingested. A file that cannot be ingested at all (FileError) is logged and, unless it
is the object the execution named (it is in S3 under its URL), copied there whole. Every file gets one log
line with its counts, and :class:`Summary` keeps them for the job's summary and exit message.

Runs in the SageMaker scikit-learn image: pandas 1.1+ and Python 3.9+ only.
"""

from __future__ import annotations

import itertools
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pandas as pd

from errors import FileError
from feature_store_writer import FeatureStoreWriter, Gate
from inputs import InputFile, check_csv_text
from transform import ColumnPlan, Schema, ingestion_time, normalised_chunk, plan_file, read_chunks
from workers import Chunk, ChunkResult, InProcess, WorkerPool, WriterSettings

LOG = logging.getLogger("transform_and_ingest.ingest")

FAILED_ROW_NUMBER = "failed_row_number"
FAILED_ROW_SOURCE = "failed_row_source"
FAILURE_REASON = "failure_reason"
LOGGED_FAILURES_PER_CHUNK = 5


@dataclass
class FileReport:
    """The accounting of one file."""

    source: str  # its URL (the relative path in a local run without one)
    relative: str  # its name below --failed-rows-dir
    rows: int = 0  # data rows read
    written: int = 0
    failed: int = 0  # rows not written (not cast, refused, not confirmed)
    error: str = ""  # why the file could not be ingested at all
    pending: int = 0  # chunks handed out and not answered yet
    read: bool = False  # every chunk was handed out (or reading stopped)
    done: bool = False  # counted and logged

    @property
    def ok(self) -> bool:
        return not self.failed and not self.error

    def as_dict(self) -> dict:
        return {"source": self.source, "rows": self.rows, "written": self.written, "failed": self.failed,
                **({"error": self.error} if self.error else {})}


@dataclass
class Summary:
    files: int = 0
    files_failed: int = 0
    rows: int = 0
    written: int = 0
    failed: int = 0
    write_calls: int = 0
    throttled_calls: int = 0
    processes: int = 1  # processes that wrote (1: this one)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of this process and its worker processes
    reports: list[FileReport] = field(default_factory=list)

    def not_ingested(self) -> list[FileReport]:
        """The files with rows not written, or not ingested at all, in the order they were read."""
        return [report for report in self.reports if not report.ok]

    def as_dict(self) -> dict:
        rate = self.written / self.seconds if self.seconds else 0.0
        counts = {key: value for key, value in self.__dict__.items() if key != "reports"}
        return {**counts, "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "rows_per_second": round(rate, 1),
                "files_not_fully_ingested": [report.as_dict() for report in self.not_ingested()]}


class FailedRows:
    """Appends the rows that were not written to ``<failed-rows-dir>/<file's relative path>``:
    the original columns plus the data row number, the file's source and the reason."""

    def __init__(self, failed_dir: Path) -> None:
        self.failed_dir = failed_dir

    def path_for(self, relative: str) -> Path:
        return self.failed_dir / relative

    def add(self, relative: str, raw: pd.DataFrame, failures: Iterable[tuple[int, str]], first_row: int,
            source: str) -> None:
        failures = sorted(failures)
        if not failures:
            return
        positions = [row - first_row for row, _ in failures]
        rows = raw.iloc[positions].copy()
        rows[FAILED_ROW_NUMBER] = [row for row, _ in failures]
        rows[FAILED_ROW_SOURCE] = source
        rows[FAILURE_REASON] = [reason for _, reason in failures]
        target = self.path_for(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(target, mode="a", header=not target.exists(), index=False)

    def copy_file(self, relative: str, path: Path) -> None:
        target = self.path_for(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


_READ_ERRORS = (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError)


class Ingestion:
    """Ingests files into one feature group, in this process or in ``processes`` processes (this one and
    ``processes - 1`` workers).

    ``in_process_writer(gate)`` makes the writer of this process (``gate``: its share of the limit the worker
    processes share, None while it writes alone); the workers make their own from ``settings``. Call
    :meth:`finish` at the end: it waits for every chunk.
    """

    def __init__(self, schema: Schema, failed_rows: FailedRows, summary: Summary, *, processes: int,
                 settings: WriterSettings, in_process_writer: Callable[[Gate | None], FeatureStoreWriter],
                 session: boto3.session.Session | None = None) -> None:
        self.schema, self.failed_rows, self.summary = schema, failed_rows, summary
        self.processes, self.settings, self._make_writer = processes, settings, in_process_writer
        self.session = session  # handed to forked workers
        self._in_process: InProcess | None = None
        self._pool: WorkerPool | None = None
        self._pending: dict[int, tuple[FileReport, pd.DataFrame, int]] = {}  # task id -> (file, raw, first row)
        self._task_ids = itertools.count(1)

    # -- files ----------------------------------------------------------------------------------------

    def ingest_or_set_aside(self, item: InputFile) -> None:
        """Ingest one file; a file that cannot be ingested at all is counted, logged and kept aside."""
        report = FileReport(item.source, item.relative)
        self.summary.files += 1
        self.summary.reports.append(report)
        try:
            self._read(item, report)
        except (FileError, *_READ_ERRORS) as error:
            report.error = str(error)
            self._wait_for(report)  # its chunks already handed out are answered before the file is set aside
            if item.named:  # it is in S3 under its URL: no copy
                LOG.error("%s was not ingested: %s", item.source, error)
            else:
                LOG.error("%s was not ingested: %s (copied to %s)", item.relative, error,
                          self.failed_rows.path_for(item.relative))
                self.failed_rows.copy_file(item.relative, item.path)
        finally:
            report.read = True
            self._file_done_if_complete(report)

    def file_not_read(self, source: str, why: str) -> None:
        """Count a file that could not even be had (not readable in S3)."""
        report = FileReport(source, source, error=why, read=True)
        self.summary.files += 1
        self.summary.reports.append(report)
        LOG.error("%s was not ingested: %s", source, why)
        self._file_done_if_complete(report)

    def finish(self) -> None:
        """Wait for every chunk handed out; stop the writers."""
        for sink in (self._in_process, self._pool):
            if sink is not None:
                while sink.outstanding:
                    self._handle(sink.next_result())
                sink.close()
        self._in_process = self._pool = None

    # -- reading --------------------------------------------------------------------------------------

    def _read(self, item: InputFile, report: FileReport) -> None:
        if item.named:
            check_csv_text(item.path)
        try:
            chunks = iter(read_chunks(item.path))
            first = next(chunks, None)
        except pd.errors.EmptyDataError as error:
            if item.named:
                raise FileError("the file has no header row: a CSV file with a header row is expected") from error
            LOG.warning("%s is empty: nothing to ingest", item.relative)
            return
        except UnicodeDecodeError as error:
            raise _not_utf8(error) from error
        except pd.errors.ParserError as error:
            raise _not_csv(error) from error
        if first is None:
            LOG.warning("%s has a header row but no data rows: nothing to ingest", item.relative)
            return
        raw = first.fillna("")  # short rows: their missing cells are empty, not NaN
        plan = plan_file(normalised_chunk(raw), self.schema)
        if plan.dropped:
            LOG.warning("%s: columns that are not features of %s are dropped: %s",
                        item.relative, self.schema.name, ", ".join(plan.dropped))
        LOG.info("%s: features %s, one-hot %s", item.relative, sorted(plan.passthrough.values()),
                 {column: sorted(cats.values()) for column, cats in plan.one_hot.items()})
        event_time_now = ingestion_time(self.schema.types[self.schema.event_time])
        following: pd.DataFrame | None = None
        error: Exception | None = None
        try:  # one chunk ahead: a job of one chunk is written here, anything more by the worker processes
            following = next(chunks, None)
        except _READ_ERRORS as caught:
            error = caught
        sink = self._sink(many_chunks=following is not None or self.summary.rows > 0)
        first_row = 1
        while raw is not None:
            self._hand_out(sink, report, raw, first_row, plan, event_time_now)
            first_row += len(raw)
            if error is not None:
                raise _reading_error(error)
            if following is None:
                break
            raw = following.fillna("")
            try:
                following = next(chunks, None)
            except _READ_ERRORS as caught:
                following, error = None, caught

    def _hand_out(self, sink: InProcess | WorkerPool, report: FileReport, raw: pd.DataFrame, first_row: int,
                  plan: ColumnPlan, event_time_now: str) -> None:
        task_id = next(self._task_ids)
        self._pending[task_id] = (report, raw, first_row)
        report.pending += 1
        report.rows += len(raw)
        self.summary.rows += len(raw)
        while sink.outstanding >= sink.capacity:  # back-pressure: flat memory
            self._handle(sink.next_result())
        sink.submit(Chunk(task_id, report.source, first_row, raw, plan, event_time_now))
        for result in sink.ready_results():
            self._handle(result)

    def _sink(self, *, many_chunks: bool) -> InProcess | WorkerPool:
        if self._pool is not None:
            return self._pool
        if many_chunks and self.processes > 1:
            if self._in_process is not None:  # its threads end before the workers are forked
                while self._in_process.outstanding:
                    self._handle(self._in_process.next_result())
                self._in_process.close()
                self._in_process = None
            self._pool = WorkerPool(self.processes, self.schema, self.settings, self._make_writer, self.session)
            self.summary.processes = self.processes
            return self._pool
        if self._in_process is None:
            self._in_process = InProcess(self.schema, self._make_writer(None))
        return self._in_process

    # -- results --------------------------------------------------------------------------------------

    def _wait_for(self, report: FileReport) -> None:
        for sink in (self._in_process, self._pool):
            while sink is not None and report.pending and sink.outstanding:
                self._handle(sink.next_result())

    def _handle(self, result: ChunkResult) -> None:
        report, raw, first_row = self._pending.pop(result.task_id)
        failures = result.failures
        self.failed_rows.add(report.relative, raw, failures, first_row, report.source)
        report.pending -= 1
        report.written += result.written
        report.failed += len(failures)
        self.summary.written += result.written
        self.summary.failed += len(failures)
        self.summary.write_calls += result.calls
        self.summary.throttled_calls += result.throttles
        for row, reason in failures[:LOGGED_FAILURES_PER_CHUNK]:
            LOG.error("%s row %d not written: %s", report.relative, row, reason)
        if len(failures) > LOGGED_FAILURES_PER_CHUNK:
            LOG.error("%s: %d more rows not written (see %s)", report.relative,
                      len(failures) - LOGGED_FAILURES_PER_CHUNK, self.failed_rows.path_for(report.relative))
        self._file_done_if_complete(report)

    def _file_done_if_complete(self, report: FileReport) -> None:
        if report.done or not report.read or report.pending:
            return
        report.done = True
        if report.error:
            self.summary.files_failed += 1
            LOG.info("file %s: not ingested (%s); %d of %d row(s) read were written", report.source, report.error,
                     report.written, report.rows)
        elif report.failed:
            LOG.info("file %s: %d row(s), %d written, %d not written (see %s)", report.source, report.rows,
                     report.written, report.failed, self.failed_rows.path_for(report.relative))
        else:
            LOG.info("file %s: %d row(s), all written", report.source, report.rows)


def _not_utf8(error: UnicodeDecodeError) -> FileError:
    return FileError(f"the file is not UTF-8 text ({error.reason} at byte {error.start}): a CSV file is expected")


def _not_csv(error: Exception) -> FileError:
    return FileError(f"the file does not parse as CSV: {' '.join(str(error).split())}")


def _reading_error(error: Exception) -> Exception:
    if isinstance(error, UnicodeDecodeError):
        return _not_utf8(error)
    if isinstance(error, pd.errors.ParserError):
        return _not_csv(error)
    return error
