"""One test per defect of the original solution (docs/original-defects.md): none of them may come back."""

from __future__ import annotations

import json
import re
from pathlib import Path

from template_tools import (
    as_list,
    policy_documents,
    resources_of_type,
    statements,
    strings,
    walk,
)

from generators.cfn_resolve import resolve_template

PROJECT = "project-s3-fs-ingestion"
UPLOADS = {"PutObject", "CompleteMultipartUpload", "CopyObject"}


def _resolved(templates, **parameters):
    values = {
        "SageMakerProjectName": "Abc",
        "SageMakerProjectId": "p-abcdefghijkl",
        "DataBucketName": "my-data",
        "FeatureGroupName": "abalone",
        **parameters,
    }
    return resolve_template(templates[PROJECT], values)


def test_cloudtrail_uses_one_selector_for_upload_data_events_under_the_prefix(templates) -> None:
    trail = _resolved(templates, DataPrefix="incoming/", TriggerMode="CloudTrail")["Resources"]["UploadTrail"][
        "Properties"
    ]
    assert "EventSelectors" not in trail, "basic selectors logged management write events"
    (selector,) = trail["AdvancedEventSelectors"]
    fields = {f["Field"]: f for f in selector["FieldSelectors"]}
    assert fields["eventCategory"]["Equals"] == ["Data"]
    assert fields["resources.type"]["Equals"] == ["AWS::S3::Object"]
    assert fields["readOnly"]["Equals"] == ["false"]
    assert set(fields["eventName"]["Equals"]) == UPLOADS
    assert fields["resources.ARN"]["StartsWith"] == ["arn:aws:s3:::my-data/incoming/"]
    assert trail["IsMultiRegionTrail"] is False and trail["IncludeGlobalServiceEvents"] is False


def test_upload_rule_filters_bucket_and_key_prefix_in_both_modes(templates) -> None:
    for mode, detail_path in (("CloudTrail", ("requestParameters", "key")), ("S3EventBridge", ("object", "key"))):
        for suffix in ("", ".csv"):
            rule = _resolved(templates, TriggerMode=mode, DataSuffix=suffix)["Resources"]["UploadRule"]
            detail = rule["Properties"]["EventPattern"]["detail"]
            bucket = detail["requestParameters"]["bucketName"] if mode == "CloudTrail" else detail["bucket"]["name"]
            assert bucket == ["my-data"]
            key_filter = detail[detail_path[0]][detail_path[1]]
            expected = [{"wildcard": "incoming/*.csv"}] if suffix else [{"prefix": "incoming/"}]
            assert key_filter == expected, (mode, suffix)


def test_trail_bucket_policy_is_bound_to_the_trail_and_account(templates) -> None:
    policy = _resolved(templates, TriggerMode="CloudTrail")["Resources"]["TrailBucketPolicy"]["Properties"][
        "PolicyDocument"
    ]
    cloudtrail = [
        s
        for s in statements(policy)
        if s.get("Principal") == {"Service": ["cloudtrail.amazonaws.com"]}
        or s.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}
    ]
    assert len(cloudtrail) == 2
    for statement in cloudtrail:
        condition = statement["Condition"]["StringEquals"]
        assert condition["aws:SourceAccount"] == "123456789012"
        assert condition["aws:SourceArn"] == (
            "arn:aws:cloudtrail:eu-west-1:123456789012:trail/sagemaker-p-abcdefghijkl-uploads"
        )


