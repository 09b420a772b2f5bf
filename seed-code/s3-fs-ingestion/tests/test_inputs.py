"""What the processing script ingests: exactly the named object, or the objects an input manifest lists.

The object path: SageMaker downloads ``InputDataUrl`` as an ``S3Prefix`` input, so ``in/a.csv`` also brings
``in/a.csv.old.csv`` ("S3DataType", ProcessingS3Input, CreateProcessingJob API reference: S3Prefix uses
"all objects with the specified key name prefix"). The manifest path: the execution names a SageMaker
ManifestFile document (``[{"prefix": "s3://bucket/"}, "key", ...]``, the S3DataSource reference) and the
script reads the listed objects from S3 itself, so an S3 key of any valid length works (S3 object keys:
up to 1,024 bytes of UTF-8, "Naming Amazon S3 objects"); a Linux file name component holds at most 255
bytes, which is why SageMaker could not download such an object into the container.

Inside a processing container SageMaker describes the job in ``/opt/ml/config/processingjobconfig.json``
(its ProcessingInputs with S3Uri and LocalPath) and the cluster in ``/opt/ml/config/resourceconfig.json``
(``current_host``, ``hosts``): "How Amazon SageMaker Processing Configures Your Processing Container"
(Build Your Own Processing Container, SageMaker developer guide). The tests write those files the same way.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest
from conftest import DATA_DIR, REGION
from featurestore_standin import FeatureStoreStandIn
from moto import mock_aws

import transform_and_ingest as tai
from ingest import FAILED_ROW_NUMBER, FAILED_ROW_SOURCE
from inputs import failed_rows_name, source_name

ABALONE_CSV = DATA_DIR / "abalone_sample.csv"
ROWS = 40  # data rows of abalone_sample.csv
DATA_BUCKET = "data-bucket"
MANIFEST_URL = "s3://project-artifacts/input-manifests/" + "0f" * 32 + ".manifest"
MAX_KEY_BYTES = 1024  # S3 object key, UTF-8 ("Naming Amazon S3 objects", Amazon S3 user guide)
MAX_NAME_BYTES = 255  # a Linux file name component (NAME_MAX)


@pytest.fixture
def abalone(standin: FeatureStoreStandIn, abalone_definition: dict) -> FeatureStoreStandIn:
    standin.add_group("abalone", abalone_definition)
    return standin


@pytest.fixture
def s3(abalone: FeatureStoreStandIn) -> Iterator[object]:
    """moto's S3 with the data bucket; the Feature Store calls still go to the stand-in (its endpoint)."""
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def job_config(path: Path, inputs: dict[str, tuple[str, Path]]) -> Path:
    """A processingjobconfig.json as SageMaker writes it: the job's ProcessingInputs, resolved."""
    document = {
        "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/pipelines-abc-transform",
        "ProcessingJobName": "pipelines-abc-transform",
        "ProcessingInputs": [
            {"InputName": name, "AppManaged": False, "S3Input": {
                "S3Uri": uri, "LocalPath": str(local), "S3DataType": "S3Prefix", "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}
            for name, (uri, local) in inputs.items()
        ],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def resource_config(path: Path, current: str, hosts: list[str]) -> Path:
    path.write_text(json.dumps({"current_host": current, "hosts": hosts}), encoding="utf-8")
    return path


def run_script(tmp_path: Path, *extra: str) -> int:
    return tai.main(["--feature-group-name", "abalone", "--region", REGION, "--max-workers", "4",
                     "--failed-rows-dir", str(tmp_path / "failed"), "--resource-config", str(tmp_path / "none.json"),
                     "--exit-message-file", str(tmp_path / "message"), *extra])


def exit_message(tmp_path: Path) -> str:
    return (tmp_path / "message").read_text(encoding="utf-8")


def sources(records: dict[str, dict]) -> Counter:
    """How many records each source URL has (identifiers are ``<url>#<row>``)."""
    return Counter(record_id.rpartition("#")[0] for record_id in records)


# -- the object path ----------------------------------------------------------------------------------------


def test_only_the_named_object_is_ingested_not_its_prefix_siblings(
    abalone: FeatureStoreStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    for name in ("a.csv", "a.csv.old.csv", "sub/x.csv"):  # what the prefix in/a.csv brings along
        (inputs / name).write_bytes(ABALONE_CSV.read_bytes())
    with caplog.at_level(logging.WARNING):
        assert run_script(tmp_path, "--input-dir", str(inputs), "--source-uri", "s3://data-bucket/in/a.csv") == 0
    assert sources(abalone.latest("abalone")) == {"s3://data-bucket/in/a.csv": ROWS}
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "2 other file(s)" in warning and "a.csv.old.csv" in warning and "sub/x.csv" in warning


def test_the_object_url_comes_from_the_job_configuration(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    """The pipeline passes no URL as an argument (256 characters at most); the job's configuration has it."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "batch 1#2.csv").write_bytes(ABALONE_CSV.read_bytes())
    (inputs / "batch 1#2.csv.bak").write_text("not,this\n1,2\n", encoding="utf-8")
    url = "s3://data-bucket/team a/2024/batch 1#2.csv"  # spaces and '#' are valid in keys
    config = job_config(tmp_path / "job.json", {"data": (url, inputs), "code": ("s3://a/code/t.py", tmp_path)})
    assert run_script(tmp_path, "--input-dir", str(inputs), "--job-config", str(config)) == 0
    records = abalone.latest("abalone")
    assert sources(records) == {url: ROWS} and f"{url}#1" in records


NOT_CSV = {  # object name: (content, what the log says)
    "data.parquet": (b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x04\x15\x00\x12\x00\x00PAR1", "is a Parquet file"),
    "data.csv.gz": (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "gzip-compressed"),
    "data.xlsx": (b"PK\x03\x04\x14\x00\x06\x00", "ZIP archive"),
    "image.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    "empty.csv": (b"", "is empty"),
    "latin1.csv": ("Sex,Length\nM,0.5\nF,caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
    "ragged.csv": (b"Sex,Length\nM,0.5\nF,0.4,1,2,3\n", "does not parse as CSV"),
    "customers.csv": ((DATA_DIR / "customers.csv").read_bytes(), "none of its columns"),
}


@pytest.mark.parametrize("name", sorted(NOT_CSV))
def test_a_named_object_that_is_not_a_csv_with_a_header_fails_the_job(
    abalone: FeatureStoreStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """Never "Succeeded" with nothing ingested: the step fails (exit 1) and says why."""
    content, reason = NOT_CSV[name]
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / name).write_bytes(content)
    url = f"s3://data-bucket/uploads/{name}"
    with caplog.at_level(logging.ERROR):
        assert run_script(tmp_path, "--input-dir", str(inputs), "--source-uri", url) == tai.EXIT_NOT_ALL_INGESTED
    assert abalone.written == []
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert f"{url} was not ingested" in errors and reason in errors
    assert "0 row(s) and 1 file(s) were not ingested into abalone" in exit_message(tmp_path)


def test_a_named_object_missing_from_the_input_dir_stops_the_job(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.csv.old.csv").write_bytes(ABALONE_CSV.read_bytes())
    assert run_script(tmp_path, "--input-dir", str(inputs), "--source-uri", "s3://b/in/a.csv") == tai.EXIT_CANNOT_START
    assert abalone.written == [] and abalone.calls["DescribeFeatureGroup"] == 0  # stopped before any call
    assert "the object s3://b/in/a.csv is not in" in exit_message(tmp_path)


def test_a_job_configuration_without_the_input_stops_the_job(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.csv").write_bytes(ABALONE_CSV.read_bytes())
    config = job_config(tmp_path / "job.json", {"other": ("s3://b/in/a.csv", tmp_path / "elsewhere")})
    assert run_script(tmp_path, "--input-dir", str(inputs), "--job-config", str(config)) == tai.EXIT_CANNOT_START
    assert "has no S3 input downloaded to" in exit_message(tmp_path)


def test_the_exit_message_is_utf8_and_at_most_1_kb(abalone: FeatureStoreStandIn, tmp_path: Path) -> None:
    """SageMaker keeps the first 1 KB of /opt/ml/output/message as ExitMessage and fails a job whose message
    is not UTF-8 ("Save and Access Metadata Information About Your Processing Job", SageMaker developer guide)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    url = "s3://data-bucket/" + "é" * 500 + ".csv"
    assert run_script(tmp_path, "--input-dir", str(inputs), "--source-uri", url) == tai.EXIT_CANNOT_START
    data = (tmp_path / "message").read_bytes()
    assert 0 < len(data) <= 1024 and b"start the pipeline with InputManifestUrl" not in data  # cut at 1 KB
    data.decode("utf-8")  # a multi-byte character cut in half would raise here


# -- the manifest path --------------------------------------------------------------------------------------


def manifest_input(tmp_path: Path, document: object, url: str = MANIFEST_URL) -> tuple[Path, Path]:
    """The manifest as SageMaker puts it: the object (its key's last component) in the input directory,
    and the job configuration naming it."""
    directory = tmp_path / "manifest"
    directory.mkdir(exist_ok=True)
    text = document if isinstance(document, str) else json.dumps(document)
    (directory / url.rsplit("/", 1)[1]).write_text(text, encoding="utf-8")
    config = job_config(tmp_path / "job.json", {"manifest": (url, directory)})
    return directory, config


def run_manifest(tmp_path: Path, directory: Path, config: Path, *extra: str) -> int:
    return run_script(tmp_path, "--manifest-dir", str(directory), "--job-config", str(config),
                      "--download-dir", str(tmp_path / "downloads"), *extra)


def longest_key() -> str:
    """A valid S3 key of exactly 1,024 bytes whose last component (> 255 bytes) is no valid file name."""
    last = "Données #1? & batch " * 15 + ".csv"
    folder = "uploads/2024/"
    key = folder + "x" * (MAX_KEY_BYTES - len((folder + "/" + last).encode("utf-8"))) + "/" + last
    assert len(key.encode("utf-8")) == MAX_KEY_BYTES and len(last.encode("utf-8")) > MAX_NAME_BYTES
    return key


def test_an_object_with_a_1024_byte_key_is_ingested_through_the_manifest(
    abalone: FeatureStoreStandIn, s3, tmp_path: Path
) -> None:
    key = longest_key()
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=ABALONE_CSV.read_bytes())
    url = f"s3://{DATA_BUCKET}/{key}"
    assert len(url) > 1024  # too long for a pipeline parameter: the Lambda writes a manifest
    directory, config = manifest_input(tmp_path, [{"prefix": f"s3://{DATA_BUCKET}/"}, key])
    assert run_manifest(tmp_path, directory, config) == 0

    records = abalone.latest("abalone")
    assert sources(records) == {url: ROWS}
    # The same identifiers the object path derives for that URL (stable across both paths):
    # source_name() only computes with the path, it never touches the file system.
    last = key.rsplit("/", 1)[1]
    object_path_source = source_name(tmp_path / "in" / last, tmp_path / "in", url)
    assert set(records) == {f"{object_path_source}#{row}" for row in range(1, ROWS + 1)}
    assert not list((tmp_path / "downloads").rglob("*.download"))  # each download is removed once ingested


def test_both_paths_give_an_object_the_same_record_ids(abalone: FeatureStoreStandIn, s3, tmp_path: Path) -> None:
    key = "uploads/2024/batch #7.csv"
    url = f"s3://{DATA_BUCKET}/{key}"
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=ABALONE_CSV.read_bytes())
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "batch #7.csv").write_bytes(ABALONE_CSV.read_bytes())
    config = job_config(tmp_path / "object-job.json", {"data": (url, inputs)})
    assert run_script(tmp_path, "--input-dir", str(inputs), "--job-config", str(config)) == 0
    by_object_path = set(abalone.latest("abalone"))

    # A manifest with a deeper prefix (as a batch of several uploads may write) naming the same object.
    directory, config = manifest_input(tmp_path, [{"prefix": f"s3://{DATA_BUCKET}/uploads/"}, "2024/batch #7.csv"])
    assert run_manifest(tmp_path, directory, config) == 0
    assert len(abalone.written) == 2 * ROWS and set(abalone.latest("abalone")) == by_object_path


def test_each_instance_ingests_its_share_and_every_object_exactly_once(
    abalone: FeatureStoreStandIn, s3, tmp_path: Path
) -> None:
    lines = ABALONE_CSV.read_text(encoding="utf-8").splitlines()
    keys = [f"uploads/part-{number:02d}.csv" for number in range(30)]
    for number, key in enumerate(keys):
        rows = lines[1 + number % 20: 3 + number % 20]  # two data rows each
        s3.put_object(Bucket=DATA_BUCKET, Key=key, Body="\n".join([lines[0], *rows]) + "\n")
    directory, config = manifest_input(tmp_path, [{"prefix": f"s3://{DATA_BUCKET}/"}, *keys])
    hosts = ["algo-2", "algo-3", "algo-1"]  # the order of the file does not matter
    by_host = {}
    for host in sorted(hosts):
        written_before = len(abalone.written)
        cluster = resource_config(tmp_path / f"{host}.json", host, hosts)
        assert run_manifest(tmp_path, directory, config, "--resource-config", str(cluster)) == 0
        written = abalone.written[written_before:]
        by_host[host] = Counter(record["record_id"].rpartition("#")[0] for _, record in written)

    everything = Counter()
    for counts in by_host.values():
        everything.update(counts)
    assert everything == {f"s3://{DATA_BUCKET}/{key}": 2 for key in keys}  # each object once, by one host
    assert all(by_host.values()), by_host  # and the work is shared


@pytest.mark.parametrize(("document", "message"), [
    ("not json", "is not JSON"),
    ({"prefix": "s3://b/"}, "is not a SageMaker ManifestFile document"),
    (["uploads/a.csv"], "is not a SageMaker ManifestFile document"),
    ([{"prefix": "s3://data-bucket/"}], "lists no object"),
    ([{"prefix": "s3://data-bucket/"}, "a.csv", 7], "entry 2 is not a non-empty string"),
    ([{"prefix": "/data-bucket/"}, "a.csv"], "not an s3://bucket/key URL"),
    ([{"prefix": "s3://data-bucket"}, "/"], "not an s3://bucket/key URL"),
])
def test_an_invalid_manifest_stops_the_job(
    abalone: FeatureStoreStandIn, tmp_path: Path, document: object, message: str
) -> None:
    directory, config = manifest_input(tmp_path, document)
    assert run_manifest(tmp_path, directory, config) == tai.EXIT_CANNOT_START
    assert message in exit_message(tmp_path) and abalone.written == []


def test_only_the_named_manifest_is_read(abalone: FeatureStoreStandIn, s3, tmp_path: Path) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key="in/a.csv", Body=ABALONE_CSV.read_bytes())
    directory, config = manifest_input(tmp_path, [{"prefix": f"s3://{DATA_BUCKET}/"}, "in/a.csv"])
    (directory / (MANIFEST_URL.rsplit("/", 1)[1] + ".old")).write_text("garbage", encoding="utf-8")
    assert run_manifest(tmp_path, directory, config) == 0
    assert sources(abalone.latest("abalone")) == {f"s3://{DATA_BUCKET}/in/a.csv": ROWS}


def test_a_listed_object_that_cannot_be_read_fails_the_job_after_the_others(
    abalone: FeatureStoreStandIn, s3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key="in/a.csv", Body=ABALONE_CSV.read_bytes())
    s3.put_object(Bucket=DATA_BUCKET, Key="in/b.parquet", Body=b"PAR1\x00\x00PAR1")
    document = [{"prefix": f"s3://{DATA_BUCKET}/in/"}, "gone.csv", "a.csv", "b.parquet", "a.csv"]
    directory, config = manifest_input(tmp_path, document)
    with caplog.at_level(logging.ERROR):
        assert run_manifest(tmp_path, directory, config) == tai.EXIT_NOT_ALL_INGESTED
    assert sources(abalone.latest("abalone")) == {f"s3://{DATA_BUCKET}/in/a.csv": ROWS}  # listed twice, once
    errors = " ".join(r.getMessage() for r in caplog.records)
    assert f"s3://{DATA_BUCKET}/in/gone.csv was not ingested: cannot read" in errors and "does not exist" in errors
    assert f"s3://{DATA_BUCKET}/in/b.parquet was not ingested: the file is a Parquet file" in errors
    assert "0 row(s) and 2 file(s) were not ingested" in exit_message(tmp_path)


def test_failed_rows_of_a_long_key_go_to_a_valid_file_name(abalone: FeatureStoreStandIn, s3, tmp_path: Path) -> None:
    key = longest_key()
    lines = ABALONE_CSV.read_text(encoding="utf-8").splitlines()
    lines[2] = "M,oops,0.365,0.095,0.514,0.2245,0.101,0.15,15"
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body="\n".join(lines) + "\n")
    directory, config = manifest_input(tmp_path, [{"prefix": f"s3://{DATA_BUCKET}/"}, key])
    assert run_manifest(tmp_path, directory, config) == tai.EXIT_NOT_ALL_INGESTED
    [failed] = [path for path in (tmp_path / "failed").rglob("*") if path.is_file()]
    relative = failed.relative_to(tmp_path / "failed").as_posix()
    assert relative == failed_rows_name(f"s3://{DATA_BUCKET}/{key}")
    assert all(len(part.encode("utf-8")) <= MAX_NAME_BYTES for part in relative.split("/"))
    assert len(failed.read_text(encoding="utf-8").splitlines()) == 2  # header + the one failed row
    short = failed_rows_name(f"s3://{DATA_BUCKET}/in/a.csv")
    assert short == f"{DATA_BUCKET}/in/a.csv"
    assert failed_rows_name(f"s3://{DATA_BUCKET}/in/../../etc/x.csv").startswith(f"{DATA_BUCKET}/long-keys/")


