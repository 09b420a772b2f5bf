"""The build entry point (deploy.py): the latest Approved package of the group, then the pipeline upsert.

Against moto (model package groups, versioned packages with approval statuses, ListModelPackages filtering
and sorting, pipelines, tags) and, where moto cannot produce what the service can (an empty page with a
NextToken, a package that is not Completed), against botocore's Stubber, which checks every request against
the SageMaker API model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from conftest import ACCOUNT, REGION
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

import deploy

GROUP = "churn-models"
ROLE_NAME = "demo-p-abc123-execution"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
INFERENCE = {
    "Containers": [{"Image": f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                    "ModelDataUrl": f"s3://sagemaker-{REGION}-{ACCOUNT}/models/churn/model.tar.gz"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
    "SupportedTransformInstanceTypes": ["ml.m5.large"],
}
T0 = datetime(2025, 3, 1, 12, 0, 0)
NO_APPROVED = (f"deploy: failed: no Approved model package in group {GROUP}: approve one; the project redeploys "
               "itself when a package's approval status changes")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """moto with the project's execution role and the model package group, and the CodeBuild environment."""
    with mock_aws():
        role = boto3.client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST))
        boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
        environment = {
            "SAGEMAKER_PROJECT_NAME": "demo",
            "SAGEMAKER_PROJECT_ID": "p-abc123",
            "SAGEMAKER_PIPELINE_NAME": "demo-p-abc123-batch-inference",
            "SAGEMAKER_PIPELINE_ROLE_ARN": role["Role"]["Arn"],
            "ARTIFACT_BUCKET": "demo-p-abc123-artifacts",
            "MODEL_PACKAGE_GROUP_NAME": GROUP,
            "PREDICTIONS_PREFIX": "predictions/",
            "TRANSFORM_INSTANCE_TYPE": "ml.m5.large",
            "TRANSFORM_INSTANCE_COUNT": "1",
            "CONTENT_TYPE": "text/csv",
            "AWS_REGION": REGION,
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        yield environment


def register(status: str, created: datetime, group: str = GROUP) -> str:
    """A new version in ``group`` with approval ``status``, created at ``created``; returns its ARN.

    moto stamps a package with the current time; the service does too, so versions are created in time
    order. The test sets the time it needs on moto's record (moto keeps no other way to choose it)."""
    arn = boto3.client("sagemaker").create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=status, InferenceSpecification=INFERENCE,
    )["ModelPackageArn"]
    sagemaker_backends[ACCOUNT][REGION].model_packages[arn].creation_time = created
    return arn


def set_status(arn: str, status: str) -> None:
    boto3.client("sagemaker").update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)


def only_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def deployed_package(pipeline_name: str) -> str:
    """The model package the deployed pipeline's model step names."""
    document = json.loads(boto3.client("sagemaker").describe_pipeline(PipelineName=pipeline_name)["PipelineDefinition"])
    (model,) = [step for step in document["Steps"] if step["Type"] == "Model"]
    (container,) = model["Arguments"]["Containers"]
    return container["ModelPackageName"]


def no_pipeline() -> bool:
    return boto3.client("sagemaker").list_pipelines()["PipelineSummaries"] == []


def test_the_latest_approved_package_is_deployed_and_named_by_the_pipeline(aws: dict, capsys) -> None:
    v1 = register("Approved", T0)
    v2 = register("Approved", T0 + timedelta(days=1))
    register("Rejected", T0 + timedelta(days=2))  # newer, but rejected
    register("PendingManualApproval", T0 + timedelta(days=3))  # newest, not approved yet
    assert deploy.main([]) == 0
    arn = only_line(capsys.readouterr().out)
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{aws['SAGEMAKER_PIPELINE_NAME']}"
    assert deployed_package(aws["SAGEMAKER_PIPELINE_NAME"]) == v2 != v1

    client = boto3.client("sagemaker")
    described = client.describe_pipeline(PipelineName=aws["SAGEMAKER_PIPELINE_NAME"])
    assert v2 in described["PipelineDescription"]  # an execution's pipeline says which model it used
    assert described["RoleArn"] == aws["SAGEMAKER_PIPELINE_ROLE_ARN"]
    tags = client.list_tags(ResourceArn=arn)["Tags"]
    assert {"Key": "sagemaker:project-name", "Value": "demo"} in tags
    assert {"Key": "sagemaker:project-id", "Value": "p-abc123"} in tags


def test_latest_means_most_recently_created_not_highest_version(aws: dict, capsys) -> None:
    """ListModelPackages sorts by CreationTime when asked (SortBy=CreationTime; the default order is
    Ascending, so the build asks for Descending): the package created last wins, whatever its version."""
    v1 = register("Approved", T0 + timedelta(days=5))
    register("Approved", T0)
    assert deploy.main([]) == 0
    assert deployed_package(aws["SAGEMAKER_PIPELINE_NAME"]) == v1


