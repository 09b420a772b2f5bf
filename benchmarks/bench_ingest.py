"""Ingestion throughput of the seed code's processing script, against the SageMaker SDK's own ingestion and
against what this machine can do at all. Run on demand (not a test):

    .tox/tests/bin/python benchmarks/bench_ingest.py [--rows 50000] [--reps 3] [--latency 0.010] [--rss]

Every case writes abalone-shaped rows into the Feature Store stand-in of the seed code's tests
(tests/featurestore_standin.py), run in its own process on 127.0.0.1 with a fixed latency per call (10 ms),
so the server does not share the clients' GIL. Each case runs in a fresh interpreter. Nothing reaches AWS.

1. **Machine bound.** Every BatchWriteRecord call costs CPU in the client and in the stand-in; with ``cores``
   cores a client can write at most ``cores / (client CPU per call + stand-in CPU per call) x 25`` rows/s,
   however many processes and threads it runs. Both CPU costs are measured, not assumed:
   * the **machine bound for this workload** takes the client CPU per call of the script itself (its
     ``cpu_seconds`` -- main process and workers, reading, transforming and writing included -- over its
     write calls) and the stand-in's CPU time over the same calls, medians of the repetitions: the rate if
     every core did this work all the time. The share of it is how well the script uses the cores;
   * the **bare-call bound** takes a client that does nothing but the calls (25 prebuilt records each, the
     script's request path, the cheapest one known here, ``cores`` processes x 16 threads), measured before
     every repetition: the ceiling for any client of this stand-in on this machine. Printed beside, no
     target. One call at a time, and botocore's own request path, are printed for comparison.
2. **Throughput**, ``--reps`` repetitions, cases interleaved, ``--rows`` rows each:
   * ``script``: the processing job as the pipeline runs it (``transform_and_ingest.py``, default options:
     one worker process per vCPU, 16 calls in flight per process) on a CSV file of the rows. Its time is the
     job's own (``seconds`` of its summary: reading, transforming, writing), without the interpreter's start;
   * ``sdk``: SageMaker SDK v3 ``sagemaker.mlops.feature_store.ingest_dataframe`` in batch mode
     (``use_batch_write_record=True``: BatchWriteRecord, 25 records a call) on the same rows, already in the
     feature group's shape (its time covers writing only), at its best configuration: ``max_processes`` in
     (1, cores) x ``max_workers`` in ``--sdk-workers``, swept once on ``--sweep-rows`` rows, the best one
     then repeated.
   Medians, the per-repetition ratio script / sdk, and each case's share of the machine bound.
3. **Throttling**: the 4,177 rows of the UCI Abalone file (``--abalone``; a header row is added), written by
   the script with no throttling and with the first 5 write calls answered ``ThrottlingException``;
   ``--reps`` times each; the ratio of the medians (and per repetition).
4. **Memory** (``--rss``, slow): the script on ``--rss-rows`` rows (2 million); the peak resident memory of
   the job's processes together (main process + workers, sampled every 0.2 s from /proc), RSS and PSS
   (the proportional share: pages the forked workers share with the main process are counted once).

The targets (>= 3x the SDK, >= 80% of the bound, throttled / clean <= 1.3, RSS < 500 MB) are printed with PASS
or MISS and, for a miss, by how much.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = REPO_ROOT / "seed-code" / "s3-fs-ingestion"
SCRIPT = SEED_DIR / "processing" / "transform_and_ingest.py"
# the UCI Abalone data set (CC BY 4.0, https://archive.ics.uci.edu/dataset/1/abalone): not in the repository
ABALONE_DATA = REPO_ROOT.parent / "shared" / "data" / "abalone" / "abalone.data"
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
RECORDS_PER_CALL = 25
THROTTLED_CALLS = 5
BOUND_THREADS = 16  # calls in flight per process when the bound is measured: the script's default
TARGETS = {"sdk": 3.0, "bound": 0.80, "throttled": 1.3, "rss_mb": 500.0}


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


def write_csv(path: Path, count: int, block: int = 250_000) -> None:
    """``count`` generated rows as a CSV file, written a block at a time (2 million rows stay small here)."""
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, count, block):
            generate_rows(min(block, count - start), seed=7 + start).to_csv(out, index=False, header=start == 0)


# -- the stand-in, in its own process -------------------------------------------------------------------


def _serve(latency: float, definition: dict, connection) -> None:
    os.environ.update(FAKE_AWS)
    sys.path.insert(0, str(SEED_DIR / "tests"))
    from featurestore_standin import FeatureStoreStandIn

    with FeatureStoreStandIn(latency=latency, keep_records=False) as store:
        connection.send(store.url)
        while True:
            command, argument = connection.recv()
            if command == "stop":
                return
            if command == "group":
                store.add_group(argument, definition)
            elif command == "throttle":
                store.throttle_next_calls(argument)
            connection.send({"calls": dict(store.calls), "throttled": store.throttled, "cpu": time.process_time(),
                             "unique": {group: store.unique_ids(group) for group in store.groups}})


class StandIn:
    """The stand-in in a process of its own: groups, throttling, and what it received (CPU time included)."""

    def __init__(self, latency: float) -> None:
        definition = json.loads((SEED_DIR / "feature_group.json").read_text())
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(latency, definition, child), daemon=True)
        self._groups = 0

    def __enter__(self) -> StandIn:
        self.process.start()
        self.url = self.connection.recv()
        return self

    def ask(self, command: str, argument: object = None) -> dict:
        self.connection.send((command, argument))
        return self.connection.recv()

    def new_group(self, prefix: str) -> str:
        self._groups += 1
        group = f"{prefix}-{self._groups}"
        self.ask("group", group)
        return group

    def environment(self) -> dict[str, str]:
        return {**os.environ, **FAKE_AWS, "AWS_ENDPOINT_URL_SAGEMAKER": self.url,
                "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": self.url, "PYTHONDONTWRITEBYTECODE": "1"}

    def __exit__(self, *exc: object) -> None:
        self.connection.send(("stop", None))
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


def _write_calls(stats: dict) -> int:
    return sum(stats["calls"].get(op, 0) for op in ("BatchWriteRecord", "PutRecord"))


# -- the cases, each in a fresh interpreter ---------------------------------------------------------------


def run_script(store: StandIn, csv_dir: Path, group: str, *, throttle: int = 0,
               sample: Callable[[int], None] | None = None) -> dict:
    """The processing job, as a SageMaker processing step runs it: its summary, wall and CPU seconds."""
    if throttle:
        store.ask("throttle", throttle)
    before = store.ask("stats")
    with tempfile.TemporaryDirectory() as failed:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--input-dir", str(csv_dir), "--feature-group-name", group,
             "--failed-rows-dir", failed, "--source-uri", "s3://bench/uploads/"],
            env=store.environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = threading.Thread(target=sample, args=(process.pid,), daemon=True) if sample else None
        if sampler:
            sampler.start()
        _, stderr = process.communicate()
        wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"the script exited with {process.returncode}:\n{stderr[-3000:]}")
    [line] = [line for line in stderr.splitlines() if " summary {" in line]
    summary = json.loads(line.split(" summary ", 1)[1])
    after = store.ask("stats")
    return {"seconds": summary["seconds"], "wall": wall, "summary": summary,
            "calls": _write_calls(after) - _write_calls(before), "standin_cpu": after["cpu"] - before["cpu"],
            "unique": after["unique"][group]}


def run_sdk(store: StandIn, rows: int, group: str, processes: int, workers: int) -> dict:
    """ingest_dataframe in batch mode in a fresh interpreter (sagemaker-core caches its clients per process)."""
    before = store.ask("stats")
    completed = subprocess.run(
        [sys.executable, __file__, "--sdk-case", json.dumps({"rows": rows, "group": group, "processes": processes,
                                                              "workers": workers})],
        env=store.environment(), capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"the SDK case failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    after = store.ask("stats")
    return {**result, "calls": _write_calls(after) - _write_calls(before), "unique": after["unique"][group],
            "standin_cpu": after["cpu"] - before["cpu"]}


def sdk_case(arguments: dict) -> None:
    """Inside the fresh interpreter of run_sdk: time ingest_dataframe alone; print {"seconds": ...}."""
    frame = feature_frame(generate_rows(arguments["rows"]))
    from sagemaker.mlops.feature_store import ingest_dataframe

    started, cpu = time.perf_counter(), cpu_seconds()
    manager = ingest_dataframe(feature_group_name=arguments["group"], data_frame=frame,
                               max_workers=arguments["workers"], max_processes=arguments["processes"],
                               use_batch_write_record=True, region="eu-west-1")
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu  # its pool's processes are joined by now
    assert not manager.failed_rows, f"the SDK failed {len(manager.failed_rows)} rows"
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu}))


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def calibration_case(arguments: dict) -> None:
    """Inside a fresh interpreter: the CPU of ``calls`` BatchWriteRecord calls of 25 records, prebuilt, from
    ``threads`` threads, on each request path of ``paths``: ``script`` (feature_store_writer.runtime_client
    + batch_write) and ``botocore`` (parameters validated and serialized by botocore, for comparison).
    Prints {path: {"cpu": process CPU seconds of the calls, "wall": seconds, "calls": calls}}."""
    sys.path.insert(0, str(SEED_DIR / "processing"))
    import boto3
    import feature_store_writer
    import transform
    from botocore.config import Config

    definition = json.loads((SEED_DIR / "feature_group.json").read_text())
    group, calls, threads = arguments["group"], arguments["calls"], arguments["threads"]
    schema = transform.Schema(group, definition["RecordIdentifierFeatureName"], definition["EventTimeFeatureName"],
                              {f["FeatureName"]: f["FeatureType"] for f in definition["FeatureDefinitions"]})
    raw = transform.normalised_chunk(generate_rows(calls * RECORDS_PER_CALL, seed=arguments["seed"]).astype(str))
    chunk = transform.transform_chunk(raw, transform.plan_file(raw, schema), schema,
                                      source=f"s3://bench/calibration-{arguments['seed']}", first_row=1,
                                      event_time_now="2024-05-01T12:00:00.000Z")
    entries = [entry for _, entry in chunk.entries(group)]
    records = [record for _, record in chunk.records]
    session = boto3.session.Session(region_name="eu-west-1")
    lean = feature_store_writer.runtime_client(session, threads)
    plain = session.client("sagemaker-featurestore-runtime", config=Config(max_pool_connections=max(10, threads)))
    paths = {
        "script": lambda start: feature_store_writer.batch_write(lean, group, entries[start:start + RECORDS_PER_CALL]),
        "botocore": lambda start: plain.batch_write_record(Entries=[
            {"FeatureGroupName": group, "Record": record} for record in records[start:start + RECORDS_PER_CALL]]),
    }
    result = {}
    for name in arguments["paths"]:
        call = paths[name]
        call(0)  # connections, first-call caches
        starts = list(range(0, len(entries), RECORDS_PER_CALL))

        def loop(mine: list[int], call: Callable[[int], object] = call) -> None:
            for start in mine:
                call(start)

        workers = [threading.Thread(target=loop, args=(starts[index::threads],)) for index in range(threads)]
        cpu, wall = time.process_time(), time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        result[name] = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "calls": len(starts)}
    print(json.dumps(result))


def calibrate(store: StandIn, calls: int, processes: int, threads: int) -> dict:
    """CPU per call of the client and of the stand-in: at full load (``processes`` x ``threads`` calls in
    flight, as in the cases: the figures the bound uses) and one call at a time (for comparison)."""
    group = store.new_group("calibration")

    def start(seed: int, threads: int, paths: list[str], calls: int = calls) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, __file__, "--calibration-case", json.dumps(
                {"calls": calls, "group": group, "threads": threads, "paths": paths, "seed": seed})],
            env=store.environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(runs: list[subprocess.Popen]) -> list[dict]:
        results = []
        for run in runs:
            out, err = run.communicate()
            if run.returncode != 0:
                raise SystemExit(f"the calibration failed:\n{err[-3000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results

    figures = {}
    for label, runs in (("load", lambda: [start(seed, threads, ["script"]) for seed in range(processes)]),
                        ("single", lambda: [start(processes, 1, ["script", "botocore"], max(50, calls // 4))])):
        before = store.ask("stats")
        results = finish(runs())
        after = store.ask("stats")
        made = _write_calls(after) - _write_calls(before)  # the calls measured and the warm-up calls
        measured = sum(r["script"]["calls"] for r in results)
        figures[label] = {"client": sum(r["script"]["cpu"] for r in results) / measured,
                          "standin": (after["cpu"] - before["cpu"]) / made,
                          "rate": measured * RECORDS_PER_CALL / max(r["script"]["wall"] for r in results)}
        if label == "single":
            figures[label]["botocore"] = results[0]["botocore"]["cpu"] / results[0]["botocore"]["calls"]
    return figures


# -- memory ------------------------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(child) for child in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in kB; (0, 0) once it is gone."""
    try:
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
        pss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                   if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0, 0
    return rss, pss


