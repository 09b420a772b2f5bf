"""Unit tests of the notebooks' helper package (notebooks/fsi_walkthrough).

Steps moto can serve run against moto in-process (``mock_aws``); the calls it cannot serve (Service
Catalog versions, CreateProject, a real pipeline's failure, the Feature Store runtime, Athena results)
go through botocore's ``Stubber``, which checks every request against the real API model.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from e2e_support import (
    ACCOUNT,
    REGION,
    SEED_CODE_DIR,
    FakeClock,
    feature_group_definition,
    moto_feature_group_fixes,
    walkthrough_helpers,
    write_abalone_zip,
)
from moto import mock_aws

fsi = walkthrough_helpers()
ROLE = f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMaker-ExecutionRole"



@pytest.fixture
def aws():
    with mock_aws():
        yield fsi.connect(REGION)


def client(service: str):
    return boto3.client(service, region_name=REGION)


def make_state(**changes) -> object:
    values = dict(
        region=REGION,
        account=ACCOUNT,
        data_bucket="walkthrough-data",
        data_prefix="incoming/",
        feature_group_name="abalone-walkthrough",
        offline_store_uri="s3://walkthrough-data/work/offline-store",
        work_prefix="work/",
    )
    values.update(changes)
    return fsi.State(**values)


# --- data set ---------------------------------------------------------------------------------------


def test_download_reads_the_uci_zip_and_keeps_the_description(tmp_path: Path) -> None:
    archive = write_abalone_zip(tmp_path / "abalone.zip")
    raw = fsi.download_abalone(str(archive), tmp_path / "data")
    assert raw == tmp_path / "data" / "abalone.data"
    assert (tmp_path / "data" / "abalone.names").is_file()
    assert raw.read_text().startswith("M,0.455,0.365")


def test_download_takes_a_file_url_of_the_raw_file(tmp_path: Path) -> None:
    source = tmp_path / "mirror.data"
    source.write_text("F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9\n")
    raw = fsi.download_abalone(source.as_uri(), tmp_path / "data")
    assert raw.read_text() == source.read_text()


def test_download_refuses_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(fsi.WalkthroughError, match="not an http"):
        fsi.download_abalone(str(tmp_path / "missing.zip"), tmp_path)
    empty_zip = tmp_path / "other.zip"
    import zipfile

    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("readme.txt", "x")
    with pytest.raises(fsi.WalkthroughError, match="without abalone.data"):
        fsi.download_abalone(str(empty_zip), tmp_path / "out")


def test_load_abalone_names_columns_and_numbers_records_stably(tmp_path: Path) -> None:
    raw = fsi.download_abalone(str(write_abalone_zip(tmp_path / "a.zip")), tmp_path)
    frame = fsi.load_abalone(raw)
    assert list(frame.columns) == ["record_id", *fsi.dataset.COLUMNS]
    assert frame["record_id"].tolist()[:3] == ["abalone-0001", "abalone-0002", "abalone-0003"]
    assert frame.loc[0, "sex"] == "M" and frame.loc[0, "rings"] == 15
    assert str(frame["rings"].dtype) == "int64"


def test_load_abalone_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.data"
    path.write_text("X,0.4,0.3,0.1,0.5,0.2,0.1,0.1,9\nM,a,0.3,0.1,0.5,0.2,0.1,0.1,9\n")
    with pytest.raises(fsi.WalkthroughError, match="unknown sex values .*non-numeric"):
        fsi.load_abalone(path)


def test_the_csv_has_a_header_and_samples_are_deterministic(tmp_path: Path) -> None:
    frame = fsi.load_abalone(fsi.download_abalone(str(write_abalone_zip(tmp_path / "a.zip")), tmp_path))
    path = fsi.write_csv(frame, tmp_path / "out" / "abalone.csv")
    assert path.read_text().splitlines()[0] == "record_id,sex,length,diameter,height,whole_weight," \
        "shucked_weight,viscera_weight,shell_weight,rings"
    first, second = fsi.dataset.sample(frame, 5), fsi.dataset.sample(frame, 5)
    assert first["record_id"].tolist() == second["record_id"].tolist()
    assert first.index.is_monotonic_increasing and len(first) == 5
    assert len(fsi.dataset.sample(frame, 0)) == len(frame)


# --- steps and state ----------------------------------------------------------------------------------


@pytest.fixture
def walkthrough_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let caplog see the lines the notebooks print (show_progress stops their propagation)."""
    monkeypatch.setattr(fsi.steps.LOG, "propagate", True)