def test_packages_of_other_groups_are_ignored(aws: dict) -> None:
    boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName="churn-models-v2")
    ours = register("Approved", T0)
    register("Approved", T0 + timedelta(days=1), group="churn-models-v2")
    assert deploy.main([]) == 0
    assert deployed_package(aws["SAGEMAKER_PIPELINE_NAME"]) == ours


def test_an_approval_change_redeploys_with_the_newly_approved_or_the_previous_package(
    aws: dict, capsys
) -> None:
    """The project's EventBridge rule reruns the build whenever a package of the group is approved or
    rejected: approving a newer package switches to it, rejecting it brings back the previous one."""
    v1 = register("Approved", T0)
    v2 = register("PendingManualApproval", T0 + timedelta(days=1))
    name = aws["SAGEMAKER_PIPELINE_NAME"]
    assert deploy.main([]) == 0
    assert deployed_package(name) == v1
    set_status(v2, "Approved")
    assert deploy.main([]) == 0
    assert deployed_package(name) == v2
    set_status(v2, "Rejected")
    assert deploy.main([]) == 0
    assert deployed_package(name) == v1
    arns = capsys.readouterr().out.split()
    assert len(arns) == 3 and len(set(arns)) == 1  # one pipeline, updated in place
    assert v1 in boto3.client("sagemaker").describe_pipeline(PipelineName=name)["PipelineDescription"]