class MemorySampler:
    """Peak of the summed RSS and PSS of a process and its descendants, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_rss = self.peak_pss = 0
        self.peak_processes = 0
        self.samples = 0

    def __call__(self, pid: int) -> None:
        while Path(f"/proc/{pid}").exists():
            pids = _descendants(pid)
            sizes = [_memory_kb(each) for each in pids]
            self.peak_rss = max(self.peak_rss, sum(rss for rss, _ in sizes))
            self.peak_pss = max(self.peak_pss, sum(pss for _, pss in sizes))
            self.peak_processes = max(self.peak_processes, len(pids))
            self.samples += 1
            time.sleep(self.interval)


# -- report ------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the throughput cases (default 50,000)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every timed case (default 3)")
    parser.add_argument("--latency", type=float, default=0.010, help="seconds per call in the stand-in")
    parser.add_argument("--sdk-workers", default="4,8,16,32", help="max_workers values of the SDK sweep")
    parser.add_argument("--sweep-rows", type=int, default=20_000, help="rows of each SDK sweep run")
    parser.add_argument("--calibration-calls", type=int, default=800,
                        help="calls per process of each CPU measurement (default 800)")
    parser.add_argument("--abalone", type=Path, default=ABALONE_DATA,
                        help=f"the UCI abalone.data file (no header row; default {ABALONE_DATA})")
    parser.add_argument("--rss", action="store_true", help="also run the memory case (slow)")
    parser.add_argument("--rss-rows", type=int, default=2_000_000, help="rows of the memory case")
    parser.add_argument("--skip-throughput", action="store_true", help="only calibration, throttling, memory")
    parser.add_argument("--sdk-case", help=argparse.SUPPRESS)
    parser.add_argument("--calibration-case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sdk_case:
        return sdk_case(json.loads(args.sdk_case))
    if args.calibration_case:
        return calibration_case(json.loads(args.calibration_case))
    if not args.abalone.is_file():
        parser.error(f"{args.abalone} is not a file: download abalone.data from the UCI repository "
                     "(https://archive.ics.uci.edu/dataset/1/abalone) and pass it with --abalone PATH")
    os.environ.update(FAKE_AWS)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
        os.environ.pop(name, None)
    cores = os.cpu_count() or 1
    print(f"{cores} CPUs, Python {sys.version.split()[0]}, pandas {pd.__version__}, stand-in latency "
          f"{args.latency * 1000:.0f} ms per call, its own process\n", flush=True)

    with StandIn(args.latency) as store, tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        # 1. the machine bound: measured before every repetition, the median of them counts
        def measure_bound() -> dict:
            return calibrate(store, args.calibration_calls, cores, BOUND_THREADS)

        calibrations = [measure_bound()]

        # 2. throughput
        results: dict[str, list[dict]] = {"script": [], "sdk": []}
        best = None
        if not args.skip_throughput:
            data = work / "throughput"
            data.mkdir()
            write_csv(data / "abalone.csv", args.rows)
            sweep = []
            for processes in sorted({1, cores}):
                for workers in [int(value) for value in args.sdk_workers.split(",")]:
                    group = store.new_group("sdk-sweep")
                    result = run_sdk(store, args.sweep_rows, group, processes, workers)
                    assert result["unique"] == args.sweep_rows, result
                    sweep.append((args.sweep_rows / result["seconds"], processes, workers))
                    print(f"  sdk sweep: max_processes={processes} max_workers={workers}: "
                          f"{sweep[-1][0]:,.0f} rows/s", flush=True)
            _, best_processes, best_workers = max(sweep)
            best = (best_processes, best_workers)
            for rep in range(1, args.reps + 1):
                if rep > 1:
                    calibrations.append(measure_bound())
                script = run_script(store, data, store.new_group("script"))
                assert script["unique"] == args.rows, script
                results["script"].append(script)
                sdk = run_sdk(store, args.rows, store.new_group("sdk"), best_processes, best_workers)
                assert sdk["unique"] == args.rows, sdk
                results["sdk"].append(sdk)
                print(f"  rep {rep}: script {args.rows / script['seconds']:,.0f} rows/s "
                      f"({script['summary']['processes']} processes, {script['wall']:.1f} s with the interpreter's "
                      f"start), sdk {args.rows / sdk['seconds']:,.0f} rows/s", flush=True)

        # 3. throttling
        abalone_dir = work / "abalone"
        abalone_dir.mkdir()
        source = pd.read_csv(args.abalone, header=None, names=HEADER, dtype=str)
        source.to_csv(abalone_dir / "abalone.csv", index=False)
        clean, throttled = [], []
        for _ in range(args.reps):
            clean.append(run_script(store, abalone_dir, store.new_group("abalone-clean")))
            throttled.append(run_script(store, abalone_dir, store.new_group("abalone-throttled"),
                                        throttle=THROTTLED_CALLS))
            assert clean[-1]["unique"] == throttled[-1]["unique"] == len(source)
            assert throttled[-1]["summary"]["throttled_calls"] == THROTTLED_CALLS, throttled[-1]["summary"]

        # 4. memory
        memory = None
        if args.rss:
            big = work / "big"
            big.mkdir()
            write_csv(big / "abalone.csv", args.rss_rows)
            memory = MemorySampler()
            result = run_script(store, big, store.new_group("rss"), sample=memory)
            assert result["unique"] == args.rss_rows, result
            memory_rate = args.rss_rows / result["seconds"]

    # -- the table -------------------------------------------------------------------------------------------
    def median_of(label: str, key: str) -> float:
        return statistics.median(c[label][key] for c in calibrations)

    bare = {"client": median_of("load", "client"), "standin": median_of("load", "standin")}
    bare_bound = cores / (bare["client"] + bare["standin"]) * RECORDS_PER_CALL
    bound = None
    if results["script"]:
        cpu = {"client": statistics.median(run["summary"]["cpu_seconds"] / run["calls"] for run in results["script"]),
               "standin": statistics.median(run["standin_cpu"] / run["calls"] for run in results["script"])}
        bound = cores / (cpu["client"] + cpu["standin"]) * RECORDS_PER_CALL
        sdk_cpu = statistics.median(run["cpu_seconds"] / run["calls"] for run in results["sdk"])
        print(f"\nmachine bound for this workload: {cores} cores / ({cpu['client'] * 1000:.2f} ms client + "
              f"{cpu['standin'] * 1000:.2f} ms stand-in CPU per call) x {RECORDS_PER_CALL} = {bound:,.0f} rows/s")
        print("  client: the script's CPU per call, main process and workers, everything included (reading, "
              "transforming, writing, starting the workers), medians of its runs: "
              + ", ".join(f"{run['summary']['cpu_seconds'] / run['calls'] * 1000:.2f}" for run in results["script"])
              + f" ms; the SDK's own: {sdk_cpu * 1000:.2f} ms")
    print(f"bare-call bound: {cores} / ({bare['client'] * 1000:.2f} ms + {bare['standin'] * 1000:.2f} ms) x "
          f"{RECORDS_PER_CALL} = {bare_bound:,.0f} rows/s: a client doing nothing but these calls (25 prebuilt "
          f"records, the script's request path, {cores} processes x {BOUND_THREADS} threads; medians of "
          + ", ".join(f"{c['load']['client'] * 1000:.2f} + {c['load']['standin'] * 1000:.2f}" for c in calibrations)
          + f" ms); those bare calls reached {median_of('load', 'rate'):,.0f} rows/s")
    print(f"  one call at a time instead: {median_of('single', 'client') * 1000:.2f} ms client + "
          f"{median_of('single', 'standin') * 1000:.2f} ms stand-in; botocore's own request path (parameters "
          f"validated and serialized): {median_of('single', 'botocore') * 1000:.2f} ms client")

    medians = {}
    if bound is not None:
        print(f"\n{'case':<34} {'rows':>7} " + " ".join(f"{'rep ' + str(r):>8}" for r in range(1, args.reps + 1))
              + f" {'median':>8} {'of bound':>9} {'of bare':>8}")
        for case, runs in results.items():
            rates = [args.rows / run["seconds"] for run in runs]
            medians[case] = statistics.median(rates)
            label = ("script (default: vCPUs x 16 calls)" if case == "script"
                     else f"sdk batch ({best[0]} proc x {best[1]} workers)" if best else case)
            print(f"{label:<34} {args.rows:>7,} " + " ".join(f"{rate:>8,.0f}" for rate in rates)
                  + f" {medians[case]:>8,.0f} {medians[case] / bound:>9.0%} {medians[case] / bare_bound:>8.0%}")
        ratios = [(args.rows / s["seconds"]) / (args.rows / k["seconds"])
                  for s, k in zip(results["script"], results["sdk"], strict=True)]
        print(f"{'script / sdk, per repetition':<34} {'':>7} " + " ".join(f"{ratio:>7.2f}x" for ratio in ratios)
              + f" {statistics.median(ratios):>7.2f}x")
    clean_s = [run["seconds"] for run in clean]
    throttled_s = [run["seconds"] for run in throttled]
    throttle_ratio = statistics.median(throttled_s) / statistics.median(clean_s)
    print(f"\nthrottling, {len(source):,} abalone rows, first {THROTTLED_CALLS} calls throttled: clean "
          + ", ".join(f"{s:.2f}" for s in clean_s) + " s; throttled " + ", ".join(f"{s:.2f}" for s in throttled_s)
          + " s; per repetition " + ", ".join(f"{t / c:.2f}" for t, c in zip(throttled_s, clean_s, strict=True))
          + f"; medians {throttle_ratio:.2f}")
    if memory is not None:
        print(f"\nmemory, {args.rss_rows:,} rows ({memory_rate:,.0f} rows/s): peak RSS of the job's "
              f"{memory.peak_processes} processes together {memory.peak_rss / 1024:,.0f} MB, PSS "
              f"{memory.peak_pss / 1024:,.0f} MB ({memory.samples} samples)")

    print(f"\n{'target':<40} {'measured':>10}  verdict")
    rows_out = []
    if medians and bound is not None:
        ratio = medians["script"] / medians["sdk"]
        share = medians["script"] / bound
        rows_out.append((f">= {TARGETS['sdk']:.0f}x the SDK's best", f"{ratio:.2f}x", ratio >= TARGETS["sdk"],
                         f"{TARGETS['sdk'] - ratio:.2f}x short"))
        rows_out.append((f">= {TARGETS['bound']:.0%} of the machine bound", f"{share:.0%}", share >= TARGETS["bound"],
                         f"{(TARGETS['bound'] - share) * 100:.0f} points short"))
        bare_share = medians["script"] / bare_bound
        rows_out.append(("  (of the bare-call bound: no target)", f"{bare_share:.0%}", True, ""))
    rows_out.append((f"throttled / clean <= {TARGETS['throttled']}", f"{throttle_ratio:.2f}",
                     throttle_ratio <= TARGETS["throttled"], f"{throttle_ratio - TARGETS['throttled']:.2f} over"))
    if memory is not None:
        peak = memory.peak_rss / 1024
        rows_out.append((f"peak RSS < {TARGETS['rss_mb']:.0f} MB ({args.rss_rows:,} rows)", f"{peak:,.0f} MB",
                         peak < TARGETS["rss_mb"], f"{peak - TARGETS['rss_mb']:,.0f} MB over"))
    else:
        rows_out.append((f"peak RSS < {TARGETS['rss_mb']:.0f} MB", "not run", True, "run with --rss"))
    for name, measured, ok, miss in rows_out:
        shown = "(--rss)" if measured == "not run" else "" if name.startswith("  ") else verdict(ok)
        print(f"{name:<40} {measured:>10}  {shown}" + ("" if ok else f" ({miss})"))
    return None


if __name__ == "__main__":
    main()