def test_show_progress_prints_the_walkthroughs_lines_once(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for attribute in ("handlers", "propagate", "level"):
        monkeypatch.setattr(fsi.steps.LOG, attribute, getattr(fsi.steps.LOG, attribute))
    fsi.steps.LOG.handlers = []
    fsi.show_progress()
    fsi.show_progress()
    fsi.steps.LOG.info("hello")
    assert capsys.readouterr().out == "hello\n"


def test_steps_skip_aws_only_steps_and_say_so(walkthrough_log, caplog: pytest.LogCaptureFixture) -> None:
    steps = fsi.Steps("nb", skip_aws_only=True)
    with caplog.at_level(logging.INFO, logger="fsi_walkthrough"):
        assert steps.run("local", lambda x: x + 1, 1) == 2
        assert steps.run("remote", pytest.fail, "must not run", aws_only=True) is None
        summary = steps.report()
    assert summary == {"executed": ["local"], "skipped": ["remote"]}
    assert "skipped: needs AWS: remote" in caplog.text


def test_steps_run_aws_only_steps_against_aws() -> None:
    steps = fsi.Steps("nb")
    assert steps.run("remote", lambda: "ran", aws_only=True) == "ran"
    assert steps.summary() == {"executed": ["remote"], "skipped": []}


def test_a_step_without_credentials_fails_with_one_line_naming_the_step() -> None:
    """Credentials that expire or vanish mid-walkthrough: botocore raises NoCredentialsError from the first call
    that needs them; the step says what to do, and the error renders as one line in Jupyter."""

    def call_aws() -> None:  # a new session: boto3's default one may hold credentials an earlier test resolved
        boto3.session.Session().client("sts", region_name=REGION).get_caller_identity()

    steps = fsi.Steps("nb")
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            patch.delenv(variable, raising=False)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        patch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
        with pytest.raises(fsi.WalkthroughError) as failed:
            steps.run("read the caller identity", call_aws)
    assert str(failed.value).startswith("read the caller identity: no AWS credentials found")
    assert failed.value._render_traceback_() == [f"WalkthroughError: {failed.value}"]
    assert steps.summary() == {"executed": [], "skipped": []}


def test_state_round_trips_and_a_missing_file_says_what_to_run(tmp_path: Path) -> None:
    state = make_state(created={"data_bucket": True}, project={"ProjectName": "p"})
    state.remember_upload("s3://b/k")
    state.remember_upload("s3://b/k")
    state.save(tmp_path / "s" / "state.json")
    loaded = fsi.State.load(tmp_path / "s" / "state.json")
    assert loaded == state and loaded.uploads == ["s3://b/k"]
    with pytest.raises(fsi.WalkthroughError, match="run 00-setup.ipynb first"):
        fsi.State.load(tmp_path / "nothing.json")


# --- data bucket, role --------------------------------------------------------------------------------


def eventbridge_on(bucket: str) -> bool:
    """Read from moto's backend: moto's GetBucketNotificationConfiguration omits EventBridgeConfiguration."""
    from moto.s3.models import s3_backends

    config = s3_backends[ACCOUNT]["aws"].get_bucket(bucket).notification_configuration
    return config is not None and config.event_bridge is not None


def test_prepare_data_bucket_creates_once_and_leaves_notifications_to_the_project(aws) -> None:
    """00-setup no longer turns EventBridge notifications on: the project's stack does (S3EventBridge mode)."""
    assert fsi.prepare_data_bucket(aws, "walkthrough-data", "S3EventBridge") == {"data_bucket": True}
    assert not eventbridge_on("walkthrough-data")
    s3 = client("s3")
    assert s3.get_public_access_block(Bucket="walkthrough-data")["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    assert s3.get_bucket_location(Bucket="walkthrough-data")["LocationConstraint"] == REGION
    assert fsi.prepare_data_bucket(aws, "walkthrough-data", "CloudTrail") == {"data_bucket": False}
    with pytest.raises(fsi.WalkthroughError, match="TRIGGER_MODE must be one of"):
        fsi.prepare_data_bucket(aws, "walkthrough-data", "Polling")


@pytest.mark.parametrize(("bucket_region", "create"), [
    ("us-west-2", {"CreateBucketConfiguration": {"LocationConstraint": "us-west-2"}}),
    ("us-east-1", {}),  # GetBucketLocation answers null for us-east-1
])
def test_a_data_bucket_in_another_region_is_refused_naming_both_regions(aws, bucket_region: str, create: dict) -> None:
    """S3 sends a bucket's events only in the bucket's Region (S3 User Guide, "Amazon S3 Event Notifications" and
    "Using EventBridge": the event bus, like SNS/SQS/Lambda destinations, is the bucket's Region's); a project in
    another Region would never see an upload and nothing would fail. Refused in 00-setup and before CreateProject."""
    boto3.client("s3", region_name=bucket_region).create_bucket(Bucket="far-away-data", **create)
    for check in (lambda: fsi.prepare_data_bucket(aws, "far-away-data", "S3EventBridge"),
                  lambda: fsi.check_bucket_region(aws, "far-away-data")):
        with pytest.raises(fsi.WalkthroughError) as refused:
            check()
        message = str(refused.value)
        assert f"data bucket far-away-data is in {bucket_region} but the project would be in {REGION}" in message
        assert "\n" not in message


def test_the_bucket_region_falls_back_to_get_bucket_location() -> None:
    """HeadBucket reports the bucket's Region (S3 API reference, GetBucketLocation: "we recommend that you use the
    HeadBucket operation instead"); without it, GetBucketLocation's LocationConstraint is null for us-east-1 and
    "EU" for eu-west-1 (S3 API reference, GetBucketLocation, Response Elements)."""
    s3 = client("s3")
    stubber = Stubber(s3)
    for answer in ({}, {"LocationConstraint": "EU"}, {"LocationConstraint": "ap-south-1"}):
        stubber.add_response("head_bucket", {}, {"Bucket": "b"})
        stubber.add_response("get_bucket_location", answer, {"Bucket": "b"})
    with stubber:
        assert [fsi.resources.bucket_region(s3, "b") for _ in range(3)] == ["us-east-1", "eu-west-1", "ap-south-1"]
    stubber.assert_no_pending_responses()
    assert fsi.resources.bucket_region(s3, "b", {"BucketRegion": "ca-central-1"}) == "ca-central-1"


def test_a_missing_data_bucket_says_to_run_the_setup(aws) -> None:
    with pytest.raises(fsi.WalkthroughError, match="data bucket nowhere does not exist: run 00-setup.ipynb first"):
        fsi.check_bucket_region(aws, "nowhere")


def test_eventbridge_turned_on_by_an_earlier_setup_is_turned_off_keeping_other_notifications(aws) -> None:
    """PutBucketNotificationConfiguration replaces the whole configuration (S3 API reference): the other targets
    must be written back when EventBridge is turned off."""
    s3, sqs = client("s3"), client("sqs")
    queue = sqs.create_queue(QueueName="other")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="shared", CreateBucketConfiguration={"LocationConstraint": REGION})
    other = {"QueueConfigurations": [{"Id": "mine", "QueueArn": queue_arn, "Events": ["s3:ObjectRemoved:*"]}]}
    s3.put_bucket_notification_configuration(Bucket="shared", NotificationConfiguration={
        **other, "EventBridgeConfiguration": {}})  # what an earlier 00-setup left
    assert eventbridge_on("shared")
    fsi.resources.disable_eventbridge(aws, "shared")
    assert not eventbridge_on("shared")
    assert s3.get_bucket_notification_configuration(Bucket="shared")["QueueConfigurations"][0]["Id"] == "mine"


def notification_stubber(aws, *answers: dict) -> Stubber:
    stubber = Stubber(aws.s3)
    for answer in answers:
        stubber.add_response("get_bucket_notification_configuration", answer, {"Bucket": "walkthrough-data"})
    return stubber


def test_eventbridge_notifications_are_checked_after_the_project_is_created() -> None:
    """S3 sends events to EventBridge only when the bucket's notification configuration holds an
    EventBridgeConfiguration (S3 User Guide, "Using EventBridge"; S3 API reference, NotificationConfiguration).
    moto's GetBucketNotificationConfiguration omits that element, so the answers are stubbed."""
    aws = fsi.Aws(region=REGION)
    state = make_state(trigger_mode="S3EventBridge", project={"StackName": "SC-123456789012-pp-abc"})
    queue = {"Id": "q", "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", "Events": ["s3:ObjectRemoved:*"]}
    stubber = notification_stubber(aws, {"QueueConfigurations": [queue], "EventBridgeConfiguration": {}},
                                   {"QueueConfigurations": [queue]})
    with stubber:
        assert fsi.check_eventbridge_notifications(aws, state) is True
        with pytest.raises(fsi.WalkthroughError) as missing:
            fsi.check_eventbridge_notifications(aws, state)
    stubber.assert_no_pending_responses()
    message = str(missing.value)
    assert message.startswith("bucket walkthrough-data does not send its events to EventBridge, so uploads start")
    assert "SC-123456789012-pp-abc" in message and "Send notifications to Amazon EventBridge: On" in message
    assert "\n" not in message


def test_notifications_the_caller_may_not_read_are_reported_not_refused(walkthrough_log, caplog) -> None:
    """s3:GetBucketNotification is not in AmazonSageMakerFullAccess (v29; public copy: github.com/zoph-io/MAMIP
    policies/AmazonSageMakerFullAccess), the usual Studio role's policy: say what to verify, do not block."""
    aws = fsi.Aws(region=REGION)
    stubber = Stubber(aws.s3)
    stubber.add_client_error("get_bucket_notification_configuration", "AccessDenied", "Access Denied", 403,
                             expected_params={"Bucket": "walkthrough-data"})
    with stubber, caplog.at_level(logging.WARNING, logger="fsi_walkthrough"):
        assert fsi.check_eventbridge_notifications(aws, make_state(trigger_mode="S3EventBridge")) is False
    assert "make sure it sends its events to EventBridge" in caplog.text


def test_a_new_bucket_keeps_s3s_default_public_access_block_when_the_role_may_not_set_it() -> None:
    """S3 turns all Block Public Access settings on for every new bucket (AWS What's New, December 2022: "Amazon
    S3 will automatically enable S3 Block Public Access and disable access control lists for all new buckets
    starting in April 2023"); AmazonSageMakerFullAccess grants s3:CreateBucket but not
    s3:PutBucketPublicAccessBlock, so a denied PutPublicAccessBlock must not fail the set-up."""
    aws = offline_aws()
    stubber = Stubber(aws.s3)
    stubber.add_client_error("head_bucket", "404", "Not Found", 404,
                             expected_params={"Bucket": "new-data", "ExpectedBucketOwner": ACCOUNT})
    stubber.add_response("create_bucket", {}, {"Bucket": "new-data",
                                               "CreateBucketConfiguration": {"LocationConstraint": REGION}})
    stubber.add_client_error("put_public_access_block", "AccessDenied", "Access Denied", 403)
    with stubber:
        assert fsi.prepare_data_bucket(aws, "new-data", "S3EventBridge") == {"data_bucket": True}
    stubber.assert_no_pending_responses()


def test_cloudtrail_mode_needs_no_bucket_notifications() -> None:
    aws = fsi.Aws(region=REGION)
    with notification_stubber(aws):  # any S3 call would fail: none is expected
        assert fsi.check_eventbridge_notifications(aws, make_state(trigger_mode="CloudTrail")) is False


def test_default_bucket_and_watched_prefix(aws) -> None:
    assert fsi.default_bucket_name(aws) == f"sagemaker-{REGION}-{ACCOUNT}"
    assert fsi.watched_prefix("/fsi/incoming") == "fsi/incoming/"
    with pytest.raises(fsi.WalkthroughError, match="DATA_PREFIX must not be empty"):
        fsi.watched_prefix("/")


def test_execution_role_explicit_studio_and_unknown(aws, tmp_path: Path) -> None:
    assert fsi.execution_role(aws, ROLE) == ROLE
    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(json.dumps({"DomainId": "d-abc", "UserProfileName": "alice"}))
    stubber = Stubber(aws.sagemaker)
    stubber.add_response("describe_user_profile", {"UserSettings": {}},
                         {"DomainId": "d-abc", "UserProfileName": "alice"})
    stubber.add_response("describe_domain", {"DefaultUserSettings": {"ExecutionRole": ROLE}}, {"DomainId": "d-abc"})
    with stubber:
        assert fsi.execution_role(aws, metadata_file=metadata) == ROLE
    stubber.assert_no_pending_responses()
    with pytest.raises(fsi.WalkthroughError, match="set EXECUTION_ROLE_ARN"):
        fsi.execution_role(aws, metadata_file=tmp_path / "absent.json")  # moto's caller is an IAM user


def test_execution_role_of_an_assumed_role_session(tmp_path: Path) -> None:
    aws = fsi.Aws(region=REGION)
    aws.identity = {"Account": ACCOUNT, "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AmazonSageMaker-ExecutionRole/s"}
    stubber = Stubber(aws.client("iam"))
    stubber.add_response(
        "get_role",
        {"Role": {"Path": "/service-role/", "RoleName": "AmazonSageMaker-ExecutionRole", "RoleId": "AROAEXAMPLE1234567",
                  "Arn": ROLE, "CreateDate": dt.datetime(2024, 1, 1)}},
        {"RoleName": "AmazonSageMaker-ExecutionRole"},
    )
    with stubber:
        assert fsi.execution_role(aws, metadata_file=tmp_path / "absent.json") == ROLE


def test_connect_needs_a_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(fsi.WalkthroughError, match="set REGION"):
        fsi.connect()
    assert fsi.connect("eu-central-1", "http://127.0.0.1:1").sagemaker.meta.endpoint_url == "http://127.0.0.1:1"


# --- feature group ------------------------------------------------------------------------------------


def test_the_definition_is_the_seed_codes() -> None:
    assert fsi.load_definition(SEED_CODE_DIR) == feature_group_definition()
    with pytest.raises(fsi.WalkthroughError, match="set SEED_CODE_DIR"):
        fsi.load_definition(SEED_CODE_DIR / "nothing-here")


def test_apply_definition_creates_the_group_with_the_seed_codes_apply(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_feature_group_fixes().patch(monkeypatch)
    uri = "s3://walkthrough-data/work/offline-store/"
    description = fsi.apply_definition(aws.sagemaker, SEED_CODE_DIR, "abalone-walkthrough", uri, ROLE, poll=0)
    definition = feature_group_definition()
    assert description["FeatureGroupStatus"] == "Created"
    assert description["FeatureDefinitions"] == definition["FeatureDefinitions"]
    assert description["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == uri.rstrip("/")
    assert description["RoleArn"] == ROLE
    again = fsi.apply_definition(aws.sagemaker, SEED_CODE_DIR, "abalone-walkthrough", uri, ROLE, poll=0)
    assert again["FeatureGroupArn"] == description["FeatureGroupArn"]


def test_delete_feature_group_waits_until_it_is_gone(clock: FakeClock) -> None:
    sm = client("sagemaker")
    stubber = Stubber(sm)
    stubber.add_response("delete_feature_group", {}, {"FeatureGroupName": "fg"})
    stubber.add_response("describe_feature_group", describe_response("fg", "Deleting"), {"FeatureGroupName": "fg"})
    stubber.add_client_error("describe_feature_group", "ResourceNotFound", "Resource Not Found", 400,
                             expected_params={"FeatureGroupName": "fg"})
    stubber.add_client_error("delete_feature_group", "ResourceNotFound", "Resource Not Found", 400,
                             expected_params={"FeatureGroupName": "fg"})
    with stubber:
        assert fsi.feature_group.delete_feature_group(sm, "fg", sleep=clock.sleep, clock=clock.clock)
        assert not fsi.feature_group.delete_feature_group(sm, "fg", sleep=clock.sleep, clock=clock.clock)
    stubber.assert_no_pending_responses()
    assert clock.sleeps == [5]


def describe_response(name: str, status: str, **extra) -> dict:
    definition = feature_group_definition()
    return {
        "FeatureGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/{name}",
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": definition["RecordIdentifierFeatureName"],
        "EventTimeFeatureName": definition["EventTimeFeatureName"],
        "FeatureDefinitions": definition["FeatureDefinitions"],
        "CreationTime": dt.datetime(2025, 1, 1),
        "FeatureGroupStatus": status,
        "NextToken": "",
        **extra,
    }


def test_offline_data_location_is_the_groups_own_folder() -> None:
    resolved = {
        "FeatureGroupName": "fg",
        "OfflineStoreConfig": {
            "S3StorageConfig": {
                "S3Uri": "s3://bucket/work/offline-store",
                "ResolvedOutputS3Uri": f"s3://bucket/work/offline-store/{ACCOUNT}/sagemaker/{REGION}/offline-store/"
                "fg-1700000000/data",
            }
        },
    }
    assert fsi.feature_group.offline_data_location(resolved) == (
        "bucket",
        f"work/offline-store/{ACCOUNT}/sagemaker/{REGION}/offline-store/fg-1700000000/",
    )
    configured = {"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://bucket/offline/fg"}}}
    assert fsi.feature_group.offline_data_location(configured) == ("bucket", "offline/fg/")
    with pytest.raises(fsi.WalkthroughError, match="no offline store"):
        fsi.feature_group.offline_data_location({"FeatureGroupName": "fg"})


def test_delete_offline_store_removes_data_and_glue_table(aws) -> None:
    s3, glue = client("s3"), client("glue")
    s3.create_bucket(Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    group_dir = "work/offline-store/123/sagemaker/eu-west-1/offline-store/fg-1/"
    for key in (group_dir + "data/year=2025/part-0.parquet", group_dir + "data/year=2025/part-1.parquet",
                "work/offline-store/123/sagemaker/eu-west-1/offline-store/other-2/data/x.parquet"):
        s3.put_object(Bucket="bucket", Key=key, Body=b"x")
    glue.create_database(DatabaseInput={"Name": "sagemaker_featurestore"})
    glue.create_table(DatabaseName="sagemaker_featurestore", TableInput={"Name": "fg_1"})
    description = {
        "FeatureGroupName": "fg",
        "OfflineStoreConfig": {
            "S3StorageConfig": {"S3Uri": "s3://bucket/work/offline-store",
                                "ResolvedOutputS3Uri": f"s3://bucket/{group_dir}data"},
            "DataCatalogConfig": {"TableName": "fg_1", "Catalog": "AwsDataCatalog",
                                  "Database": "sagemaker_featurestore"},
        },
    }
    assert fsi.delete_offline_store(aws, description) == 2
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="bucket")["Contents"]]
    assert keys == ["work/offline-store/123/sagemaker/eu-west-1/offline-store/other-2/data/x.parquet"]
    assert glue.get_tables(DatabaseName="sagemaker_featurestore")["TableList"] == []
    assert not fsi.feature_group.delete_glue_table(aws, description)
    assert fsi.delete_offline_store(aws, None) == 0