def test_lambda_runtime_is_current_with_dlq_and_without_concurrency_one(templates) -> None:
    functions = resources_of_type(templates[PROJECT], "AWS::Lambda::Function")
    assert set(functions) == {"StartIngestionFunction", "DataBucketEventsFunction"}
    for function in functions.values():
        props = function["Properties"]
        runtime = props["Runtime"]
        assert re.fullmatch(r"python3\.(1[2-9]|[2-9]\d)", runtime), f"{runtime} is not a supported runtime"
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
    start = _resolved(templates)["Resources"]["StartIngestionFunction"]["Properties"]
    assert "TargetArn" in start["DeadLetterConfig"]
    assert "ReservedConcurrentExecutions" not in start, "no reservation unless the admin asks for one"
    for mode in ("PerFile", "Batched"):  # the rule targets the Lambda or the batch queue: both retry, both DLQ
        rule = _resolved(templates, StartMode=mode)["Resources"]["UploadRule"]
        (target,) = rule["Properties"]["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, mode
        assert "Arn" in target["DeadLetterConfig"], mode


def test_dead_letter_queue_is_encrypted(templates) -> None:
    for queue in resources_of_type(templates[PROJECT], "AWS::SQS::Queue").values():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props


def test_no_role_name_is_cut_out_of_an_arn(templates) -> None:
    for name, template in templates.items():
        text = json.dumps(template)
        assert "Fn::Split" not in text and "Fn::Select" not in text, f"{name} parses ARNs"


def test_no_literal_partition_in_any_arn(templates) -> None:
    for name, template in templates.items():
        for path, text in strings(template):
            assert "arn:aws:" not in text and "arn:aws-" not in text or "AllowedPattern" in path, (name, path, text)


def test_no_action_is_listed_twice(templates) -> None:
    for name, template in templates.items():
        for location, document in policy_documents(template):
            for index, statement in enumerate(statements(document)):
                actions = as_list(statement.get("Action", []))
                assert len(actions) == len(set(actions)), f"{name} {location} statement {index}: {actions}"
            grants = [
                (action, json.dumps(resource, sort_keys=True))
                for statement in statements(document)
                if statement["Effect"] == "Allow"
                for action in as_list(statement.get("Action", []))
                for resource in as_list(statement.get("Resource", "*"))
            ]
            duplicates = {g for g in grants if grants.count(g) > 1}
            assert not duplicates, f"{name} {location} grants twice: {duplicates}"


def _is_bucket_objects_arn(join: list) -> bool:
    """The one Join allowed: ``<bucket ARN>/*`` from the bucket's own Arn attribute, the form Control Tower's
    CT.S3.PR.8 recognises in a TLS-only bucket policy (generators.common.tls_only_statement)."""
    separator, parts = join
    return (
        separator == ""
        and len(parts) == 2
        and set(parts[0]) == {"Fn::GetAtt"}
        and parts[0]["Fn::GetAtt"][1] == "Arn"
        and parts[1] == "/*"
    )


def test_role_arns_come_from_one_helper(templates) -> None:
    """Every account role ARN is a partition-aware Fn::Sub; none is a hand-built Join."""
    for name, template in templates.items():
        for path, value in walk(template):
            if isinstance(value, dict) and "Fn::Join" in value and not _is_bucket_objects_arn(value["Fn::Join"]):
                raise AssertionError(f"{name}{path}: hand-built Fn::Join (ARNs come from generators.common.arn)")
            if isinstance(value, str) and ":role/" in value:
                assert value.startswith("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/") or (
                    "AllowedPattern" in path
                ), (name, path, value)


def test_no_placeholders_left_for_sed(templates) -> None:
    placeholder = re.compile(r"(<[A-Z_]+>|%[A-Z_]+%|__[A-Z_]+__|\{\{[^}]*\}\}|PLACEHOLDER|REPLACE_ME|TODO)")
    for name, template in templates.items():
        for path, text in strings(template):
            assert not placeholder.search(text), (name, path, text)


def test_artifact_locations_are_final_values(templates) -> None:
    resources = _resolved(templates)["Resources"]
    code = resources["StartIngestionFunction"]["Properties"]["Code"]
    assert code["S3Bucket"] == "sagemaker-reusable-components-123456789012-eu-west-1"
    assert re.fullmatch(
        r"releases/s3-fs-ingestion/\d+\.\d+\.\d+[^/]*/lambda-start-ingestion-pipeline\.zip", code["S3Key"]
    )
    seed = resources["SeedCodeRepository"]["Properties"]["Code"]["S3"]
    assert seed["Bucket"] == code["S3Bucket"]
    assert seed["Key"].endswith("/seed-code-s3-fs-ingestion.zip")


def test_generator_sources_hold_no_literal_partition() -> None:
    """ARNs come from generators.common.arn (awacs with ${AWS::Partition}), never from a typed 'arn:aws:'."""
    generators = Path(__file__).resolve().parent.parent / "generators"
    offenders = [
        f"{path.relative_to(generators)}:{number}"
        for path in sorted(generators.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "arn:aws:" in line
    ]
    assert not offenders, f"literal partition in {offenders}"
