"""Ingestion throughput of the seed code's processing script against the SageMaker SDK's own ingestion.
Run on demand (not a test):

    .venv/bin/python benchmarks/bench_ingest.py [--rows 100000] [--sdk-put-rows 10000] [--latency 0.010]
                                                [--workers 16]

Every case writes generated abalone-shaped rows into the Feature Store stand-in of the seed code's tests
(tests/featurestore_standin.py), run in a separate process on 127.0.0.1 with a fixed latency per call,
so the server does not compete with the client for the GIL. Cases:

* ``script``: the processing job (processing/, entry point transform_and_ingest.py) on a CSV file of --rows
  rows (read, transform, write: BatchWriteRecord, 25 records per call, --workers threads). Timed end to end,
  transformation included.
* ``sdk-batch``: SageMaker SDK v3 ``sagemaker.mlops.feature_store.ingest_dataframe`` with
  ``use_batch_write_record=True`` on the same rows, already in the feature group's shape (its time
  covers writing only). Same worker count, one process.
* ``sdk-put``: the same function in its default PutRecord mode, one record per call. At one call per
  row it needs rows x latency / workers at best (100,000 rows: over a minute), so it runs on the first
  --sdk-put-rows rows; rows/s is the comparable figure.

The ideal of a case is workers x records per call / latency. Nothing here reaches AWS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = REPO_ROOT / "seed-code" / "s3-fs-ingestion"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    # the tests' SDK config: telemetry opted out
    "SAGEMAKER_USER_CONFIG_OVERRIDE": str(SEED_DIR / "tests" / "sagemaker-config.yaml"),
}
HEADER = ["Sex", "Length", "Diameter", "Height", "Whole weight", "Shucked weight", "Viscera weight",
          "Shell weight", "Rings"]


def generate_rows(count: int, seed: int = 7) -> pd.DataFrame:
    """Abalone-shaped rows (as in the UCI file, with its column titles): plausible ranges, 3-4 decimals."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(0.075, 0.815, count).round(3)
    diameter = (length * rng.uniform(0.75, 0.85, count)).round(3)
    height = (length * rng.uniform(0.25, 0.4, count)).round(3)
    whole = (length**3 * rng.uniform(1.5, 2.0, count)).round(4)
    return pd.DataFrame({
        "Sex": rng.choice(["M", "F", "I"], count),
        "Length": length,
        "Diameter": diameter,
        "Height": height,
        "Whole weight": whole,
        "Shucked weight": (whole * rng.uniform(0.35, 0.5, count)).round(4),
        "Viscera weight": (whole * rng.uniform(0.18, 0.25, count)).round(4),
        "Shell weight": (whole * rng.uniform(0.25, 0.33, count)).round(4),
        "Rings": rng.integers(1, 30, count),
    })[HEADER]


def feature_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The same rows in the feature group's shape, which is what ingest_dataframe expects."""
    frame = pd.DataFrame({
        "record_id": [f"bench#{index}" for index in range(1, len(rows) + 1)],
        "event_time": "2024-05-01T12:00:00.000Z",
    })
    for sex in ("m", "f", "i"):
        frame[f"sex_{sex}"] = (rows["Sex"].str.lower() == sex).astype("int64").to_numpy()
    for column in HEADER[1:]:
        frame[column.lower().replace(" ", "_")] = rows[column].to_numpy()
    return frame


# -- the stand-in, in its own process -------------------------------------------------------------------


def _serve(latency: float, definition: dict, groups: list[str], connection) -> None:
    os.environ.update(FAKE_AWS)
    sys.path.insert(0, str(SEED_DIR / "tests"))
    from featurestore_standin import FeatureStoreStandIn

    with FeatureStoreStandIn(latency=latency) as store:
        for group in groups:
            store.add_group(group, definition)
        connection.send(store.url)
        while connection.recv() == "stats":
            connection.send({"calls": dict(store.calls), "unique": {g: len(store.latest(g)) for g in groups}})