# --- project ------------------------------------------------------------------------------------------


def test_template_parameters_leave_out_empty_values_and_sagemakers_own() -> None:
    state = make_state(trigger_mode="S3EventBridge")
    parameters = fsi.template_parameters(state, extra={"SageMakerProjectName": "x", "ProcessingInstanceCount": "2"})
    assert parameters == [
        {"Key": "DataBucketName", "Value": "walkthrough-data"},
        {"Key": "DataPrefix", "Value": "incoming/"},
        {"Key": "FeatureGroupName", "Value": "abalone-walkthrough"},
        {"Key": "TriggerMode", "Value": "S3EventBridge"},
        {"Key": "SourceProvider", "Value": "CodeCommit"},
        {"Key": "ProcessingInstanceCount", "Value": "2"},
    ]


def test_template_parameters_name_real_template_parameters(templates: dict[str, dict]) -> None:
    state = make_state(data_suffix=".csv")
    keys = {p["Key"] for p in fsi.template_parameters(state, source_provider="CodeConnection",
                                                      code_connection_arn="arn:x", repository_id="o/r")}
    assert keys <= set(templates["project-s3-fs-ingestion"]["Parameters"])


def sagemaker_project_name_rule():
    """SageMaker's rule for project names, from its API model (shape ProjectEntityName; CreateProject API
    reference: "Pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", length 1-32)."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("ProjectEntityName")
    return re.compile(shape.metadata["pattern"]), shape.metadata["min"], shape.metadata["max"]


VALID_PROJECT_NAMES = ["2024-ingest", "a--b", "a" * 32, "9" * 32, "x", "A1", "Ab-Cd-9", "a" + "-" * 30 + "b"]
# "a" + 31 hyphens + "b" matches the pattern but is 33 characters long.
INVALID_PROJECT_NAMES = ["", "a" * 33, "-a", "a-", "ab--", "a_b", "a b", "a.b", "ab/c", "a" + "-" * 31 + "b"]


@pytest.mark.parametrize("name", VALID_PROJECT_NAMES)
def test_project_names_sagemaker_accepts_are_accepted(name: str) -> None:
    assert fsi.check_project_name(name) == name


@pytest.mark.parametrize("name", INVALID_PROJECT_NAMES)
def test_project_names_sagemaker_refuses_are_refused(name: str) -> None:
    with pytest.raises(fsi.WalkthroughError, match="not a valid SageMaker project name: 1-32 letters, digits"):
        fsi.check_project_name(name)


def test_the_project_name_examples_agree_with_sagemakers_api_model() -> None:
    pattern, shortest, longest = sagemaker_project_name_rule()
    for name in VALID_PROJECT_NAMES:
        assert pattern.fullmatch(name) and shortest <= len(name) <= longest, name
    for name in INVALID_PROJECT_NAMES:
        assert not (pattern.fullmatch(name) and shortest <= len(name) <= longest), name


def test_the_walkthrough_checks_agree_with_the_project_template(templates: dict[str, dict]) -> None:
    """The template constrains both values too (CloudFormation matches AllowedPattern against the whole value,
    "Parameters" in the CloudFormation User Guide): the walkthrough refuses exactly what the template would."""
    parameters = templates["project-s3-fs-ingestion"]["Parameters"]
    name = parameters["SageMakerProjectName"]
    for candidate in VALID_PROJECT_NAMES + INVALID_PROJECT_NAMES:
        template_accepts = bool(re.fullmatch(name["AllowedPattern"], candidate)) and (
            name["MinLength"] <= len(candidate) <= name["MaxLength"])
        assert helper_accepts(fsi.check_project_name, candidate) == template_accepts, candidate
    flow = parameters["DataWranglerFlowUrl"]["AllowedPattern"]
    for url in (f"s3://sagemaker-{REGION}-{ACCOUNT}/flows/a.flow", "s3://aws-glue-assets-1-eu-west-1/a.flow",
                "s3://team-data/flows/a.flow", "s3://my-sagemaker-bucket/a.flow", "s3://aws-glue/a.flow"):
        assert helper_accepts(fsi.check_flow_url, url) == bool(re.fullmatch(flow, url)), url


def helper_accepts(check, value: str) -> bool:
    try:
        check(value)
    except fsi.WalkthroughError:
        return False
    return True


def product_response(*artifacts: dict) -> dict:
    return {
        "ProductViewSummary": {"Id": "prodview-abc", "ProductId": "prod-abcdefghijklm", "Name": fsi.PRODUCT_NAME},
        "ProvisioningArtifacts": list(artifacts),
    }


def artifact(artifact_id: str, name: str, day: int, guidance: str = "DEFAULT") -> dict:
    return {"Id": artifact_id, "Name": name, "CreatedTime": dt.datetime(2025, 1, day), "Guidance": guidance}


def test_the_newest_active_product_version_is_chosen() -> None:
    sc = client("servicecatalog")
    stubber = Stubber(sc)
    response = product_response(artifact("pa-1", "1.0.0", 1), artifact("pa-3", "1.2.0", 3, "DEPRECATED"),
                                artifact("pa-2", "1.1.0", 2))
    stubber.add_response("describe_product", response, {"Name": fsi.PRODUCT_NAME})
    stubber.add_response("describe_product", response, {"Name": fsi.PRODUCT_NAME})
    stubber.add_response("describe_product", response, {"Name": fsi.PRODUCT_NAME})
    with stubber:
        assert fsi.project.find_product_version(sc) == {
            "ProductId": "prod-abcdefghijklm", "ProvisioningArtifactId": "pa-2", "Version": "1.1.0"}
        assert fsi.project.find_product_version(sc, version="1.0.0")["ProvisioningArtifactId"] == "pa-1"
        with pytest.raises(fsi.WalkthroughError, match=r"no active version '2.0.0' \(available: 1.0.0, 1.2.0, 1.1.0\)"):
            fsi.project.find_product_version(sc, version="2.0.0")


def test_a_product_not_shared_with_the_role_says_whom_to_ask() -> None:
    sc = client("servicecatalog")
    stubber = Stubber(sc)
    stubber.add_client_error("describe_product", "ResourceNotFoundException", "not found",
                             expected_params={"Name": fsi.PRODUCT_NAME})
    with stubber, pytest.raises(fsi.WalkthroughError, match="ask the platform admin"):
        fsi.project.find_product_version(sc)


def offline_aws() -> object:
    """An Aws whose calls are all stubbed (identity set: no STS call)."""
    aws = fsi.Aws(region=REGION)
    aws.identity = {"Account": ACCOUNT, "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Studio/alice"}
    return aws


def add_bucket_in_region(stubber: Stubber, bucket: str = "walkthrough-data", region: str = REGION) -> None:
    stubber.add_response("head_bucket", {"BucketRegion": region}, {"Bucket": bucket, "ExpectedBucketOwner": ACCOUNT})


def test_create_project_through_service_catalog() -> None:
    aws = offline_aws()
    parameters = fsi.template_parameters(make_state())
    s3, sc, sm = Stubber(aws.s3), Stubber(aws.client("servicecatalog")), Stubber(aws.sagemaker)
    add_bucket_in_region(s3)
    sc.add_response("describe_product", product_response(artifact("pa-2", "1.1.0", 2)), {"Name": fsi.PRODUCT_NAME})
    sm.add_response(
        "create_project",
        {"ProjectArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:project/abalone-ingestion", "ProjectId": "p-abc123"},
        {
            "ProjectName": "abalone-ingestion",
            "ProjectDescription": ANY,
            "ServiceCatalogProvisioningDetails": {
                "ProductId": "prod-abcdefghijklm",
                "ProvisioningArtifactId": "pa-2",
                "ProvisioningParameters": parameters,
            },
        },
    )
    with s3, sc, sm:
        created = fsi.create_project(aws, "abalone-ingestion", parameters)
    assert created["ProjectId"] == "p-abc123"
    for stubber in (s3, sc, sm):
        stubber.assert_no_pending_responses()


def test_create_project_from_the_s3_template_and_reuse_an_existing_one() -> None:
    aws = offline_aws()
    url = f"https://releases-bucket.s3.{REGION}.amazonaws.com/releases/s3-fs-ingestion/1.0.0/project-s3-fs-ingestion.yaml"
    parameters = [{"Key": "DataBucketName", "Value": "walkthrough-data"}]
    s3, stubber = Stubber(aws.s3), Stubber(aws.sagemaker)
    add_bucket_in_region(s3)
    expected = {
        "ProjectName": "abalone-ingestion",
        "ProjectDescription": ANY,
        "TemplateProviders": [{"CfnTemplateProvider": {"TemplateName": "s3-fs-ingestion", "TemplateURL": url,
                                                       "Parameters": parameters}}],
    }
    stubber.add_client_error("create_project", "ValidationException",
                             "Project abalone-ingestion already exists", expected_params=expected)
    stubber.add_response("describe_project", project_response("CreateCompleted"), {"ProjectName": "abalone-ingestion"})
    with s3, stubber:
        created = fsi.create_project(aws, "abalone-ingestion", parameters, source="S3Template", template_url=url)
        # Refused before any call (the stubbers have no answers left):
        with pytest.raises(fsi.WalkthroughError, match="TEMPLATE_URL must be the https://"):
            fsi.create_project(aws, "abalone-ingestion", parameters, source="S3Template", template_url="s3://b/t.yaml")
        with pytest.raises(fsi.WalkthroughError, match="TEMPLATE_SOURCE must be one of"):
            fsi.create_project(aws, "abalone-ingestion", parameters, source="Git")
    assert created == {"ProjectName": "abalone-ingestion", "ProjectId": "p-abc123",
                       "ProjectArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:project/abalone-ingestion"}


# --- checks before CreateProject: connection, data bucket Region, Data Wrangler flow ------------------------

CONNECTION = f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
LEGACY_CONNECTION = f"arn:aws:codestar-connections:us-east-1:{ACCOUNT}:connection/aEXAMPLE-8aad-4d5d-8878-dfcab0bc441f"


def connection_answer(arn: str, status: str = "AVAILABLE") -> dict:
    return {"Connection": {"ConnectionName": "github", "ConnectionArn": arn, "ProviderType": "GitHub",
                           "OwnerAccountId": ACCOUNT, "ConnectionStatus": status}}


def connection_stubbers(aws) -> dict[str, Stubber]:
    """Stubbers on both connection APIs, each in the region of the ARNs used here: a call to the wrong API
    (or region) finds no answer and fails."""
    return {"codeconnections": Stubber(aws.client("codeconnections", REGION)),
            "codestar-connections": Stubber(aws.client("codestar-connections", "us-east-1"))}


def add_connection(stubber: Stubber, arn: str, status: str = "AVAILABLE", tags: list | None = None) -> None:
    stubber.add_response("get_connection", connection_answer(arn, status), {"ConnectionArn": arn})
    if status == "AVAILABLE" or tags is not None:
        stubber.add_response("list_tags_for_resource", {"Tags": tags if tags is not None else []},
                             {"ResourceArn": arn})


SAGEMAKER_TAG = [{"Key": "sagemaker", "Value": "true"}, {"Key": "team", "Value": "ml"}]


@pytest.mark.parametrize(("arn", "service"), [(CONNECTION, "codeconnections"),
                                              (LEGACY_CONNECTION, "codestar-connections")])
def test_a_tagged_available_connection_is_read_with_its_own_api(arn: str, service: str) -> None:
    """Connections made since July 2024 have codeconnections ARNs, older ones codestar-connections ARNs; both APIs
    remain and IAM wants the resource's own service prefix (Developer Tools console User Guide, "Connections
    rename - Summary of changes"). A connection's data is managed in the Region of its ARN ("Global resources in
    AWS CodeConnections")."""
    aws = offline_aws()
    stubbers = connection_stubbers(aws)
    add_connection(stubbers[service], arn, tags=SAGEMAKER_TAG)
    with stubbers["codeconnections"], stubbers["codestar-connections"]:
        checked = fsi.check_connection(aws, arn)
    assert checked == {"ConnectionArn": arn, "ConnectionStatus": "AVAILABLE", "ProviderType": "GitHub",
                       "checked": "yes"}
    stubbers[service].assert_no_pending_responses()
    assert aws.client("codestar-connections", "us-east-1").meta.region_name == "us-east-1"
    assert aws.client("codeconnections").meta.region_name == REGION


