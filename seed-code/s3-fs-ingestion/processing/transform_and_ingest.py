#!/usr/bin/env python3
"""Transform CSV files and ingest their rows into a SageMaker Feature Store feature group.

The entry point of the processing job: its options, the wiring of the modules beside it, its exit status.
SageMaker runs ``python3 /opt/ml/processing/input/code/transform_and_ingest.py ...`` with this folder (the
pipeline's ``code`` input) as the script's directory, so the modules import each other by their names:

* ``inputs.py`` -- which files: the object the execution named, or the objects of an input manifest;
* ``transform.py`` -- CSV rows -> Feature Store records, driven by the feature group's definition (the
  module to adapt: columns, one-hot encoding, casts, record identifiers, event times);
* ``feature_store_writer.py`` -- BatchWriteRecord/PutRecord from threads, retries, the shared concurrency limit;
* ``workers.py`` -- where chunks are transformed and written: this process, or worker processes;
* ``ingest.py`` -- files: chunks handed out, failed rows kept, counts per file;
* ``errors.py`` -- JobError (nothing was attempted) and FileError (one file could not be ingested).

Everything runs in the SageMaker scikit-learn image: pandas and boto3 only, Python 3.9 and pandas 1.1+.

Exit status: 0 every row was written; 1 some rows were not written, or a named object was not ingested at
all (not a CSV file with a header row: empty, Parquet, binary, unparsable; or unreadable in S3); 2 nothing
was attempted (no such feature group, unusable arguments, the named object is not in the input directory,
the manifest is missing or invalid). A failed job also writes its one-line outcome to
``/opt/ml/output/message``, which SageMaker shows as the job's ExitMessage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import boto3
from botocore.config import Config

import feature_store_writer
import inputs
import workers
from errors import FileError, JobError
from feature_store_writer import FeatureStoreWriter, Gate, retry_config
from ingest import FailedRows, FileReport, Ingestion, Summary
from inputs import InputFile
from transform import Schema
from workers import WriterSettings

LOG = logging.getLogger("transform_and_ingest")

# The first 1 KB of this file becomes the job's ExitMessage (DescribeProcessingJob), "Save and Access
# Metadata Information About Your Processing Job" (byoc-metadata), SageMaker developer guide.
EXIT_MESSAGE = Path("/opt/ml/output/message")
EXIT_MESSAGE_MAX_BYTES = 1024

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
    parser.add_argument("--max-workers", type=int, default=16,
                        help="concurrent write calls per process (default 16); the job lowers it while the "
                        "service throttles and raises it back as calls succeed")
    parser.add_argument("--processes", type=int, default=None,
                        help="processes that transform and write, the main one included, each with its own "
                        "client and --max-workers threads (default: the instance's vCPUs). A job of one chunk "
                        "(transform.CHUNK_ROWS rows: a small upload) is written by the main process alone; from "
                        "the second chunk on, N-1 worker processes share the work with it. 1: no worker process")
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
    parser.add_argument("--job-config", type=Path, default=inputs.JOB_CONFIG,
                        help=f"the processing job's configuration (default {inputs.JOB_CONFIG}); absent outside "
                        "SageMaker")
    parser.add_argument("--resource-config", type=Path, default=inputs.RESOURCE_CONFIG,
                        help=f"the job's hosts (default {inputs.RESOURCE_CONFIG}); absent: one host")
    parser.add_argument("--exit-message-file", type=Path, default=None,
                        help=f"where the one-line outcome of a failed job is written (default {EXIT_MESSAGE} "
                        "when its directory exists: SageMaker shows it as the job's ExitMessage)")
    parser.add_argument("--write-api", choices=("auto", "BatchWriteRecord", "PutRecord"), default="auto",
                        help="auto: BatchWriteRecord when the installed botocore has it, else PutRecord")
    args = parser.parse_args(argv)
    if args.max_workers < 1:
        parser.error("--max-workers must be at least 1")
    if args.processes is None:
        args.processes = workers.available_cpus()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if not args.region:
        parser.error("--region is required when AWS_REGION and AWS_DEFAULT_REGION are not set")
    return args


def _cpu_seconds() -> float:
    times = os.times()  # children: the worker processes, once joined
    return times.user + times.system + times.children_user + times.children_system


def run(args: argparse.Namespace) -> Summary:
    started, cpu_started = time.monotonic(), _cpu_seconds()
    # What to ingest is settled first: a wrong input fails before any call to AWS.
    if args.manifest_dir is not None:
        manifest_name, urls = inputs.read_manifest(args.manifest_dir, args.job_config)
        current, hosts = inputs.cluster(args.resource_config)
        urls = inputs.my_share(urls, current, hosts)
        LOG.info("input manifest %s: %d object(s) for host %s of %d", manifest_name, len(urls), current, len(hosts))
        files: list[InputFile] = []
    else:
        source_uri = args.source_uri or inputs.input_uri_from_job_config(args.job_config, args.input_dir)
        files, urls = inputs.select_input_files(args.input_dir, source_uri), []
        if not files:
            LOG.warning("no *.csv files under %s: nothing to ingest", args.input_dir)

    session = boto3.session.Session(region_name=args.region)
    schema = Schema.from_description(feature_store_writer.describe_feature_group(session, args.feature_group_name))
    runtime = feature_store_writer.runtime_client(session, args.max_workers)
    if args.write_api == "auto":
        use_batch = feature_store_writer.supports_batch_write(runtime)
    else:
        use_batch = args.write_api == "BatchWriteRecord"
    settings = WriterSettings(args.region, args.feature_group_name, args.max_workers, use_batch)

    def in_process_writer(gate: Gate | None) -> FeatureStoreWriter:
        return FeatureStoreWriter(runtime, args.feature_group_name, max_workers=args.max_workers,
                                  use_batch_write=use_batch, gate=gate)

    summary = Summary()
    ingestion = Ingestion(schema, FailedRows(args.failed_rows_dir), summary, processes=args.processes,
                          settings=settings, in_process_writer=in_process_writer, session=session)
    LOG.info("ingesting %d file(s) into %s with %s (up to %d process(es) x %d concurrent calls)",
             len(files) + len(urls), schema.name, "BatchWriteRecord" if use_batch else "PutRecord", args.processes,
             args.max_workers)
    for item in files:
        ingestion.ingest_or_set_aside(item)
    if urls:
        s3 = session.client("s3", config=Config(retries=retry_config()))
        with tempfile.TemporaryDirectory(dir=_existing_dir(args.download_dir)) as scratch:
            for url in urls:
                try:
                    path = inputs.download(s3, url, Path(scratch))
                except FileError as error:
                    ingestion.file_not_read(url, str(error))
                    continue
                try:  # read whole before the next download: its chunks are in memory, the file can go
                    ingestion.ingest_or_set_aside(InputFile(path, inputs.failed_rows_name(url), url, named=True))
                finally:
                    path.unlink()
    ingestion.finish()
    summary.seconds = time.monotonic() - started
    summary.cpu_seconds = _cpu_seconds() - cpu_started
    return summary


def _existing_dir(directory: Path | None) -> str | None:
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    return str(directory)


def _file_outcome(report: FileReport) -> str:
    if report.error:
        return f"{report.source}: not ingested ({report.error})"
    return f"{report.source}: {report.failed} of {report.rows} row(s) not written"


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
                   f"{args.feature_group_name}; the log names each, failed rows are in {args.failed_rows_dir}; "
                   + "; ".join(_file_outcome(report) for report in summary.not_ingested()))
        LOG.error("%s", message)
        write_exit_message(args, message)
        return EXIT_NOT_ALL_INGESTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
