"""The processing job (processing/, entry point transform_and_ingest.py) end to end, against the Feature Store
stand-in on 127.0.0.1."""

from __future__ import annotations

import ast
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import DATA_DIR, PROCESSING_DIR
from featurestore_standin import FeatureStoreStandIn

import deploy
import feature_store_writer
import transform
import transform_and_ingest as tai
from ingest import FAILED_ROW_NUMBER, FAILURE_REASON

ABALONE_CSV = DATA_DIR / "abalone_sample.csv"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore makes one attempt per call, so the script's own retries are what is tested; no waiting."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(feature_store_writer, "RETRY_BASE_DELAY", 0.001)


@pytest.fixture
def abalone(standin: FeatureStoreStandIn, abalone_definition: dict) -> FeatureStoreStandIn:
    standin.add_group("abalone", abalone_definition)
    return standin


def place(directory: Path, *files: tuple[str, Path | str]) -> Path:
    """Lay out an input directory: (relative path, source file or CSV text)."""
    for relative, content in files:
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_text(content, encoding="utf-8")
    return directory


def ingest(input_dir: Path, failed_dir: Path, group: str = "abalone", *extra: str) -> int:
    return tai.main(["--input-dir", str(input_dir), "--feature-group-name", group, "--region", "eu-west-1",
                     "--failed-rows-dir", str(failed_dir), "--max-workers", "4", *extra])


def test_abalone_rows_arrive_one_hot_encoded_unscaled_with_stable_ids(
    abalone: FeatureStoreStandIn, tmp_path: Path
) -> None:
    inputs = place(tmp_path / "in", ("abalone_sample.csv", ABALONE_CSV))
    source = "s3://data-bucket/uploads/abalone_sample.csv"
    assert ingest(inputs, tmp_path / "failed", "abalone", "--source-uri", source) == 0

    records = abalone.latest("abalone")
    assert len(records) == 40 and abalone.calls["BatchWriteRecord"] == 2
    first = records[f"{source}#1"]  # M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15
    assert first["sex_m"] == "1" and first["sex_f"] == "0" and first["sex_i"] == "0"
    assert (first["length"], first["whole_weight"], first["rings"]) == ("0.455", "0.514", "15")
    raw = pd.read_csv(ABALONE_CSV, dtype=str)
    for column, feature in (("Length", "length"), ("Viscera weight", "viscera_weight"), ("Rings", "rings")):
        # no scaling, no float noise: the values arrive as written in the file
        assert sorted(record[feature] for record in records.values()) == sorted(raw[column])
    assert not (tmp_path / "failed").exists()

    assert ingest(inputs, tmp_path / "failed", "abalone", "--source-uri", source) == 0  # a re-run
    assert len(abalone.written) == 80 and len(abalone.latest("abalone")) == 40  # same ids: overwritten