@pytest.mark.parametrize("tags", [
    [],
    [{"Key": "sagemaker", "Value": "false"}],
    [{"Key": "sagemaker-project", "Value": "true"}],
    [{"Key": "Team", "Value": "true"}],
])
@pytest.mark.parametrize(("arn", "service"), [(CONNECTION, "codeconnections"),
                                              (LEGACY_CONNECTION, "codestar-connections")])
def test_an_untagged_connection_is_refused_with_the_command_that_tags_it(arn: str, service: str, tags: list) -> None:
    """The project roles' AWS-managed policies (AmazonSageMakerServiceCatalogProductsCodePipelineServiceRolePolicy,
    ...CodeBuildServiceRolePolicy, v5; public copies: github.com/zoph-io/MAMIP policies/<name>) allow
    codeconnections:UseConnection and codestar-connections:UseConnection only with StringEqualsIgnoreCase
    aws:ResourceTag/sagemaker = "true"."""
    aws = offline_aws()
    stubbers = connection_stubbers(aws)
    add_connection(stubbers[service], arn, tags=tags)
    with stubbers["codeconnections"], stubbers["codestar-connections"], pytest.raises(fsi.WalkthroughError) as refused:
        fsi.check_connection(aws, arn)
    region = arn.split(":")[3]
    command = f"aws {service} tag-resource --region {region} --resource-arn {arn} --tags Key=sagemaker,Value=true"
    assert str(refused.value) == (
        f"connection {arn} is not tagged sagemaker=true, so the project's CodePipeline and CodeBuild roles may not "
        f"use it: run `{command}`, then run this cell again"
    )


