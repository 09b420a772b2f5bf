"""Throughput machinery of the processing script: worker processes, the shared throttle control, the request.

What AWS says the script must live with:

* BatchWriteRecord takes 1 to 25 entries; its response lists the entries that failed (``Errors``: the entry,
  an ``ErrorCode``, an ``ErrorMessage``) and those it did not process (``UnprocessedEntries``: "These entries
  can be retried") -- "BatchWriteRecord" and "BatchWriteRecordError", SageMaker Feature Store Runtime API
  reference. Throttled calls fail with ``ThrottlingException`` (HTTP 400), an overloaded service answers
  ``ServiceUnavailable`` (503) -- "Common Errors", SageMaker API reference; provisioned feature groups are
  throttled above their capacity ("ThroughputConfig", SageMaker API reference).
* Requests are signed with Signature Version 4, whose canonical request includes the hash of the payload: a
  body changed after signing is refused ("Create a signed AWS API request", IAM user guide). The stand-in
  does not check signatures, so the test below re-computes the signature itself.

The stand-in throttles the way the service does (whole calls, single entries, unprocessed entries); the
worker processes are real processes (``fork``), talking to the stand-in over 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections import Counter
from pathlib import Path

import boto3
import botocore.auth
import pandas as pd
import pytest
from botocore.awsrequest import AWSRequest
from conftest import DATA_DIR, REGION
from featurestore_standin import FeatureStoreStandIn

import feature_store_writer
import ingest
import transform
import transform_and_ingest as tai
import workers
from feature_store_writer import AIMD, Gate, batch_write, runtime_client, shared_aimd_state
from ingest import FAILED_ROW_NUMBER, FAILED_ROW_SOURCE, FAILURE_REASON

ABALONE_CSV = DATA_DIR / "abalone_sample.csv"
ROWS = 40  # data rows of abalone_sample.csv
SOURCE = "s3://data-bucket/uploads/abalone.csv"


@pytest.fixture
def abalone(standin: FeatureStoreStandIn, abalone_definition: dict) -> FeatureStoreStandIn:
    standin.add_group("abalone", abalone_definition)
    return standin


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """No waiting between attempts (the worker processes inherit the setting: they are forked)."""
    monkeypatch.setattr(feature_store_writer, "RETRY_BASE_DELAY", 0.001)


def run(tmp_path: Path, csv: str | Path, *extra: str) -> int:
    inputs = tmp_path / "in"
    inputs.mkdir(exist_ok=True)
    target = inputs / "abalone.csv"
    if isinstance(csv, Path):
        target.write_bytes(csv.read_bytes())
    else:
        target.write_text(csv, encoding="utf-8")
    return tai.main(["--input-dir", str(inputs), "--feature-group-name", "abalone", "--region", REGION,
                     "--failed-rows-dir", str(tmp_path / "failed"), "--source-uri", SOURCE, "--max-workers", "4",
                     "--exit-message-file", str(tmp_path / "message"), *extra])


def abalone_rows(copies: int) -> str:
    """The sample's rows ``copies`` times over: 40 x copies data rows."""
    header, *rows = ABALONE_CSV.read_text(encoding="utf-8").splitlines()
    return "\n".join([header, *rows * copies]) + "\n"


def summary_of(caplog: pytest.LogCaptureFixture) -> dict:
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("summary ")]
    return json.loads(line.removeprefix("summary "))


def spy_on_transforms(monkeypatch: pytest.MonkeyPatch, log: Path, die_at_row: int = 0) -> int:
    """Record the process id of every chunk transformation in ``log``; a worker process that gets the chunk
    starting at ``die_at_row`` exits at once (code 9), as the kernel's OOM killer would end it."""
    main_pid = os.getpid()
    original = workers.transform_chunk

    def transform_chunk(chunk: pd.DataFrame, *args: object, first_row: int, **kwargs: object) -> object:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"{os.getpid()}\n")
        if first_row == die_at_row and os.getpid() != main_pid:
            os._exit(9)
        return original(chunk, *args, first_row=first_row, **kwargs)

    monkeypatch.setattr(workers, "transform_chunk", transform_chunk)
    return main_pid


