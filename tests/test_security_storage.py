"""Buckets and queues: private, encrypted, TLS-only, owner-enforced, transient data expiring (every scenario)."""

from __future__ import annotations

import pytest

from generators.products.s3_fs_ingestion import PRODUCT as INGESTION
from security.policy_eval import as_list, statements
from security.scenarios import all_scenarios

PROJECT_TEMPLATE = INGESTION.template_name


@pytest.fixture(scope="module")
def resolved(templates):
    found = list(all_scenarios(templates))
    assert len(found) >= 8
    return found


def _of_type(scenario, resource_type):
    return {k: v for k, v in scenario.resources.items() if v["Type"] == resource_type}


def _tls_deny(document, service: str, resources: set[str]) -> bool:
    for statement in statements(document):
        if (
            statement["Effect"] == "Deny"
            and statement.get("Principal") in ("*", {"AWS": "*"})
            and as_list(statement["Action"]) == [f"{service}:*"]
            and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            and resources <= set(as_list(statement["Resource"]))
        ):
            return True
    return False


def test_every_bucket_is_private_encrypted_and_owner_enforced(resolved) -> None:
    buckets = 0
    for scenario in resolved:
        for logical_id, bucket in _of_type(scenario, "AWS::S3::Bucket").items():
            buckets += 1
            props = bucket["Properties"]
            assert props["PublicAccessBlockConfiguration"] == {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }, logical_id
            (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms", "aws:kms:dsse")
            assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
            assert "AccessControl" not in props, "ACLs are disabled"
            assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
            assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain", logical_id
    assert buckets >= 12  # the artifact bucket in 8 scenarios, the trail bucket in the 4 CloudTrail ones


def test_every_bucket_has_a_tls_only_bucket_policy(resolved) -> None:
    for scenario in resolved:
        policies = {p["Properties"]["Bucket"]: p for p in _of_type(scenario, "AWS::S3::BucketPolicy").values()}
        for logical_id, bucket in _of_type(scenario, "AWS::S3::Bucket").items():
            name = bucket["Properties"]["BucketName"]
            assert name in policies, f"{scenario.label}: {logical_id} has no AWS::S3::BucketPolicy"
            arns = {f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"}
            document = policies[name]["Properties"]["PolicyDocument"]
            assert _tls_deny(document, "s3", arns), f"{scenario.label}: {logical_id} policy is not TLS-only"


def test_trail_bucket_policy_names_the_trail_and_the_account(resolved) -> None:
    trail_scenarios = [s for s in resolved if "UploadTrail" in s.resources]
    assert len(trail_scenarios) >= 4
    for scenario in trail_scenarios:
        trail_name = scenario.resources["UploadTrail"]["Properties"]["TrailName"]
        trail_arn = f"arn:aws:cloudtrail:eu-west-1:123456789012:trail/{trail_name}"
        document = scenario.resources["TrailBucketPolicy"]["Properties"]["PolicyDocument"]
        allows = [s for s in statements(document) if s["Effect"] == "Allow"]
        assert {a for s in allows for a in as_list(s["Action"])} == {"s3:GetBucketAcl", "s3:PutObject"}
        for statement in allows:
            assert statement["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceArn": trail_arn, "aws:SourceAccount": "123456789012"}
            }
        (write,) = [s for s in allows if s["Action"] == ["s3:PutObject"]]
        bucket = scenario.resources["TrailBucket"]["Properties"]["BucketName"]
        assert write["Resource"] == [f"arn:aws:s3:::{bucket}/AWSLogs/123456789012/*"]


def _rules(bucket) -> dict[str, dict]:
    return {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


def test_transient_data_expires(resolved) -> None:
    for scenario in resolved:
        for logical_id, bucket in _of_type(scenario, "AWS::S3::Bucket").items():
            rules = _rules(bucket)
            assert all(rule["Status"] == "Enabled" for rule in rules.values())
            assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7
            noncurrent = rules["ExpireNoncurrentVersions"]
            assert noncurrent["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 30
            # Delete markers left by expired versions go with them (the same rule: a rule of its own would
            # have no action, which CloudFormation rejects; see tests/test_deploy_constraints.py).
            assert noncurrent["ExpiredObjectDeleteMarker"] is True, logical_id
        if scenario.template_name != PROJECT_TEMPLATE:
            continue
        if "TrailBucket" in scenario.resources:
            everything = _rules(scenario.resources["TrailBucket"])["ExpireAll"]
            assert everything["ExpirationInDays"] <= 30 and "Prefix" not in everything, "trail logs are transient"
        failed_rows = _rules(scenario.resources["ArtifactBucket"])["ExpireFailedRows"]
        assert failed_rows["Prefix"] == "failed-rows/" and failed_rows["ExpirationInDays"] <= 90


def test_every_queue_is_encrypted_with_a_tls_only_policy(resolved) -> None:
    for scenario in resolved:
        queue_policies = list(_of_type(scenario, "AWS::SQS::QueuePolicy").values())
        for logical_id, queue in _of_type(scenario, "AWS::SQS::Queue").items():
            props = queue["Properties"]
            assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
            arn = f"arn:aws:sqs:eu-west-1:123456789012:{props['QueueName']}"
            url = f"https://sqs.eu-west-1.amazonaws.com/123456789012/{props['QueueName']}"
            mine = [p for p in queue_policies if url in p["Properties"]["Queues"]]
            assert mine, f"{logical_id} has no AWS::SQS::QueuePolicy"
            document = mine[0]["Properties"]["PolicyDocument"]
            assert _tls_deny(document, "sqs", {arn}), f"{logical_id} policy is not TLS-only"
            senders = [s for s in statements(document) if s["Effect"] == "Allow"]
            assert senders and all(s["Principal"] == {"Service": "events.amazonaws.com"} for s in senders)