def test_the_tag_command_matches_both_apis_request_shape() -> None:
    """`aws <service> tag-resource --resource-arn ... --tags Key=...,Value=...` is the CLI form of TagResource
    (ResourceArn, Tags: list of Tag{Key, Value}) in both API models (CodeConnections API reference, TagResource)."""
    import botocore.session

    session = botocore.session.get_session()
    for service, arn in (("codeconnections", CONNECTION), ("codestar-connections", LEGACY_CONNECTION)):
        operation = session.get_service_model(service).operation_model("TagResource")
        members = operation.input_shape.members
        assert set(members) == {"ResourceArn", "Tags"}
        assert set(members["Tags"].member.members) == {"Key", "Value"}
        assert fsi.connection.tag_command(arn).startswith(f"aws {service} tag-resource ")


@pytest.mark.parametrize("tags", [[{"Key": "SageMaker", "Value": "TRUE"}], [{"Key": "sagemaker", "Value": "True"}]])
def test_tag_key_and_value_match_without_regard_to_case(tags: list) -> None:
    """IAM matches the tag key of aws:ResourceTag/<key> without regard to case (IAM User Guide, global condition
    keys, aws:ResourceTag), and the managed policies compare the value with StringEqualsIgnoreCase."""
    aws = offline_aws()
    stubbers = connection_stubbers(aws)
    add_connection(stubbers["codeconnections"], CONNECTION, tags=tags)
    with stubbers["codeconnections"]:
        assert fsi.check_connection(aws, CONNECTION)["checked"] == "yes"


@pytest.mark.parametrize(("status", "advice"), [
    ("PENDING", "is PENDING: complete it in the console (Developer Tools > Settings > Connections > choose it > "
                "Update pending connection), then run this cell again"),
    ("ERROR", "is ERROR, not AVAILABLE: open it in the console"),
])
def test_a_connection_that_is_not_available_is_refused(status: str, advice: str) -> None:
    """Only an AVAILABLE connection works; one created by the CLI, an SDK or CloudFormation is PENDING until it is
    completed in the console (CodeConnections API reference, Connection)."""
    aws = offline_aws()
    stubbers = connection_stubbers(aws)
    add_connection(stubbers["codeconnections"], CONNECTION, status)
    with stubbers["codeconnections"], pytest.raises(fsi.WalkthroughError) as refused:
        fsi.check_connection(aws, CONNECTION)
    assert str(refused.value).startswith(f"connection {CONNECTION} {advice}")
    assert "\n" not in str(refused.value)
    stubbers["codeconnections"].assert_no_pending_responses()


def test_a_missing_connection_and_a_malformed_arn_are_refused() -> None:
    aws = offline_aws()
    stubbers = connection_stubbers(aws)
    stubbers["codeconnections"].add_client_error("get_connection", "ResourceNotFoundException", "not found",
                                                 expected_params={"ConnectionArn": CONNECTION})
    with stubbers["codeconnections"], pytest.raises(fsi.WalkthroughError, match="does not exist in account"):
        fsi.check_connection(aws, CONNECTION)
    for wrong in ("arn:aws:codecommit:eu-west-1:123456789012:repo", "github.com/org/repo", ""):
        with pytest.raises(fsi.WalkthroughError, match="is not a connection ARN"):
            fsi.check_connection(aws, wrong)


def test_a_connection_the_caller_may_not_read_is_reported_not_refused(walkthrough_log, caplog) -> None:
    """A Studio role without codeconnections:GetConnection cannot check: say what to verify, do not block."""
    aws = offline_aws()
    stubbers = connection_stubbers(aws)
    stubbers["codeconnections"].add_client_error("get_connection", "AccessDeniedException", "denied",
                                                 expected_params={"ConnectionArn": CONNECTION})
    with stubbers["codeconnections"], caplog.at_level(logging.WARNING, logger="fsi_walkthrough"):
        assert fsi.check_connection(aws, CONNECTION)["checked"] == "no"
    assert "make sure it is AVAILABLE and tagged sagemaker=true (aws codeconnections tag-resource" in caplog.text


def connection_parameters(**changes: str) -> list[dict[str, str]]:
    return fsi.template_parameters(make_state(), source_provider="CodeConnection", code_connection_arn=CONNECTION,
                                   repository_id="example-org/abalone-seed-code", extra=changes or None)


def test_create_project_refuses_an_untagged_connection_before_creating_anything(aws) -> None:
    client("s3").create_bucket(Bucket="walkthrough-data", CreateBucketConfiguration={"LocationConstraint": REGION})
    stubbers = connection_stubbers(aws)
    add_connection(stubbers["codeconnections"], CONNECTION, tags=[])
    sm, sc = Stubber(aws.sagemaker), Stubber(aws.client("servicecatalog"))  # no answers: no call may happen
    with stubbers["codeconnections"], sm, sc, pytest.raises(fsi.WalkthroughError, match="not tagged sagemaker=true"):
        fsi.create_project(aws, "abalone-ingestion", connection_parameters())
    stubbers["codeconnections"].assert_no_pending_responses()


def test_check_before_create_checks_name_bucket_and_connection(aws) -> None:
    client("s3").create_bucket(Bucket="walkthrough-data", CreateBucketConfiguration={"LocationConstraint": REGION})
    assert fsi.check_before_create(aws, "2024-ingest", fsi.template_parameters(make_state())) == {
        "ProjectName": "2024-ingest", "DataBucketRegion": REGION}
    stubbers = connection_stubbers(aws)
    add_connection(stubbers["codeconnections"], CONNECTION, tags=SAGEMAKER_TAG)
    with stubbers["codeconnections"]:
        checked = fsi.check_before_create(aws, "abalone-ingestion", connection_parameters())
    assert checked["ConnectionStatus"] == "AVAILABLE"
    with pytest.raises(fsi.WalkthroughError, match="needs CODE_CONNECTION_ARN and REPOSITORY_ID"):
        fsi.check_before_create(aws, "abalone-ingestion", fsi.template_parameters(
            make_state(), source_provider="CodeConnection", code_connection_arn=CONNECTION))
    with pytest.raises(fsi.WalkthroughError, match="not a valid SageMaker project name"):
        fsi.check_before_create(aws, "abalone_ingestion", fsi.template_parameters(make_state()))


@pytest.mark.parametrize("url", [f"s3://sagemaker-{REGION}-{ACCOUNT}/flows/abalone.flow",
                                 "s3://aws-glue-assets-123456789012-eu-west-1/flows/abalone.flow"])
def test_a_flow_in_a_bucket_the_build_can_read_is_accepted(aws, url: str) -> None:
    """The project's build reads the flow as the AWS-managed CodeBuild role, whose policy
    (AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy, Sid AmazonSageMakerCodeBuildS3Permission)
    covers only arn:aws:s3:::sagemaker-* and arn:aws:s3:::aws-glue-*."""
    client("s3").create_bucket(Bucket="walkthrough-data", CreateBucketConfiguration={"LocationConstraint": REGION})
    parameters = fsi.template_parameters(make_state(), extra={"TransformMode": "DataWranglerFlow",
                                                              "DataWranglerFlowUrl": url,
                                                              "DataWranglerOutputName": "node.default"})
    assert fsi.check_before_create(aws, "abalone-ingestion", parameters)["DataWranglerFlowUrl"] == url