def test_files_with_the_same_name_never_share_record_ids(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    for prefix in ("team-a", "team-b"):
        inputs = place(tmp_path / prefix, ("batch.csv", ABALONE_CSV))
        assert ingest(inputs, tmp_path / "failed", "abalone", "--source-uri", f"s3://b/{prefix}/batch.csv") == 0
    nested = place(tmp_path / "nested", ("x/batch.csv", ABALONE_CSV), ("y/batch.csv", ABALONE_CSV))
    assert ingest(nested, tmp_path / "failed", "abalone", "--source-uri", "s3://b/nested/") == 0
    ids = abalone.latest("abalone")
    assert len(ids) == 4 * 40
    assert {"s3://b/team-a/batch.csv#1", "s3://b/team-b/batch.csv#1", "s3://b/nested/x/batch.csv#1",
            "s3://b/nested/y/batch.csv#1"} <= set(ids)


def test_another_dataset_with_its_own_feature_group(
    standin: FeatureStoreStandIn, customers_definition: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    standin.add_group("customers", customers_definition)
    inputs = place(tmp_path / "in", ("customers.csv", DATA_DIR / "customers.csv"))
    with caplog.at_level(logging.WARNING):
        assert ingest(inputs, tmp_path / "failed", "customers") == 0
    records = standin.latest("customers")
    assert sorted(records) == ["1001", "1002", "1003", "1004"]  # the identifier column, cast to Integral
    assert records["1001"] == {"customer_id": "1001", "updated_at": "1709287200.0", "age": "34",
                               "plan_basic": "1.0", "plan_premium": "0.0", "monthly_spend": "12.5",
                               "country": "PT"}
    assert records["1004"]["updated_at"] == "1709363700.0"  # +01:00 converted to epoch seconds
    assert records["1003"]["plan_basic"] == "1.0" and records["1004"]["plan_premium"] == "1.0"
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped == ["customers.csv: columns that are not features of customers are dropped: internal_note"]


def test_throttled_calls_are_retried_by_botocore_and_lose_no_row(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    abalone.throttle_next_calls(2)
    inputs = place(tmp_path / "in", ("abalone_sample.csv", ABALONE_CSV))
    assert ingest(inputs, tmp_path / "failed") == 0
    assert abalone.throttled == 2
    assert len(abalone.latest("abalone")) == 40


@pytest.mark.usefixtures("fast_retries")
def test_throttled_and_unprocessed_entries_of_a_batch_are_retried(
    abalone: FeatureStoreStandIn, tmp_path: Path
) -> None:
    abalone.throttle_next_calls(1)  # a whole call, not retried by botocore here: the script retries it
    abalone.fail_next_entries(5, "ThrottlingException")
    abalone.fail_next_entries(3, None)  # returned in UnprocessedEntries
    abalone.fail_next_entries(2, "InternalFailure")
    inputs = place(tmp_path / "in", ("abalone_sample.csv", ABALONE_CSV))
    assert ingest(inputs, tmp_path / "failed") == 0
    assert len(abalone.latest("abalone")) == 40
    assert abalone.calls["BatchWriteRecord"] > 2


@pytest.mark.usefixtures("fast_retries")
def test_rows_that_cannot_be_cast_or_written_are_kept_and_fail_the_job(
    abalone: FeatureStoreStandIn, tmp_path: Path
) -> None:
    lines = ABALONE_CSV.read_text().splitlines()
    lines[3] = "M,oops,0.365,0.095,0.514,0.2245,0.101,0.15,15"  # data row 3
    lines[5] = "X,0.3,0.365,0.095,0.514,0.2245,0.101,0.15,15"  # data row 5
    inputs = place(tmp_path / "in", ("sub/bad.csv", "\n".join(lines) + "\n"))
    abalone.fail_next_entries(1, "ValidationError")  # the service refuses one entry
    assert ingest(inputs, tmp_path / "failed") == 1
    assert len(abalone.latest("abalone")) == 37

    failed = pd.read_csv(tmp_path / "failed" / "sub" / "bad.csv", dtype=str)
    assert list(failed.columns[:2]) == ["Sex", "Length"]  # the original columns, for a fix and re-upload
    reasons = dict(zip(failed[FAILED_ROW_NUMBER].astype(int), failed[FAILURE_REASON], strict=True))
    assert reasons.pop(3) == "column 'length': cannot cast to Fractional: 'oops'"
    assert reasons.pop(5) == "column 'sex': no one-hot feature for value 'X'"
    assert [reason.split(":")[0] for reason in reasons.values()] == ["ValidationError"]


@pytest.mark.usefixtures("fast_retries")
def test_persistent_throttling_ends_in_failed_rows_not_in_silence(
    abalone: FeatureStoreStandIn, tmp_path: Path
) -> None:
    abalone.fail_next_entries(10_000, "ThrottlingException")
    inputs = place(tmp_path / "in", ("a.csv", ABALONE_CSV))
    assert ingest(inputs, tmp_path / "failed") == 1
    failed = pd.read_csv(tmp_path / "failed" / "a.csv")
    assert len(failed) == 40
    attempts = feature_store_writer.MAX_ATTEMPTS
    assert failed[FAILURE_REASON].str.startswith(f"not written after {attempts} attempts: ThrottlingException").all()
    assert abalone.calls["BatchWriteRecord"] == 2 * attempts  # both batches (25 + 15 rows), each that often


@pytest.mark.usefixtures("fast_retries")
def test_put_record_is_used_when_botocore_has_no_batch_write(
    abalone: FeatureStoreStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feature_store_writer, "supports_batch_write", lambda client: False)
    abalone.throttle_next_calls(3)
    inputs = place(tmp_path / "in", ("a.csv", ABALONE_CSV))
    assert ingest(inputs, tmp_path / "failed") == 0
    assert abalone.calls["PutRecord"] == 43 and abalone.calls["BatchWriteRecord"] == 0
    assert len(abalone.latest("abalone")) == 40


def test_the_installed_botocore_has_batch_write_record() -> None:
    import boto3

    client = boto3.client("sagemaker-featurestore-runtime", region_name="eu-west-1")
    assert feature_store_writer.supports_batch_write(client)


@pytest.mark.usefixtures("fast_retries")
def test_large_files_are_read_in_chunks_with_continuous_row_numbers(
    abalone: FeatureStoreStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transform, "CHUNK_ROWS", 7)
    lines = ABALONE_CSV.read_text().splitlines()
    lines[30] = "M,0.1,0.365,0.095,0.514,0.2245,0.101,0.15,many"
    inputs = place(tmp_path / "in", ("a.csv", "\n".join(lines) + "\n"))
    assert ingest(inputs, tmp_path / "failed", "abalone", "--source-uri", "s3://b/a.csv") == 1
    assert len(abalone.latest("abalone")) == 39 and "s3://b/a.csv#40" in abalone.latest("abalone")
    failed = pd.read_csv(tmp_path / "failed" / "a.csv")
    assert failed[FAILED_ROW_NUMBER].tolist() == [30] and failed["Rings"].tolist() == ["many"]


@pytest.mark.filterwarnings("ignore:Length of header or names does not match length of data")
def test_short_rows_and_trailing_delimiters(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    csv = ("Sex,Length,Diameter,Height,Whole weight,Shucked weight,Viscera weight,Shell weight,Rings\n"
           "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15,\n"  # a trailing delimiter
           "F,0.53,0.42\n"  # a short row: the missing features are left out of the record
           "NA,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,10\n")  # "NA" is a value, not a missing one
    inputs = place(tmp_path / "in", ("short.csv", csv))
    assert ingest(inputs, tmp_path / "failed", "abalone", "--source-uri", "s3://b/short.csv") == 1
    records = abalone.latest("abalone")
    assert records["s3://b/short.csv#1"]["rings"] == "15" and records["s3://b/short.csv#1"]["sex_m"] == "1"
    assert set(records["s3://b/short.csv#2"]) == {"record_id", "event_time", "sex_m", "sex_f", "sex_i", "length",
                                                  "diameter"}
    failed = pd.read_csv(tmp_path / "failed" / "short.csv", keep_default_na=False)
    assert failed[FAILURE_REASON].tolist() == ["column 'sex': no one-hot feature for value 'NA'"]


def test_a_file_with_clashing_columns_is_set_aside(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    inputs = place(tmp_path / "in", ("good.csv", ABALONE_CSV), ("clash.csv", "Length,length \n1,2\n"))
    assert ingest(inputs, tmp_path / "failed") == 1
    assert (tmp_path / "failed" / "clash.csv").read_text() == "Length,length \n1,2\n"
    assert len(abalone.latest("abalone")) == 40


def test_a_file_meant_for_another_group_is_set_aside(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    inputs = place(tmp_path / "in", ("customers.csv", DATA_DIR / "customers.csv"))
    assert ingest(inputs, tmp_path / "failed") == 1
    assert abalone.written == []  # no records made of nothing but an identifier and a time
    assert (tmp_path / "failed" / "customers.csv").exists()


def test_nothing_to_ingest_is_not_an_error(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    inputs = place(tmp_path / "in", ("notes.txt", "not a csv"), ("empty.csv", ""))
    assert ingest(inputs, tmp_path / "failed") == 0
    assert abalone.written == []


def test_an_unknown_feature_group_stops_the_job(standin: FeatureStoreStandIn, tmp_path: Path) -> None:
    inputs = place(tmp_path / "in", ("a.csv", ABALONE_CSV))
    assert ingest(inputs, tmp_path / "failed", "no-such-group") == 2


def test_the_shipped_folder_runs_on_its_own_like_in_the_container(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    """What the build ships (deploy.code_files), alone in a directory, run as SageMaker runs it:
    ``python3 <code dir>/transform_and_ingest.py`` from another working directory, a separate interpreter
    with no PYTHONPATH, endpoints only from the environment. Python puts the script's directory first on
    sys.path ("The initialization of the sys.path module search path", Python documentation), which is how
    the entry point finds its sibling modules."""
    code_dir = tmp_path / "code"
    for relative, body in deploy.code_files(PROCESSING_DIR).items():
        (code_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (code_dir / relative).write_bytes(body)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    inputs = place(tmp_path / "in", ("abalone_sample.csv", ABALONE_CSV))
    completed = subprocess.run(  # noqa: S603
        [sys.executable, str(code_dir / deploy.ENTRY_POINT), "--input-dir", str(inputs), "--feature-group-name",
         "abalone", "--failed-rows-dir", str(tmp_path / "failed"), "--source-uri", "s3://b/in/abalone_sample.csv"],
        cwd=elsewhere, env={**os.environ, "PYTHONPATH": ""}, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert len(abalone.latest("abalone")) == 40
    assert '"written": 40' in completed.stderr


def test_the_processing_folder_needs_only_the_standard_library_pandas_and_boto3() -> None:
    """The scikit-learn image has no SageMaker SDK: every module of the folder imports the standard library,
    pandas, boto3/botocore or another module of the folder, and no module hides a standard one (the folder
    comes first on sys.path in the container)."""
    modules = {path.stem for path in PROCESSING_DIR.glob("*.py")}
    assert deploy.ENTRY_POINT[:-3] in modules
    assert not modules & set(sys.stdlib_module_names), "a module of processing/ shadows the standard library"
    third_party: set[str] = set()
    for path in PROCESSING_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree)), (
            f"{path.name}: a relative import fails when the entry point runs as a script")
        third_party |= imported - set(sys.stdlib_module_names) - modules
    assert third_party == {"boto3", "botocore", "pandas"}