# -- worker processes ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_retries")
def test_two_processes_write_every_row_once_and_keep_the_failures(
    abalone: FeatureStoreStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(transform, "CHUNK_ROWS", 7)  # 40 rows: 6 chunks, shared by the main process and a worker
    main_pid = spy_on_transforms(monkeypatch, tmp_path / "pids")
    lines = ABALONE_CSV.read_text(encoding="utf-8").splitlines()
    lines[3] = "M,oops,0.365,0.095,0.514,0.2245,0.101,0.15,15"  # data row 3
    lines[33] = "X,0.3,0.365,0.095,0.514,0.2245,0.101,0.15,15"  # data row 33
    abalone.fail_next_entries(1, "ValidationError")  # and the service refuses one entry
    with caplog.at_level(logging.INFO):
        assert run(tmp_path, "\n".join(lines) + "\n", "--processes", "2") == tai.EXIT_NOT_ALL_INGESTED

    pids = Counter((tmp_path / "pids").read_text().split())
    assert len(pids) == 2 and str(main_pid) in pids and sum(pids.values()) == 6  # each chunk once, in 2 processes
    written = Counter(record["record_id"] for _, record in abalone.written)
    assert set(written.values()) == {1} and len(written) == ROWS - 3  # no row twice, three not written
    failed = pd.read_csv(tmp_path / "failed" / "abalone.csv", dtype=str)
    assert set(written) | {f"{SOURCE}#{row}" for row in failed[FAILED_ROW_NUMBER]} == {
        f"{SOURCE}#{row}" for row in range(1, ROWS + 1)}  # stable ids: <source>#<row>, every row accounted
    reasons = dict(zip(failed[FAILED_ROW_NUMBER].astype(int), failed[FAILURE_REASON], strict=True))
    assert reasons.pop(3) == "column 'length': cannot cast to Fractional: 'oops'"
    assert reasons.pop(33) == "column 'sex': no one-hot feature for value 'X'"
    assert [reason.split(":")[0] for reason in reasons.values()] == ["ValidationError"]
    assert set(failed[FAILED_ROW_SOURCE]) == {SOURCE}
    summary = summary_of(caplog)
    assert (summary["processes"], summary["written"], summary["failed"]) == (2, ROWS - 3, 3)


def test_a_file_of_one_chunk_is_written_by_the_main_process(
    abalone: FeatureStoreStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No worker process is started for what one process writes at once (a small upload)."""
    main_pid = spy_on_transforms(monkeypatch, tmp_path / "pids")
    with caplog.at_level(logging.INFO):
        assert run(tmp_path, ABALONE_CSV, "--processes", "2") == tai.EXIT_OK
    assert (tmp_path / "pids").read_text().split() == [str(main_pid)]
    assert summary_of(caplog)["processes"] == 1 and abalone.unique_ids("abalone") == ROWS


@pytest.mark.usefixtures("fast_retries")
def test_rows_of_a_worker_process_that_dies_are_reported_not_lost(
    abalone: FeatureStoreStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(transform, "CHUNK_ROWS", 4)  # 10 chunks; the first goes to the worker
    main_pid = spy_on_transforms(monkeypatch, tmp_path / "pids", die_at_row=1)
    with caplog.at_level(logging.INFO):
        assert run(tmp_path, ABALONE_CSV, "--processes", "2") == tai.EXIT_NOT_ALL_INGESTED

    written = Counter(record["record_id"] for _, record in abalone.written)
    assert set(written.values()) == {1}
    failed = pd.read_csv(tmp_path / "failed" / "abalone.csv", dtype=str)
    failed_rows = set(failed[FAILED_ROW_NUMBER].astype(int))
    assert set(range(1, 5)) <= failed_rows  # the chunk it died on, at least (and any other it had in hand)
    assert failed[FAILURE_REASON].str.contains("worker process writing it exited with code 9").all()
    everything = {f"{SOURCE}#{row}" for row in range(1, ROWS + 1)}
    assert set(written) | {f"{SOURCE}#{row}" for row in failed_rows} == everything  # every row accounted for
    assert not {f"{SOURCE}#{row}" for row in range(1, 5)} & set(written)
    assert len(written) >= ROWS - 4 * workers.TASKS_PER_PROCESS  # the main process wrote the rest
    assert Counter((tmp_path / "pids").read_text().split())[str(main_pid)] >= 10 - workers.TASKS_PER_PROCESS
    assert "exited with code 9" in " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


@pytest.mark.parametrize("processes", [1, 2])
def test_chunks_in_hand_are_bounded_whatever_the_file_size(
    abalone: FeatureStoreStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    """Flat memory: the main process reads ahead no more than the writers can take."""
    monkeypatch.setattr(transform, "CHUNK_ROWS", 5)  # 200 rows: 40 chunks
    in_hand: list[int] = []
    original = ingest.Ingestion._hand_out

    def hand_out(self: ingest.Ingestion, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        in_hand.append(len(self._pending))

    monkeypatch.setattr(ingest.Ingestion, "_hand_out", hand_out)
    assert run(tmp_path, abalone_rows(5), "--processes", str(processes)) == tai.EXIT_OK
    capacity = workers.InProcess.capacity + workers.TASKS_PER_PROCESS * (processes - 1)
    assert len(in_hand) == 40 and max(in_hand) <= capacity
    assert abalone.unique_ids("abalone") == abalone.written_count == 5 * ROWS  # each row once


# -- throttling ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_retries")
@pytest.mark.parametrize("processes", [1, 2])
def test_sustained_throttling_of_a_share_of_calls_loses_no_row(
    abalone: FeatureStoreStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    processes: int,
) -> None:
    monkeypatch.setattr(transform, "CHUNK_ROWS", 100)  # 400 rows: 4 chunks of 4 batches of 25
    abalone.throttle_every(3)  # every third call, for the whole job
    with caplog.at_level(logging.INFO):
        assert run(tmp_path, abalone_rows(10), "--processes", str(processes)) == tai.EXIT_OK
    batches = 400 // 25
    assert abalone.written_count == 400 and abalone.throttled >= (batches - 1) // 2
    # Every call is either throttled (and sent again) or succeeds, once per batch: nothing else is sent.
    assert abalone.calls["BatchWriteRecord"] == batches + abalone.throttled
    summary = summary_of(caplog)
    assert (summary["write_calls"], summary["throttled_calls"]) == (batches + abalone.throttled, abalone.throttled)


@pytest.mark.usefixtures("fast_retries")
def test_only_the_throttled_and_unprocessed_entries_are_sent_again(
    abalone: FeatureStoreStandIn, tmp_path: Path
) -> None:
    abalone.fail_next_entries(3, "ThrottlingException")
    abalone.fail_next_entries(2, None)  # UnprocessedEntries
    assert run(tmp_path, ABALONE_CSV, "--processes", "1") == tai.EXIT_OK
    assert abalone.unique_ids("abalone") == ROWS and abalone.written_count == ROWS  # each row written once
    # The two batches (25 + 15 entries) and one more call with the five entries to retry, or two calls
    # when they came from different batches (the first five entries the stand-in handled, in either batch).
    sizes = sorted(abalone.batch_sizes)
    assert sizes[-2:] == [15, 25] and sum(sizes[:-2]) == 5 and len(sizes) in (3, 4)


# -- the AIMD control --------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_throttles_in_one_round_trip_halves_the_limit_once() -> None:
    clock = Clock()
    aimd = AIMD(32, 2, clock=clock)
    sent = [clock() for _ in range(32)]  # 32 calls in flight
    clock.now += 0.01
    decreases = [aimd.throttled(at) for at in sent[:5]]  # five of them throttled
    assert decreases == [True, False, False, False, False] and aimd.limit == 16
    clock.now += 0.01
    assert aimd.throttled(clock()) and aimd.limit == 8  # a call sent after the decrease: throttled again
    for _ in range(10):
        clock.now += 0.01
        aimd.throttled(clock())
    assert aimd.limit == 2  # never below the minimum


def test_after_a_burst_the_limit_climbs_back_one_call_per_round_trip() -> None:
    """Additive increase: each success adds 1 / limit, so each round trip of successes (as many as the
    limit) adds about one call. From the minimum m back to the maximum M takes between sum(m..M-1) and
    sum(m+1..M) successes: a burst costs about its own length, not the rest of the job."""
    clock = Clock()
    minimum, maximum = 2, 32
    aimd = AIMD(maximum, minimum, clock=clock)
    while aimd.limit > minimum:
        clock.now += 0.01
        aimd.throttled(clock())
    successes = 0
    while aimd.limit < maximum:
        aimd.succeeded()
        successes += 1
    assert sum(range(minimum, maximum)) <= successes <= sum(range(minimum + 1, maximum + 1))
    aimd.succeeded()
    assert aimd.limit == maximum


def test_the_limit_is_shared_by_the_worker_processes() -> None:
    """A throttle seen by one process lowers the limit of every process; each process takes its share."""
    context = multiprocessing.get_context(workers.start_method())
    state = shared_aimd_state(context, 32)
    here = Gate(AIMD(32, 2, state=state), share=0.5)
    assert here.allowed() == 16

    def throttle_in_another_process() -> None:
        AIMD(32, 2, state=state).throttled(sent_at=0.0)

    process = context.Process(target=throttle_in_another_process)
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert here.aimd.limit == 16 and here.allowed() == 8
    assert not here.aimd.throttled(sent_at=0.0)  # that call was in flight before the other's decrease


# -- the request ------------------------------------------------------------------------------------------------


def test_the_prepared_request_is_the_one_botocore_would_send_and_its_signature_covers_it(
    abalone: FeatureStoreStandIn,
) -> None:
    abalone.record_requests = True
    frame = pd.DataFrame({"record_id": [f'b/ünï "quoted" \\ {row}.csv#{row}' for row in range(1, 4)],
                          "event_time": "2024-05-01T12:00:00.000Z", "length": ["0.455", "1e-7", "3"]})
    schema = transform.Schema("abalone", "record_id", "event_time",
                              {"record_id": "String", "event_time": "String", "length": "Fractional"})
    chunk = transform.transform_chunk(frame, transform.plan_file(frame, schema), schema, source="unused",
                                      first_row=1, event_time_now="unused")
    session = boto3.session.Session(region_name=REGION)
    plain = session.client("sagemaker-featurestore-runtime")  # botocore's own serializer, parameters validated
    plain.batch_write_record(Entries=[{"FeatureGroupName": "abalone", "Record": r} for _, r in chunk.records])
    response = batch_write(runtime_client(session, 4), "abalone", [entry for _, entry in chunk.entries("abalone")])
    assert response["Errors"] == [] and response["UnprocessedEntries"] == []
    (_, _, _, expected), (method, path, headers, body) = abalone.requests
    assert json.loads(body) == json.loads(expected) and len(json.loads(body)["Entries"]) == 3
    assert int(headers["Content-Length"]) == len(body)
    assert abalone.written_count == 6 and abalone.unique_ids("abalone") == 3

    # Signature Version 4 of what was received (its signed headers, its time, the body as received): the
    # signature must be the one sent, so the body was in place before botocore signed the request.
    authorization = dict(part.split("=", 1) for part in headers["Authorization"].split(" ", 1)[1].split(", "))
    signed = authorization["SignedHeaders"].split(";")
    request = AWSRequest(method=method, url=f"http://{headers['Host']}{path}", data=body,
                         headers={k: v for k, v in headers.items() if k.lower() in signed})
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = botocore.auth.SigV4Auth(session.get_credentials(), "sagemaker", REGION)
    assert signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request) == (
        authorization["Signature"])
    request.data = expected  # another body (botocore's own spacing) has another signature: the check is real
    assert signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request) != (
        authorization["Signature"])