def test_a_flow_the_build_cannot_read_is_refused_before_creating_the_project(aws) -> None:
    client("s3").create_bucket(Bucket="walkthrough-data", CreateBucketConfiguration={"LocationConstraint": REGION})
    flow = {"TransformMode": "DataWranglerFlow", "DataWranglerOutputName": "node.default"}
    sm = Stubber(aws.sagemaker)  # no answers: CreateProject must not be called
    with sm, pytest.raises(fsi.WalkthroughError) as refused:
        fsi.create_project(aws, "abalone-ingestion", fsi.template_parameters(
            make_state(), extra={**flow, "DataWranglerFlowUrl": "s3://team-data/flows/abalone.flow"}),
            source="S3Template", template_url="https://b.s3.amazonaws.com/t.yaml")
    assert str(refused.value) == (
        "the project's CodeBuild role can read only buckets named sagemaker-* or aws-glue-*, not team-data: copy the "
        f"flow to s3://sagemaker-{REGION}-{ACCOUNT}/flows/abalone.flow and use that DataWranglerFlowUrl"
    )
    with pytest.raises(fsi.WalkthroughError, match="needs DataWranglerFlowUrl"):
        fsi.check_before_create(aws, "abalone-ingestion", fsi.template_parameters(make_state(), extra=flow))
    with pytest.raises(fsi.WalkthroughError, match="must be an s3://bucket/key URL"):
        fsi.check_flow_url("https://sagemaker-x.s3.amazonaws.com/a.flow")
    # In Script mode the flow URL is not used, so it is not checked.
    script = fsi.template_parameters(make_state(), extra={"DataWranglerFlowUrl": "s3://team-data/a.flow"})
    assert "DataWranglerFlowUrl" not in fsi.check_before_create(aws, "abalone-ingestion", script)


def project_response(status: str, **extra) -> dict:
    return {
        "ProjectArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:project/abalone-ingestion",
        "ProjectName": "abalone-ingestion",
        "ProjectId": "p-abc123",
        "ProjectStatus": status,
        "CreationTime": dt.datetime(2025, 1, 1),
        **extra,
    }


def test_wait_for_project_until_created(clock: FakeClock) -> None:
    sm = client("sagemaker")
    stubber = Stubber(sm)
    for status in ("Pending", "CreateInProgress", "CreateCompleted"):
        stubber.add_response("describe_project", project_response(status), {"ProjectName": "abalone-ingestion"})
    with stubber:
        project = fsi.wait_for_project(sm, "abalone-ingestion", sleep=clock.sleep, clock=clock.clock)
    assert project["ProjectStatus"] == "CreateCompleted"
    assert clock.sleeps == [15, 15]


def test_a_failed_project_raises_with_the_stacks_reason(clock: FakeClock) -> None:
    sm = client("sagemaker")
    stubber = Stubber(sm)
    failed = project_response("CreateFailed", ServiceCatalogProvisionedProductDetails={
        "ProvisionedProductId": "pp-abc", "ProvisionedProductStatusMessage": "UploadRule: Invalid EventPattern"})
    stubber.add_response("describe_project", failed, {"ProjectName": "abalone-ingestion"})
    with stubber, pytest.raises(fsi.WalkthroughError, match="CreateFailed: UploadRule: Invalid EventPattern"):
        fsi.wait_for_project(sm, "abalone-ingestion", sleep=clock.sleep, clock=clock.clock)


def test_a_slow_project_times_out_with_where_to_look(clock: FakeClock) -> None:
    sm = client("sagemaker")
    stubber = Stubber(sm)
    for _ in range(3):
        stubber.add_response("describe_project", project_response("CreateInProgress"),
                             {"ProjectName": "abalone-ingestion"})
    with stubber, pytest.raises(TimeoutError, match="still CreateInProgress after 1 min: watch it in Studio"):
        fsi.wait_for_project(sm, "abalone-ingestion", timeout=60, poll=30, sleep=clock.sleep, clock=clock.clock)


def test_stack_name_of_both_channels() -> None:
    sc_project = project_response("CreateCompleted", ServiceCatalogProvisionedProductDetails={
        "ProvisionedProductId": "pp-abcdefghijklm"})
    assert fsi.project.stack_name(sc_project, ACCOUNT) == f"SC-{ACCOUNT}-pp-abcdefghijklm"
    s3_project = project_response("CreateCompleted", TemplateProviderDetails=[{"CfnTemplateProviderDetail": {
        "TemplateName": "s3-fs-ingestion", "TemplateURL": "https://x/t.yaml",
        "StackDetail": {"Name": "SM-p-abc123", "Id": "arn:aws:cloudformation:eu-west-1:1:stack/SM-p-abc123/1",
                        "StatusMessage": ""}}}])
    assert fsi.project.stack_name(s3_project, ACCOUNT).endswith("stack/SM-p-abc123/1")
    with pytest.raises(fsi.WalkthroughError, match="names no stack yet"):
        fsi.project.stack_name(project_response("Pending"), ACCOUNT)


def test_project_resources_reads_outputs_buckets_and_log_groups(aws) -> None:
    stack = f"SC-{ACCOUNT}-pp-abcdefghijklm"
    template = {
        "Resources": {
            "ArtifactBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "sagemaker-p-abc123-artifacts"}},
            "TrailBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "sagemaker-p-abc123-trail"}},
            "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/aws/lambda/start"}},
        },
        "Outputs": {"SageMakerPipelineName": {"Value": "sagemaker-p-abc123-fs-ingestion"},
                    "ArtifactBucketName": {"Value": {"Ref": "ArtifactBucket"}}},
    }
    client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    project = project_response("CreateCompleted", ServiceCatalogProvisionedProductDetails={
        "ProvisionedProductId": "pp-abcdefghijklm"})
    info = fsi.project_resources(aws, project)
    assert info["StackName"] == stack
    assert info["PipelineName"] == "sagemaker-p-abc123-fs-ingestion"
    assert info["Outputs"]["ArtifactBucketName"] == "sagemaker-p-abc123-artifacts"
    assert info["Buckets"] == ["sagemaker-p-abc123-artifacts", "sagemaker-p-abc123-trail"]
    assert info["LogGroups"] == ["/aws/lambda/start"]


def test_delete_project_waits_until_it_is_gone(clock: FakeClock) -> None:
    sm = client("sagemaker")
    stubber = Stubber(sm)
    stubber.add_response("delete_project", {}, {"ProjectName": "abalone-ingestion"})
    stubber.add_response("describe_project", project_response("DeleteInProgress"), {"ProjectName": "abalone-ingestion"})
    stubber.add_client_error("describe_project", "ValidationException", "Project abalone-ingestion does not exist",
                             expected_params={"ProjectName": "abalone-ingestion"})
    stubber.add_client_error("delete_project", "ValidationException", "Project abalone-ingestion does not exist",
                             expected_params={"ProjectName": "abalone-ingestion"})
    with stubber:
        assert fsi.project.delete_project(sm, "abalone-ingestion", sleep=clock.sleep, clock=clock.clock)
        assert not fsi.project.delete_project(sm, "abalone-ingestion", sleep=clock.sleep, clock=clock.clock)
    stubber.assert_no_pending_responses()


# --- upload and pipeline execution ----------------------------------------------------------------------


def create_pipeline(name: str) -> None:
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "InputDataUrl", "Type": "String"}], "Steps": []}
    client("sagemaker").create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition),
                                        RoleArn=ROLE, ClientRequestToken="t" * 32)


def start_execution(name: str, url: str) -> str:
    return client("sagemaker").start_pipeline_execution(
        PipelineName=name,
        PipelineParameters=[{"Name": "InputDataUrl", "Value": url}],
        ClientRequestToken=url[-40:].ljust(32, "x"),
    )["PipelineExecutionArn"]


def test_upload_finds_and_follows_its_execution(aws, tmp_path: Path) -> None:
    client("s3").create_bucket(Bucket="walkthrough-data", CreateBucketConfiguration={"LocationConstraint": REGION})
    state = make_state(project={"PipelineName": "sagemaker-p-abc123-fs-ingestion"})
    path = tmp_path / "abalone-20250101T000000Z.csv"
    path.write_text("record_id,sex\nabalone-0001,M\n")
    uploaded = fsi.upload(aws, state, path)
    assert uploaded["url"] == "s3://walkthrough-data/incoming/abalone-20250101T000000Z.csv"
    assert state.uploads == [uploaded["url"]]
    create_pipeline("sagemaker-p-abc123-fs-ingestion")
    start_execution("sagemaker-p-abc123-fs-ingestion", "s3://walkthrough-data/incoming/other.csv")
    arn = start_execution("sagemaker-p-abc123-fs-ingestion", uploaded["url"])
    execution = fsi.follow_upload(aws, state, uploaded)  # moto's executions succeed at once
    assert execution["PipelineExecutionArn"] == arn
    assert execution["PipelineExecutionStatus"] == "Succeeded"


def test_follow_upload_needs_the_project(aws) -> None:
    with pytest.raises(fsi.WalkthroughError, match="the project's pipeline name is unknown"):
        fsi.follow_upload(aws, make_state(), {"url": "s3://b/k", "uploaded_at": "2025-01-01T00:00:00+00:00"})