class StandIn:
    """One stand-in for the whole run: sagemaker-core caches its clients, endpoint included, per process."""

    def __init__(self, latency: float, groups: list[str]) -> None:
        definition = json.loads((SEED_DIR / "feature_group.json").read_text())
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(latency, definition, groups, child), daemon=True)

    def __enter__(self) -> StandIn:
        self.process.start()
        url = self.connection.recv()
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = url
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME"] = url
        return self

    def stats(self) -> dict:
        self.connection.send("stats")
        return self.connection.recv()

    def measure(self, group: str, work) -> dict:
        """Run ``work``; return its seconds, the write calls it made and the records of ``group``."""
        before = self.stats()["calls"]
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
        after = self.stats()
        calls = sum(after["calls"].get(op, 0) - before.get(op, 0) for op in ("BatchWriteRecord", "PutRecord"))
        return {"seconds": seconds, "calls": calls, "unique": after["unique"][group]}

    def __exit__(self, *exc: object) -> None:
        self.connection.send("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


# -- the cases --------------------------------------------------------------------------------------------


def script_case(csv_dir: Path, group: str, workers: int):
    sys.path.insert(0, str(SEED_DIR / "processing"))  # its modules import each other by name, as in the container
    import transform_and_ingest

    def work() -> None:
        with tempfile.TemporaryDirectory() as failed:
            status = transform_and_ingest.main([
                "--input-dir", str(csv_dir), "--feature-group-name", group, "--max-workers", str(workers),
                "--failed-rows-dir", failed, "--source-uri", "s3://bench/uploads/"])
        assert status == 0, f"the script exited with {status}"

    return work


def sdk_case(frame: pd.DataFrame, group: str, workers: int, batch: bool):
    from sagemaker.mlops.feature_store import ingest_dataframe

    def work() -> None:
        manager = ingest_dataframe(feature_group_name=group, data_frame=frame, max_workers=workers,
                                   max_processes=1, use_batch_write_record=batch, region="eu-west-1")
        assert not manager.failed_rows, f"the SDK failed {len(manager.failed_rows)} rows"

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the script and sdk-batch cases")
    parser.add_argument("--sdk-put-rows", type=int, default=10_000, help="rows for the sdk-put case")
    parser.add_argument("--latency", type=float, default=0.010, help="seconds per call in the stand-in")
    parser.add_argument("--workers", type=int, default=16, help="concurrent calls, every case")
    args = parser.parse_args()
    os.environ.update(FAKE_AWS)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
        os.environ.pop(name, None)
    import logging

    logging.basicConfig(level=logging.WARNING)

    rows = generate_rows(args.rows)
    frame = feature_frame(rows)
    put_rows = min(args.sdk_put_rows, args.rows)
    cases = {"script": (args.rows, 25), "sdk-batch": (args.rows, 25), "sdk-put": (put_rows, 1)}
    results = {}
    with StandIn(args.latency, list(cases)) as store, tempfile.TemporaryDirectory() as csv_dir:
        rows.to_csv(Path(csv_dir) / "abalone.csv", index=False)
        results["script"] = store.measure("script", script_case(Path(csv_dir), "script", args.workers))
        results["sdk-batch"] = store.measure("sdk-batch", sdk_case(frame, "sdk-batch", args.workers, batch=True))
        results["sdk-put"] = store.measure("sdk-put", sdk_case(frame.head(put_rows), "sdk-put", args.workers,
                                                               batch=False))

    print(f"\n{args.workers} workers, {args.latency * 1000:.0f} ms per call (stand-in in its own process), "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print(f"{'case':<10} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'calls':>7} {'ideal rows/s':>13} {'of ideal':>9}")
    rates = {}
    for case, result in results.items():
        count, per_call = cases[case]
        assert result["unique"] == count, f"{case}: {result['unique']} of {count} rows arrived"
        rates[case] = rate = count / result["seconds"]
        ideal = args.workers * per_call / args.latency
        print(f"{case:<10} {count:>8} {result['seconds']:>8.2f} {rate:>9.0f} {result['calls']:>7} {ideal:>13.0f} "
              f"{rate / ideal:>8.0%}")
    print(f"\nscript / sdk-batch: {rates['script'] / rates['sdk-batch']:.2f}x   "
          f"script / sdk-put: {rates['script'] / rates['sdk-put']:.1f}x")


if __name__ == "__main__":
    main()