@pytest.mark.parametrize("statuses", [[], ["Rejected"], ["PendingManualApproval", "Rejected"]])
def test_a_group_without_an_approved_package_fails_the_build_in_one_line(aws: dict, capsys, statuses) -> None:
    for day, status in enumerate(statuses):
        register(status, T0 + timedelta(days=day))
    assert deploy.main([]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert only_line(captured.err) == NO_APPROVED
    assert no_pipeline()


def test_rejecting_the_last_approved_package_withdraws_the_pipeline(aws: dict, capsys) -> None:
    """No upload may be scored by a rejected model: the build deletes the pipeline (uploads then go to the
    dead-letter queue, saying to approve a model) and the next approval deploys it again."""
    v1 = register("Approved", T0)
    name = aws["SAGEMAKER_PIPELINE_NAME"]
    assert deploy.main([]) == 0 and not no_pipeline()
    set_status(v1, "Rejected")
    assert deploy.main([]) == 1
    assert no_pipeline()
    assert NO_APPROVED in capsys.readouterr().err
    set_status(v1, "Approved")
    assert deploy.main([]) == 0
    assert deployed_package(name) == v1


def test_a_group_that_does_not_exist_fails_the_build_in_one_line(aws: dict, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MODEL_PACKAGE_GROUP_NAME", "no-such-group")
    assert deploy.main([]) == 1
    message = only_line(capsys.readouterr().err)
    assert message.startswith("deploy: failed: model package group no-such-group does not exist: create it")
    assert "approve a model package in it" in message
    assert no_pipeline()


# -- what moto cannot produce: Stubber (requests checked against the SageMaker API model) -------------------


def summary(version: int, created: datetime) -> dict:
    return {"ModelPackageArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}",
            "ModelPackageGroupName": GROUP, "ModelPackageVersion": version, "CreationTime": created,
            "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved"}


@pytest.fixture
def stubbed() -> Iterator[tuple]:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


LIST_REQUEST = {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
                "SortOrder": "Descending", "MaxResults": 100}


def test_empty_pages_are_followed_until_a_package_appears(stubbed: tuple) -> None:
    """"ListModelPackages" (SageMaker API reference): a truncated response carries a NextToken; a filtered
    list may come back empty with a NextToken, so the build keeps reading while pages are empty."""
    client, stubber = stubbed
    stubber.add_response("describe_model_package_group", {
        "ModelPackageGroupName": GROUP, "ModelPackageGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
        f"model-package-group/{GROUP}", "CreationTime": T0, "CreatedBy": {}, "ModelPackageGroupStatus": "Completed",
    }, {"ModelPackageGroupName": GROUP})
    stubber.add_response("list_model_packages", {"ModelPackageSummaryList": [], "NextToken": "page-2"},
                         LIST_REQUEST)
    stubber.add_response("list_model_packages",
                         {"ModelPackageSummaryList": [summary(9, T0 + timedelta(days=9)), summary(4, T0)],
                          "NextToken": "page-3"},
                         {**LIST_REQUEST, "NextToken": "page-2"})
    chosen = deploy.latest_approved_package(client, GROUP)
    assert chosen["ModelPackageVersion"] == 9  # the first of the sorted list; page 3 is never read


def test_the_last_empty_page_means_no_approved_package(stubbed: tuple) -> None:
    client, stubber = stubbed
    stubber.add_response("describe_model_package_group", {
        "ModelPackageGroupName": GROUP, "ModelPackageGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
        f"model-package-group/{GROUP}", "CreationTime": T0, "CreatedBy": {}, "ModelPackageGroupStatus": "Completed",
    }, {"ModelPackageGroupName": GROUP})
    stubber.add_response("list_model_packages", {"ModelPackageSummaryList": [], "NextToken": "page-2"},
                         LIST_REQUEST)
    stubber.add_response("list_model_packages", {"ModelPackageSummaryList": []},
                         {**LIST_REQUEST, "NextToken": "page-2"})
    with pytest.raises(deploy.NoApprovedPackage, match=f"no Approved model package in group {GROUP}: approve one"):
        deploy.latest_approved_package(client, GROUP)


@pytest.mark.parametrize(("answer", "problem"), [
    ({"ModelPackageStatus": "Failed", "InferenceSpecification": INFERENCE}, "its status is Failed, not Completed"),
    ({"ModelPackageStatus": "Completed"}, "it has no inference specification"),
])
def test_a_package_create_model_cannot_use_fails_the_build(stubbed: tuple, answer: dict, problem: str) -> None:
    """CreateModel builds the model from the package's InferenceSpecification ("ContainerDefinition",
    ModelPackageName, SageMaker API reference); a package without one, or whose validation failed, cannot
    serve, and an execution would fail at its first step."""
    client, stubber = stubbed
    arn = summary(3, T0)["ModelPackageArn"]
    stubber.add_response("describe_model_package", {
        "ModelPackageName": GROUP, "ModelPackageArn": arn, "CreationTime": T0,
        "ModelPackageStatusDetails": {"ValidationStatuses": []}, **answer,
    }, {"ModelPackageName": arn})
    with pytest.raises(deploy.DeployError, match=problem) as raised:
        deploy.check_package(client, arn)
    assert "reject it so that the previous Approved package is used" in str(raised.value)


def test_other_errors_of_the_registry_fail_the_build_with_the_cause(aws: dict, capsys) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error("describe_model_package_group", service_error_code="AccessDeniedException",
                                 service_message="not authorized to perform: sagemaker:DescribeModelPackageGroup",
                                 http_status_code=400, expected_params={"ModelPackageGroupName": ANY})
        session = boto3.session.Session(region_name=REGION)
        session.client = lambda *args, **kwargs: client  # type: ignore[method-assign]
        env = deploy.BuildEnvironment.from_environ(dict(aws))
        with pytest.raises(deploy.DeployError, match="AccessDeniedException.*DescribeModelPackageGroup"):
            deploy.deploy(env, session)
    assert no_pipeline()


# -- settings -----------------------------------------------------------------------------------------------


def test_missing_settings_fail_the_build_in_one_line(aws: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_PACKAGE_GROUP_NAME")
    monkeypatch.setenv("ARTIFACT_BUCKET", " ")
    assert deploy.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert only_line(captured.err) == (
        "deploy: configuration error: missing environment variable(s) ARTIFACT_BUCKET, MODEL_PACKAGE_GROUP_NAME: "
        "the project's CodeBuild project sets them")


def test_invalid_settings_are_all_named(aws: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFORM_INSTANCE_COUNT", "0")
    monkeypatch.setenv("PREDICTIONS_PREFIX", "predictions")
    monkeypatch.setenv("MODEL_PACKAGE_GROUP_NAME", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/x")
    monkeypatch.setenv("CONTENT_TYPE", "csv")
    assert deploy.main([]) == 2
    message = only_line(capsys.readouterr().err)
    assert "TRANSFORM_INSTANCE_COUNT is '0'" in message
    assert "PREDICTIONS_PREFIX is 'predictions'" in message
    assert "MODEL_PACKAGE_GROUP_NAME is 'arn:aws:sagemaker" in message
    assert "CONTENT_TYPE is 'csv'" in message


def test_the_content_type_defaults_to_csv(aws: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTENT_TYPE")
    assert deploy.BuildEnvironment.from_environ(dict(os.environ)).content_type == "text/csv"


def test_a_failed_upsert_fails_the_build_in_one_line(aws: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    register("Approved", T0)
    monkeypatch.setenv("SAGEMAKER_PIPELINE_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/does-not-exist")
    assert deploy.main([]) == 1
    message = only_line(capsys.readouterr().err)
    assert message.startswith(f"deploy: failed: upserting pipeline {aws['SAGEMAKER_PIPELINE_NAME']} failed: ")
    assert "does-not-exist" in message


def test_help_lists_every_setting(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        deploy.main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert all(name in text for name in deploy.ENVIRONMENT)