def test_a_manifest_job_accounts_for_every_file_on_its_own(
    abalone: FeatureStoreStandIn, s3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The job ingests exactly the objects it is given and says, per object, what became of it: in the log,
    in the summary and in the exit message (the processing job's ExitMessage, first 1 KB)."""
    lines = ABALONE_CSV.read_text(encoding="utf-8").splitlines()
    bad = list(lines)
    bad[4] = "M,oops,0.365,0.095,0.514,0.2245,0.101,0.15,15"  # data row 4
    bad[9] = "Q,0.3,0.365,0.095,0.514,0.2245,0.101,0.15,15"  # data row 9
    s3.put_object(Bucket=DATA_BUCKET, Key="in/good.csv", Body="\n".join(lines) + "\n")
    s3.put_object(Bucket=DATA_BUCKET, Key="in/bad rows.csv", Body="\n".join(bad) + "\n")
    s3.put_object(Bucket=DATA_BUCKET, Key="in/b.parquet", Body=b"PAR1\x00\x00PAR1")
    s3.put_object(Bucket=DATA_BUCKET, Key="in/other.csv", Body="\n".join(lines) + "\n")  # not listed
    listed = ["good.csv", "bad rows.csv", "b.parquet", "gone.csv"]
    directory, config = manifest_input(tmp_path, [{"prefix": f"s3://{DATA_BUCKET}/in/"}, *listed])
    with caplog.at_level(logging.INFO):
        assert run_manifest(tmp_path, directory, config) == tai.EXIT_NOT_ALL_INGESTED

    url = {name: f"s3://{DATA_BUCKET}/in/{name}" for name in listed}
    assert sources(abalone.latest("abalone")) == {url["good.csv"]: ROWS, url["bad rows.csv"]: ROWS - 2}
    messages = [r.getMessage() for r in caplog.records]
    assert f"file {url['good.csv']}: {ROWS} row(s), all written" in messages
    assert any(m.startswith(f"file {url['bad rows.csv']}: {ROWS} row(s), {ROWS - 2} written, 2 not written")
               for m in messages)
    [summary] = [json.loads(m.removeprefix("summary ")) for m in messages if m.startswith("summary ")]
    by_file = {report["source"]: report for report in summary["files_not_fully_ingested"]}
    assert set(by_file) == {url["bad rows.csv"], url["b.parquet"], url["gone.csv"]}
    assert (by_file[url["bad rows.csv"]]["rows"], by_file[url["bad rows.csv"]]["failed"]) == (ROWS, 2)
    assert "Parquet" in by_file[url["b.parquet"]]["error"] and "does not exist" in by_file[url["gone.csv"]]["error"]
    assert (summary["files"], summary["files_failed"], summary["failed"]) == (4, 2, 2)

    message = exit_message(tmp_path)
    assert message.startswith("2 row(s) and 2 file(s) were not ingested into abalone")
    assert f"{url['bad rows.csv']}: 2 of {ROWS} row(s) not written" in message
    assert f"{url['b.parquet']}: not ingested (the file is a Parquet file" in message
    assert f"{url['gone.csv']}: not ingested (cannot read" in message
    failed = pd.read_csv(tmp_path / "failed" / DATA_BUCKET / "in" / "bad rows.csv", dtype=str)
    assert failed[FAILED_ROW_NUMBER].tolist() == ["4", "9"]
    assert set(failed[FAILED_ROW_SOURCE]) == {url["bad rows.csv"]}  # each failed row names its object
