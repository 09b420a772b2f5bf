"""The micro-batching simulation: a burst of 1,000 uploads under an account limit of 20 concurrent pipeline
executions, through the per-file wiring and through the batched mode, with the real start Lambda.

How each part is modelled, and the AWS documents behind it: tests/microbatch_support.py. The targets and the
side-by-side figures: docs/batching.md (``python benchmarks/simulate_microbatch.py`` prints them).
"""

from __future__ import annotations

import pytest
from microbatch_support import (
    SAGEMAKER_MODEL,
    Outcome,
    Scenario,
    ingest_with_real_script,
    manifest_urls,
    run_batched,
    run_per_file,
    service_error,
)

SCENARIO = Scenario()  # 1,000 files over 60 s, 20 executions, BatchSize 100, window 60 s
# Other projects of the account hold 15 of the 20 executions for the first 30 minutes.
CONTENDED = Scenario(background=((0.0, 1_800.0),) * 15)


@pytest.fixture(scope="module")
def per_file() -> Outcome:
    return run_per_file(SCENARIO)


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    def real_script_on_the_first_batch(w):
        first = w.sagemaker.executions[0]
        body = w.s3.get_object(Bucket=first.manifest_url.split("/")[2],
                               Key=first.manifest_url.split("/", 3)[3])["Body"].read()
        status, written = ingest_with_real_script(w, first, tmp_path_factory.mktemp("real-script"))
        return {"status": status, "written": written, "listed": manifest_urls(body)}

    return run_batched(SCENARIO, inspect=real_script_on_the_first_batch)


@pytest.fixture(scope="module")
def contended() -> Outcome:
    return run_batched(CONTENDED)


def assert_every_file_ingested_exactly_once(outcome: Outcome) -> None:
    assert set(outcome.ingestions) == set(outcome.rows), "files never ingested"
    assert [url for url, times in outcome.ingestions.items() if times != 1] == []
    assert {url: outcome.records[url] for url in outcome.rows} == outcome.rows  # records per file = its rows


def assert_quota_respected(outcome: Outcome) -> None:
    """At no moment more executions than the account allows (this project's plus the background)."""
    moments = sorted({e.started for e in outcome.executions})
    for moment in moments:
        own = sum(1 for e in outcome.executions if e.started <= moment < e.ends)
        others = sum(1 for start, end in outcome.scenario.background if start <= moment < end)
        assert own + others <= outcome.scenario.limit, moment


def test_batched_mode_ingests_every_file_once_and_dead_letters_none(batched: Outcome) -> None:
    assert_every_file_ingested_exactly_once(batched)
    assert batched.files_dead_lettered == 0 and batched.dlq_at_end == 0
    assert batched.extra["invocation_errors"] == 0
    assert_quota_respected(batched)
    # one execution per batch, each listing at most BatchSize files, together every file once
    listed = [url for execution in batched.executions for url in execution.urls]
    assert sorted(listed) == sorted(batched.rows)
    assert max(len(execution.urls) for execution in batched.executions) <= SCENARIO.batch_size
    assert all(execution.manifest_url for execution in batched.executions)


def test_per_file_mode_dead_letters_the_burst_as_today(per_file: Outcome) -> None:
    """Per file, StartPipelineExecution fails with ResourceLimitExceeded beyond the quota, Lambda retries twice and
    the rest of the burst lands in the dead-letter queue; only the operator's redrives finish the work."""
    assert per_file.refused > 0
    assert per_file.files_dead_lettered >= SCENARIO.files - 2 * SCENARIO.limit
    assert per_file.extra["redrive_rounds"] > 0
    assert per_file.dlq_at_end == 0  # after the redrives
    assert_every_file_ingested_exactly_once(per_file)
    assert per_file.executions_started == SCENARIO.files  # one execution per file, none twice
    assert len({execution.token for execution in per_file.executions}) == SCENARIO.files
    assert_quota_respected(per_file)


def test_batched_targets_side_by_side(batched: Outcome, per_file: Outcome) -> None:
    """The batched mode's targets (docs/batching.md): zero files in the dead-letter queue, at least 20x fewer
    executions and at least 10x fewer instance-minutes than per file."""
    assert batched.files_dead_lettered == 0
    assert per_file.executions_started >= 20 * batched.executions_started
    assert per_file.instance_minutes >= 10 * batched.instance_minutes
    assert batched.wall_minutes < per_file.wall_minutes


def test_back_pressure_under_a_shared_quota(contended: Outcome) -> None:
    """Refused batches come back later (visibility timeouts), not in the dead-letter queue."""
    assert contended.refused > 0 and contended.deferred_batches > 0
    assert contended.files_dead_lettered == 0 and contended.dlq_at_end == 0
    assert_every_file_ingested_exactly_once(contended)
    assert_quota_respected(contended)
    assert contended.duplicates == 0  # no batch started twice


def test_the_real_processing_script_ingests_what_a_batch_manifest_lists(batched: Outcome) -> None:
    """The seed code's transform_and_ingest.py, run as the pipeline's manifest step on the manifest the Lambda
    wrote for the first batch, writes each listed file's rows: what the simulation's counter counts."""
    real = batched.extra["inspected"]
    assert real["status"] == 0
    assert sorted(real["written"]) == sorted(real["listed"])
    assert {url: real["written"][url] for url in real["listed"]} == {url: batched.rows[url] for url in real["listed"]}


def test_the_stand_in_refuses_as_the_real_client_raises() -> None:
    """ResourceLimitExceeded is a modeled error of StartPipelineExecution (botocore's SageMaker service model);
    the stand-in raises the modeled exception class with the parsed error, as a real client would."""
    operation = SAGEMAKER_MODEL.operation_model("StartPipelineExecution")
    assert "ResourceLimitExceeded" in [shape.name for shape in operation.error_shapes]
    error = service_error("ResourceLimitExceeded", "limit reached")
    assert type(error).__name__ == "ResourceLimitExceeded"
    assert error.response["Error"] == {"Code": "ResourceLimitExceeded", "Message": "limit reached"}
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.operation_name == "StartPipelineExecution"