def test_no_execution_for_the_upload_times_out_naming_where_to_look(aws, clock: FakeClock) -> None:
    create_pipeline("pipe")
    with pytest.raises(TimeoutError, match=r"no execution of pipeline pipe started for s3://b/k within 1 min.*"
                                           r"dead-letter queue\. \(DeadLetterQueueUrl: https://q\)"):
        fsi.ingestion.find_execution(aws.sagemaker, "pipe", "s3://b/k", timeout=60, poll=30, sleep=clock.sleep,
                                     clock=clock.clock, diagnostics="(DeadLetterQueueUrl: https://q)")


def test_wait_for_deployment_until_the_build_deployed_the_pipeline() -> None:
    aws = fsi.Aws(region=REGION)
    state = make_state(project={"PipelineName": "pipe", "Outputs": {"SeedCodePipelineName": "seed-ci"}})
    stubber = Stubber(aws.sagemaker)
    stubber.add_client_error("describe_pipeline", "ResourceNotFound", "Pipeline 'pipe' does not exist.",
                             expected_params={"PipelineName": "pipe"})
    stubber.add_response("describe_pipeline", {"PipelineName": "pipe", "PipelineStatus": "Active"},
                         {"PipelineName": "pipe"})
    with stubber:
        assert fsi.wait_for_deployment(aws, state, poll=0)["PipelineStatus"] == "Active"
    stubber.assert_no_pending_responses()


def test_a_pipeline_that_never_comes_names_the_ci_cd_pipeline(clock: FakeClock) -> None:
    sm = client("sagemaker")
    stubber = Stubber(sm)
    for _ in range(2):
        stubber.add_client_error("describe_pipeline", "ResourceNotFound", "no", expected_params={"PipelineName": "p"})
    with stubber, pytest.raises(TimeoutError, match=r"still not deployed after 1 min.*\(CodePipeline: seed-ci\)"):
        fsi.ingestion.wait_for_pipeline(sm, "p", timeout=60, poll=60, sleep=clock.sleep, clock=clock.clock,
                                        diagnostics="(CodePipeline: seed-ci)")


def test_wait_for_deployment_against_moto(aws) -> None:
    create_pipeline("sagemaker-p-abc123-fs-ingestion")
    state = make_state(project={"PipelineName": "sagemaker-p-abc123-fs-ingestion"})
    assert fsi.wait_for_deployment(aws, state)["PipelineName"] == "sagemaker-p-abc123-fs-ingestion"


def execution_response(status: str, **extra) -> dict:
    return {"PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/e1",
            "PipelineExecutionStatus": status, **extra}


def test_a_failed_execution_raises_with_the_failing_step(clock: FakeClock) -> None:
    sm = client("sagemaker")
    arn = execution_response("Failed")["PipelineExecutionArn"]
    stubber = Stubber(sm)
    stubber.add_response("describe_pipeline_execution", execution_response("Executing"), {"PipelineExecutionArn": arn})
    stubber.add_response("describe_pipeline_execution", execution_response("Failed", FailureReason="Step failed"),
                         {"PipelineExecutionArn": arn})
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
        {"StepName": "TransformAndIngest", "StepStatus": "Failed", "FailureReason": "ClientError: 3 rows not written"},
        {"StepName": "Other", "StepStatus": "Succeeded"},
    ]}, {"PipelineExecutionArn": arn})
    with stubber, pytest.raises(fsi.WalkthroughError,
                                match="is Failed: Step failed; failed steps: TransformAndIngest: ClientError: 3 rows"):
        fsi.ingestion.wait_for_execution(sm, arn, sleep=clock.sleep, clock=clock.clock)
    assert clock.sleeps == [30]


def test_a_long_execution_times_out_and_keeps_running(clock: FakeClock) -> None:
    sm = client("sagemaker")
    arn = execution_response("Executing")["PipelineExecutionArn"]
    stubber = Stubber(sm)
    for _ in range(3):
        stubber.add_response("describe_pipeline_execution", execution_response("Executing"),
                             {"PipelineExecutionArn": arn})
    with stubber, pytest.raises(TimeoutError, match="still Executing after 1 min: it keeps running"):
        fsi.ingestion.wait_for_execution(sm, arn, timeout=60, poll=30, sleep=clock.sleep, clock=clock.clock)


def test_prepare_upload_samples_the_data_set_into_a_new_file(tmp_path: Path) -> None:
    frame = fsi.load_abalone(fsi.download_abalone(str(write_abalone_zip(tmp_path / "a.zip")), tmp_path))
    csv = fsi.write_csv(frame, tmp_path / "abalone.csv")
    state = make_state(local_csv=str(csv))
    path = fsi.prepare_upload(state, 4, tmp_path / "up", now=dt.datetime(2025, 3, 14, 9, 21, 7, tzinfo=dt.UTC))
    assert path.name == "abalone-20250314T092107Z.csv"
    assert len(fsi.record_ids(path, count=10)) == 4
    assert fsi.record_ids(path, count=2) == fsi.record_ids(path)[:2]
    with pytest.raises(fsi.WalkthroughError, match=r"the data set's CSV \(00-setup\) is unknown"):
        fsi.prepare_upload(make_state(), 4, tmp_path)


# --- reading features -----------------------------------------------------------------------------------


def record(record_id: str, rings: str) -> list[dict]:
    return [{"FeatureName": "record_id", "ValueAsString": record_id}, {"FeatureName": "rings", "ValueAsString": rings}]


def test_get_records_reads_the_online_store() -> None:
    runtime = client("sagemaker-featurestore-runtime")
    stubber = Stubber(runtime)
    for record_id, rings in (("abalone-0001", "15"), ("abalone-0002", "7")):
        stubber.add_response("get_record", {"Record": record(record_id, rings)},
                             {"FeatureGroupName": "fg", "RecordIdentifierValueAsString": record_id})
    with stubber:
        frame = fsi.features.get_records(runtime, "fg", ["abalone-0001", "abalone-0002"])
    assert frame.to_dict("records") == [{"record_id": "abalone-0001", "rings": "15"},
                                        {"record_id": "abalone-0002", "rings": "7"}]


def test_missing_online_records_are_named() -> None:
    runtime = client("sagemaker-featurestore-runtime")
    stubber = Stubber(runtime)
    stubber.add_response("get_record", {}, {"FeatureGroupName": "fg", "RecordIdentifierValueAsString": "a"})
    stubber.add_client_error("get_record", "ResourceNotFound", "no", 404,
                             expected_params={"FeatureGroupName": "fg", "RecordIdentifierValueAsString": "b"})
    with stubber, pytest.raises(fsi.WalkthroughError, match="has no record for a, b: did the pipeline"):
        fsi.features.get_records(runtime, "fg", ["a", "b"])


OFFLINE_DESCRIPTION = {
    "FeatureGroupName": "fg",
    "RecordIdentifierFeatureName": "record_id",
    "EventTimeFeatureName": "event_time",
    "OfflineStoreConfig": {"DataCatalogConfig": {"TableName": "fg_1700000000", "Catalog": "AwsDataCatalog",
                                                 "Database": "sagemaker_featurestore"}},
}


def test_offline_query_takes_the_latest_row_of_each_id() -> None:
    sql = fsi.features.offline_query(OFFLINE_DESCRIPTION, ["abalone-0001", "o'brien"])
    assert '"sagemaker_featurestore"."fg_1700000000"' in sql
    assert "\"record_id\" IN ('abalone-0001', 'o''brien')" in sql
    assert 'PARTITION BY "record_id" ORDER BY "event_time" DESC' in sql
    assert sql.endswith("WHERE row_rank = 1 AND NOT is_deleted")


def athena_result(*rows: list[str]) -> dict:
    header = ["record_id", "rings"]
    return {"ResultSet": {"Rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in (header, *rows)],
                          "ResultSetMetadata": {"ColumnInfo": [{"Name": n, "Type": "varchar"} for n in header]}}}


def add_query(stubber: Stubber, query_id: str, states: list[str], result: dict | None) -> None:
    stubber.add_response("start_query_execution", {"QueryExecutionId": query_id}, {
        "QueryString": ANY,
        "QueryExecutionContext": {"Database": "sagemaker_featurestore", "Catalog": "AwsDataCatalog"},
        "ResultConfiguration": {"OutputLocation": "s3://b/work/athena-results/"},
        "WorkGroup": "primary",
    })
    for state in states:
        stubber.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": state}}},
                             {"QueryExecutionId": query_id})
    if result is not None:
        stubber.add_response("get_query_results", result, {"QueryExecutionId": query_id})


