"""Deploy each built template on moto's CloudFormation: a smoke test of the subset moto implements.

moto silently skips many resource types (its CloudFormation parser has no model for them): a green deploy
here proves little on its own.
So the test deploys only the resources moto supports (dropping, transitively, what references a skipped
one), asserts each of them really exists in the mocked service afterwards, and reports the skipped types.
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import resource_class_from_type
from template_tools import walk

from generators.products import get
from generators.settings import Settings

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PROJECT_PARAMETERS = {
    "SageMakerProjectName": "Abalone-Ingest",
    "SageMakerProjectId": "p-abcdefghijkl",
    "DataBucketName": "my-data",
    "FeatureGroupName": "abalone",
}
SAGEMAKER_ROLES = [
    "AmazonSageMakerServiceCatalogProductsLaunchRole",
    "AmazonSageMakerServiceCatalogProductsCodeBuildRole",
    "AmazonSageMakerServiceCatalogProductsExecutionRole",
]


def moto_subset(template: dict) -> tuple[dict, dict[str, str]]:
    """The template without resources moto skips and everything that references them."""
    resources = dict(template["Resources"])
    # moto runs a custom resource's function in Docker, which is not available here: the custom resource's
    # handler is tested directly (tests/test_data_bucket_events.py). moto 5.2.5 compares an event source mapping's
    # BatchSize, a string after parameter substitution, with an int (TypeError); CloudFormation converts it (the
    # mapping's wiring is checked on the template in tests/test_lambda_batch.py).
    skipped = {
        k: v["Type"]
        for k, v in resources.items()
        if resource_class_from_type(v["Type"]) is None or v["Type"].startswith("Custom::")
        or v["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    changed = True
    while changed:
        changed = False
        for logical_id, resource in list(resources.items()):
            if logical_id in skipped:
                continue
            if _references(resource, skipped):
                skipped[logical_id] = resource["Type"]
                changed = True
    subset = {k: v for k, v in template.items() if k not in ("Resources", "Outputs", "Rules")}
    subset["Resources"] = {k: v for k, v in resources.items() if k not in skipped}
    subset["Outputs"] = {k: v for k, v in template.get("Outputs", {}).items() if not _references(v, skipped)}
    return subset, skipped


def _references(value: object, logical_ids: dict[str, str]) -> bool:
    for _, item in walk(value):
        if isinstance(item, dict):
            if item.get("Ref") in logical_ids:
                return True
            target = item.get("Fn::GetAtt")
            if target and (target[0] if isinstance(target, list) else target.split(".")[0]) in logical_ids:
                return True
            depends = item.get("DependsOn")
            if depends and any(d in logical_ids for d in ([depends] if isinstance(depends, str) else depends)):
                return True
    return False


def _deploy(template: dict, parameters: dict[str, str]) -> tuple[str, list[dict]]:
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName="smoke",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName="smoke")["Stacks"][0]
    resources = cfn.list_stack_resources(StackName="smoke")["StackResourceSummaries"]
    return stack["StackStatus"], resources


def _report(name: str, deployed: list[dict], skipped: dict[str, str]) -> None:
    unsupported = {
        k: t for k, t in skipped.items() if resource_class_from_type(t) is None or t.startswith("Custom::")
    }
    dependents = sorted(set(skipped) - set(unsupported))
    print(
        f"\n[moto smoke] {name}: {len(deployed)} deployed, {len(skipped)} not deployed: "
        f"{len(unsupported)} of types moto skips ({', '.join(sorted(set(unsupported.values())))})"
        + (f", {len(dependents)} referencing them ({', '.join(dependents)})" if dependents else "")
    )


@pytest.fixture
def aws():
    with mock_aws():
        iam = boto3.client("iam")
        for role in SAGEMAKER_ROLES:
            iam.create_role(RoleName=role, Path="/service-role/", AssumeRolePolicyDocument="{}")
        yield


def test_policies_stack_creates_and_attaches_the_managed_policies(aws, templates) -> None:
    subset, skipped = moto_subset(templates["sm-policies"])
    status, deployed = _deploy(subset, {})
    assert status == "CREATE_COMPLETE"
    _report("sm-policies", deployed, skipped)
    assert not skipped
    iam = boto3.client("iam")
    policies = {p["PolicyName"]: p for p in iam.list_policies(Scope="Local", PathPrefix="/sagemaker-fsi/")["Policies"]}
    assert set(policies) == {
        f"sagemaker-fsi-launch-{REGION}",
        f"sagemaker-fsi-launch-2-{REGION}",
        f"sagemaker-fsi-project-roles-{REGION}",
        f"sagemaker-fsi-execution-{REGION}",
    }
    attached = iam.list_attached_role_policies(RoleName=SAGEMAKER_ROLES[0])["AttachedPolicies"]
    assert sorted(a["PolicyName"] for a in attached) == [
        f"sagemaker-fsi-launch-2-{REGION}",
        f"sagemaker-fsi-launch-{REGION}",
    ]
    execution = iam.list_attached_role_policies(RoleName=SAGEMAKER_ROLES[2])["AttachedPolicies"]
    assert sorted(a["PolicyName"] for a in execution) == [
        f"sagemaker-fsi-execution-{REGION}",
        f"sagemaker-fsi-project-roles-{REGION}",
    ]
    document = iam.get_policy_version(
        PolicyArn=policies[f"sagemaker-fsi-launch-{REGION}"]["Arn"],
        VersionId=policies[f"sagemaker-fsi-launch-{REGION}"]["DefaultVersionId"],
    )["PolicyVersion"]["Document"]
    text = json.dumps(document)
    assert f"arn:aws:iam::{ACCOUNT}:role/sagemaker-fsi/sagemaker-fsi-*" in text


def test_portfolio_stack_is_all_service_catalog_which_moto_skips(templates) -> None:
    subset, skipped = moto_subset(templates["sm-project-sc-portfolio"])
    _report("sm-project-sc-portfolio", [], skipped)
    assert not subset["Resources"], "moto learned Service Catalog: deploy and assert it here"
    assert set(skipped.values()) == {
        "AWS::ServiceCatalog::Portfolio",
        "AWS::ServiceCatalog::CloudFormationProduct",
        "AWS::ServiceCatalog::PortfolioProductAssociation",
        "AWS::ServiceCatalog::PortfolioPrincipalAssociation",
        "AWS::ServiceCatalog::LaunchRoleConstraint",
    }


@pytest.mark.parametrize(("trigger", "start_mode"), [("CloudTrail", "PerFile"), ("S3EventBridge", "Batched")])
def test_project_stack_deploys_what_moto_supports(aws, templates, built, trigger: str, start_mode: str) -> None:
    settings = Settings()
    bucket = settings.artifacts_bucket.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    product = get("s3-fs-ingestion")
    for path in built.archives.values():
        s3.put_object(Bucket=bucket, Key=product.key(settings, path.name), Body=path.read_bytes())

    subset, skipped = moto_subset(templates["project-s3-fs-ingestion"])
    status, deployed = _deploy(subset, {**PROJECT_PARAMETERS, "TriggerMode": trigger, "StartMode": start_mode})
    assert status == "CREATE_COMPLETE"
    _report(f"project-s3-fs-ingestion ({trigger}, {start_mode})", deployed, skipped)
    by_id = {r["LogicalResourceId"]: r for r in deployed}

    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert f"sagemaker-p-abcdefghijkl-artifacts-{ACCOUNT}" in buckets
    assert (f"sagemaker-p-abcdefghijkl-trail-{ACCOUNT}" in buckets) == (trigger == "CloudTrail")
    encryption = s3.get_bucket_encryption(Bucket=f"sagemaker-p-abcdefghijkl-artifacts-{ACCOUNT}")
    assert (
        encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    ), "SSE-KMS with the AWS managed aws/s3 key (no KMSMasterKeyID): Control Tower CT.S3.PR.10"

    function = boto3.client("lambda").get_function(FunctionName="sagemaker-Abalone-Ingest-start-ingest")
    config = function["Configuration"]
    assert config["Runtime"] == "python3.12"
    assert config["Environment"]["Variables"] == {
        "PIPELINE_NAME": "sagemaker-p-abcdefghijkl-fs-ingestion",
        "DATA_BUCKET": "my-data",
        "DATA_PREFIX": "incoming/",
        "DATA_SUFFIX": "",
        "MANIFEST_BUCKET": f"sagemaker-p-abcdefghijkl-artifacts-{ACCOUNT}",
        "MANIFEST_PREFIX": "input-manifests/",
        "DEAD_LETTER_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/sagemaker-Abalone-Ingest-ingestion-dlq",
    }
    assert "ReservedConcurrentExecutions" not in boto3.client("lambda").get_function_concurrency(
        FunctionName="sagemaker-Abalone-Ingest-start-ingest"
    )
    assert config["Role"] == f"arn:aws:iam::{ACCOUNT}:role/sagemaker-fsi/sagemaker-fsi-p-abcdefghijkl-start-ingestion"

    role_policy = boto3.client("iam").get_role_policy(
        RoleName="sagemaker-fsi-p-abcdefghijkl-start-ingestion", PolicyName="start-ingestion"
    )
    assert f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/sagemaker-p-abcdefghijkl-fs-ingestion" in json.dumps(
        role_policy["PolicyDocument"]
    )

    events = boto3.client("events")
    rule = events.describe_rule(Name="sagemaker-Abalone-Ingest-upload")
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail-type"] == (
        ["AWS API Call via CloudTrail"] if trigger == "CloudTrail" else ["Object Created"]
    )
    sqs = boto3.client("sqs")
    dlq_url = sqs.get_queue_url(QueueName="sagemaker-Abalone-Ingest-ingestion-dlq")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert dlq["SqsManagedSseEnabled"] == "true"
    batch_url = sqs.get_queue_url(QueueName="sagemaker-Abalone-Ingest-ingestion-batch")["QueueUrl"]
    batch = sqs.get_queue_attributes(QueueUrl=batch_url, AttributeNames=["All"])["Attributes"]
    assert batch["SqsManagedSseEnabled"] == "true"
    assert json.loads(batch["RedrivePolicy"])["deadLetterTargetArn"] == dlq["QueueArn"]
    (target,) = events.list_targets_by_rule(Rule="sagemaker-Abalone-Ingest-upload")["Targets"]
    # PerFile: the rule invokes the Lambda; Batched: it queues the event for the event source mapping
    assert target["Arn"] == (config["FunctionArn"] if start_mode == "PerFile" else batch["QueueArn"])
    assert target["DeadLetterConfig"]["Arn"] == dlq["QueueArn"]
    assert "StartIngestionLogGroup" in by_id
    assert ("UploadRuleInvokePermission" in by_id) == (start_mode == "PerFile")
    assert {"AWS::CodeCommit::Repository", "AWS::CodePipeline::Pipeline", "AWS::CodeBuild::Project"} <= set(
        skipped.values()
    )
