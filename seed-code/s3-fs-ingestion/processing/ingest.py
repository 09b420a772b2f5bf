"""Ingesting one file: read it in chunks, transform each chunk, write its records, keep what failed.

A row that cannot be cast, or that the service refuses, goes to ``--failed-rows-dir`` (same file name,
original columns plus ``failed_row_number`` and ``failure_reason``); the other rows are still ingested. A
file that cannot be ingested at all (FileError) is logged and, unless it is the object the execution named
(it is in S3 under its URL), copied there whole. :class:`Summary` counts it all for the exit status.

Runs in the SageMaker scikit-learn image: pandas 1.1+ and Python 3.9+ only.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from errors import FileError
from feature_store_writer import FeatureStoreWriter
from inputs import InputFile, check_csv_text
from transform import ColumnPlan, Schema, ingestion_time, normalised_chunk, plan_file, read_chunks, transform_chunk

LOG = logging.getLogger("transform_and_ingest.ingest")

FAILED_ROW_NUMBER = "failed_row_number"
FAILURE_REASON = "failure_reason"


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
        for raw in read_chunks(item.path):
            raw = raw.fillna("")  # short rows: their missing cells are empty, not NaN
            chunk = normalised_chunk(raw)
            if plan is None:
                plan = plan_file(chunk, schema)
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


def ingest_or_set_aside(item: InputFile, schema: Schema, writer: FeatureStoreWriter, failed_rows: FailedRows,
                        summary: Summary) -> None:
    """Ingest one file; a file that cannot be ingested at all is counted, logged and kept aside."""
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