def test_read_offline_store_queries_until_every_record_is_there(clock: FakeClock) -> None:
    athena = client("athena")
    stubber = Stubber(athena)
    add_query(stubber, "q1", ["QUEUED", "SUCCEEDED"], athena_result(["abalone-0001", "15"]))
    add_query(stubber, "q2", ["SUCCEEDED"], athena_result(["abalone-0001", "15"], ["abalone-0002", "7"]))
    with stubber:
        frame = fsi.features.read_offline_store(athena, OFFLINE_DESCRIPTION, ["abalone-0001", "abalone-0002"],
                                                "s3://b/work/athena-results/", sleep=clock.sleep, clock=clock.clock)
    assert frame.to_dict("records") == [{"record_id": "abalone-0001", "rings": "15"},
                                        {"record_id": "abalone-0002", "rings": "7"}]
    assert clock.sleeps == [2, 60]
    stubber.assert_no_pending_responses()


def test_offline_store_timeout_explains_the_replication_delay(clock: FakeClock) -> None:
    athena = client("athena")
    stubber = Stubber(athena)
    add_query(stubber, "q1", ["SUCCEEDED"], athena_result())
    with stubber, pytest.raises(TimeoutError, match="still lacks 1 of 1 record.*within about 15 minutes"):
        fsi.features.read_offline_store(athena, OFFLINE_DESCRIPTION, ["abalone-0001"], "s3://b/work/athena-results/",
                                        timeout=0, sleep=clock.sleep, clock=clock.clock)


def test_a_failed_athena_query_raises_its_reason(clock: FakeClock) -> None:
    athena = client("athena")
    stubber = Stubber(athena)
    stubber.add_response("start_query_execution", {"QueryExecutionId": "q1"}, None)
    stubber.add_response("get_query_execution", {"QueryExecution": {"Status": {
        "State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND"}}}, {"QueryExecutionId": "q1"})
    with stubber, pytest.raises(fsi.WalkthroughError, match="Athena query q1 FAILED: TABLE_NOT_FOUND"):
        fsi.features.run_query(athena, "SELECT 1", "s3://b/r/", sleep=clock.sleep, clock=clock.clock)


# --- clean-up -------------------------------------------------------------------------------------------


def test_nothing_is_deleted_without_confirmation(caplog: pytest.LogCaptureFixture) -> None:
    state = make_state(project={"ProjectName": "abalone-ingestion", "ProjectId": "p-abc123", "StackName": "SC-1-pp-1",
                                "PipelineName": "pipe", "Buckets": ["b1"], "LogGroups": ["/aws/codebuild/x"]},
                       uploads=["s3://walkthrough-data/incoming/a.csv"],
                       created={"data_bucket": True, "eventbridge_notifications": True})
    plan = fsi.cleanup_plan(state)
    assert plan == [
        "SageMaker project abalone-ingestion (p-abc123) and its stack SC-1-pp-1",
        "SageMaker pipeline pipe and its execution history",
        "bucket b1, every object version in it",
        "log group /aws/codebuild/x",
        "feature group abalone-walkthrough, its online store, offline store data and Glue table",
        "uploaded file s3://walkthrough-data/incoming/a.csv",
        "everything under s3://walkthrough-data/work/ (offline store files, query results)",
        "bucket walkthrough-data if nothing else is left in it (the walkthrough created it)",
        "EventBridge notifications of bucket walkthrough-data (an earlier 00-setup turned them on)",
    ]
    for answer in (False, "yes", 1, None):
        with pytest.raises(fsi.CleanupNotConfirmed, match="Nothing was deleted.*CONFIRM_DELETE = True"):
            fsi.require_confirmation(answer, plan)
    fsi.require_confirmation(True, plan)


def versioned_bucket(name: str) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2"):
        s3.put_object(Bucket=name, Key="pipeline/code.tar.gz", Body=body)
    s3.put_object(Bucket=name, Key="failed-rows/a.csv", Body=b"x")
    s3.delete_object(Bucket=name, Key="failed-rows/a.csv")  # leaves a delete marker


def test_retained_buckets_are_emptied_of_every_version_and_deleted(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    versioned_bucket("sagemaker-p-abc123-artifacts")
    monkeypatch.setattr(fsi.cleanup, "DELETE_BATCH", 2)  # several DeleteObjects calls
    state = make_state(project={"Buckets": ["sagemaker-p-abc123-artifacts", "sagemaker-p-abc123-trail"]})
    assert fsi.delete_project_buckets(aws, state) == ["sagemaker-p-abc123-artifacts"]
    assert client("s3").list_buckets()["Buckets"] == []


def test_a_failed_object_deletion_names_the_object() -> None:
    s3 = client("s3")
    stubber = Stubber(s3)
    stubber.add_response("delete_objects", {"Errors": [{"Key": "k", "Code": "AccessDenied", "Message": "no"}]}, None)
    with stubber, pytest.raises(fsi.WalkthroughError, match="could not delete 1 object.*e.g. k: AccessDenied"):
        fsi.cleanup._delete_batch(s3, "b", [{"Key": "k", "VersionId": "v"}])


def test_a_state_saved_by_an_earlier_setup_gets_its_notifications_turned_off(aws, tmp_path: Path) -> None:
    """Earlier versions of 00-setup turned the bucket's EventBridge notifications on themselves and said so in
    the state file; the clean-up of such a walkthrough still turns them off (and deletes the bucket it created)."""
    s3 = client("s3")
    fsi.prepare_data_bucket(aws, "walkthrough-data", "S3EventBridge")
    s3.put_bucket_notification_configuration(Bucket="walkthrough-data",
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.put_bucket_versioning(Bucket="walkthrough-data", VersioningConfiguration={"Status": "Enabled"})
    for key in ("incoming/a.csv", "incoming/a.csv", "incoming/a.csv.bak", "work/athena-results/q.csv"):
        s3.put_object(Bucket="walkthrough-data", Key=key, Body=b"x")
    saved = tmp_path / "walkthrough-state.json"  # as an earlier 00-setup wrote it
    saved.write_text(json.dumps({
        "account": ACCOUNT, "created": {"data_bucket": True, "eventbridge_notifications": True},
        "data_bucket": "walkthrough-data", "data_prefix": "incoming/", "data_suffix": "",
        "feature_group_name": "abalone-walkthrough", "local_csv": "", "offline_store_uri": "s3://walkthrough-data/w/o",
        "project": {}, "region": REGION, "trigger_mode": "S3EventBridge",
        "uploads": ["s3://walkthrough-data/incoming/a.csv"], "work_prefix": "work/",
    }))
    state = fsi.State.load(saved)
    assert fsi.delete_walkthrough_files(aws, state) == 3
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="walkthrough-data")["Contents"]] == ["incoming/a.csv.bak"]
    assert fsi.restore_data_bucket(aws, state) == {"eventbridge_notifications": True, "data_bucket": False}
    assert not eventbridge_on("walkthrough-data")
    fsi.cleanup.delete_urls(s3, ["s3://walkthrough-data/incoming/a.csv.bak"])
    assert fsi.restore_data_bucket(aws, state)["data_bucket"] is True
    assert s3.list_buckets()["Buckets"] == []


def test_the_clean_up_leaves_notifications_the_project_stack_manages_alone() -> None:
    """Today's 00-setup turns nothing on: the project's stack restores the bucket's configuration on delete, and
    the clean-up must not take EventBridge notifications away from other users of the bucket."""
    aws = fsi.Aws(region=REGION)
    state = make_state(trigger_mode="S3EventBridge", created={"data_bucket": False})
    with Stubber(aws.s3):  # no answers: any S3 call would fail
        assert fsi.restore_data_bucket(aws, state) == {"eventbridge_notifications": False, "data_bucket": False}
    assert not any("EventBridge" in line for line in fsi.cleanup_plan(state))


def test_pipeline_and_log_groups_are_deleted_once(aws) -> None:
    create_pipeline("sagemaker-p-abc123-fs-ingestion")
    client("logs").create_log_group(logGroupName="/aws/codebuild/sagemaker-abalone-deploy-pipeline")
    state = make_state(project={"PipelineName": "sagemaker-p-abc123-fs-ingestion",
                                "LogGroups": ["/aws/codebuild/sagemaker-abalone-deploy-pipeline", "/aws/lambda/x"]})
    assert fsi.delete_project_pipeline(aws, state)
    assert not fsi.delete_project_pipeline(aws, state)
    assert fsi.delete_project_log_groups(aws, state) == ["/aws/codebuild/sagemaker-abalone-deploy-pipeline"]
    assert not fsi.delete_project_pipeline(aws, make_state())
    assert not fsi.delete_project(aws, make_state())


def test_a_log_group_the_role_may_not_delete_is_reported(walkthrough_log, caplog: pytest.LogCaptureFixture) -> None:
    aws = fsi.Aws(region=REGION)
    stubber = Stubber(aws.client("logs"))
    stubber.add_client_error("delete_log_group", "AccessDeniedException", "no", expected_params={"logGroupName": "/x"})
    with stubber, caplog.at_level(logging.WARNING, logger="fsi_walkthrough"):
        assert fsi.cleanup.delete_log_groups(aws, ["/x"]) == []
    assert "not allowed to delete log group /x" in caplog.text


def test_forget_removes_the_state_file(tmp_path: Path) -> None:
    path = make_state().save(tmp_path / "state.json")
    fsi.forget(path)
    fsi.forget(path)
    assert not path.exists()
