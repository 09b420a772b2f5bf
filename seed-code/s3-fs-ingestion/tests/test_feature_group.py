"""Feature group as code: feature_group.json, its validation, and applying it (moto, botocore Stubber)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import boto3
import moto_feature_groups
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator
from moto import mock_aws

from feature_store.apply import FeatureGroupError, apply, create_request, plan_additions, validate_definition

ROLE = "arn:aws:iam::123456789012:role/project-execution-role"
OFFLINE = "s3://artifact-bucket/feature-store"
TAGS = [{"Key": "sagemaker:project-name", "Value": "demo"}, {"Key": "sagemaker:project-id", "Value": "p-abc"}]


def with_feature(definition: dict, name: str, feature_type: str) -> dict:
    changed = copy.deepcopy(definition)
    changed["FeatureDefinitions"].append({"FeatureName": name, "FeatureType": feature_type})
    return changed


def describe(definition: dict, status: str = "Created", **extra: object) -> dict:
    """A DescribeFeatureGroup response for a group created from ``definition``."""
    return {
        "FeatureGroupArn": "arn:aws:sagemaker:eu-west-1:123456789012:feature-group/abalone",
        "FeatureGroupName": "abalone",
        "RecordIdentifierFeatureName": definition["RecordIdentifierFeatureName"],
        "EventTimeFeatureName": definition["EventTimeFeatureName"],
        "FeatureDefinitions": copy.deepcopy(definition["FeatureDefinitions"]),
        "CreationTime": 1_700_000_000,
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        "OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": OFFLINE}},
        "FeatureGroupStatus": status,
        "NextToken": "",
        **extra,
    }


# -- the shipped definition ---------------------------------------------------------------------------


def test_the_abalone_definition_is_what_the_processing_script_expects(abalone_definition: dict) -> None:
    validate_definition(abalone_definition)
    types = {f["FeatureName"]: f["FeatureType"] for f in abalone_definition["FeatureDefinitions"]}
    assert types == {
        "record_id": "String", "event_time": "String", "sex_m": "Integral", "sex_f": "Integral",
        "sex_i": "Integral", "length": "Fractional", "diameter": "Fractional", "height": "Fractional",
        "whole_weight": "Fractional", "shucked_weight": "Fractional", "viscera_weight": "Fractional",
        "shell_weight": "Fractional", "rings": "Integral",
    }
    assert abalone_definition["RecordIdentifierFeatureName"] == "record_id"
    assert abalone_definition["EventTimeFeatureName"] == "event_time"
    assert abalone_definition["OnlineStoreConfig"] == {"EnableOnlineStore": True}
    assert "OfflineStoreConfig" in abalone_definition


def test_the_create_request_is_valid_for_the_api(abalone_definition: dict) -> None:
    request = create_request(abalone_definition, "abalone", role_arn=ROLE, offline_store_s3_uri=OFFLINE, tags=TAGS)
    model = boto3.client("sagemaker").meta.service_model.operation_model("CreateFeatureGroup")
    report = ParamValidator().validate(request, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    assert request["OfflineStoreConfig"]["S3StorageConfig"] == {"S3Uri": OFFLINE}
    assert request["RoleArn"] == ROLE and request["Tags"] == TAGS
    assert "S3StorageConfig" not in abalone_definition["OfflineStoreConfig"]  # the file is not changed


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(Tags=[]), "unknown keys ['Tags']"),
    (lambda d: d["FeatureDefinitions"].append({"FeatureName": "x", "FeatureType": "Float"}), "has type 'Float'"),
    (lambda d: d["FeatureDefinitions"].append({"FeatureName": "Rings", "FeatureType": "Integral"}),
     "'Rings' is defined twice"),
    (lambda d: d["FeatureDefinitions"].append({"FeatureName": "write_time", "FeatureType": "String"}),
     "'write_time' is invalid"),
    (lambda d: d["FeatureDefinitions"].append({"FeatureName": "bad name", "FeatureType": "String"}),
     "'bad name' is invalid"),
    (lambda d: d.update(RecordIdentifierFeatureName="id"), "RecordIdentifierFeatureName 'id' must name"),
    (lambda d: d.update(EventTimeFeatureName="rings"), "must be String or Fractional, not Integral"),
    (lambda d: d["OfflineStoreConfig"].update(S3StorageConfig={"S3Uri": "s3://x"}), "set by the build"),
    (lambda d: (d.pop("OfflineStoreConfig"), d.pop("OnlineStoreConfig")), "enable the online store"),
])
def test_invalid_definitions_are_refused_before_any_call(abalone_definition: dict, change, message: str) -> None:
    change(abalone_definition)
    with pytest.raises(FeatureGroupError, match="feature_group.json: .*" + message.replace("[", r"\[")
                       .replace("]", r"\]").replace("(", r"\(")):
        validate_definition(abalone_definition)


# -- comparing with the live group ----------------------------------------------------------------------


def test_an_unchanged_group_needs_nothing(abalone_definition: dict) -> None:
    assert plan_additions(describe(abalone_definition), abalone_definition) == []


def test_new_features_are_additions(abalone_definition: dict) -> None:
    wanted = with_feature(abalone_definition, "age_years", "Fractional")
    assert plan_additions(describe(abalone_definition), wanted) == [
        {"FeatureName": "age_years", "FeatureType": "Fractional"}]


def test_every_incompatible_change_is_named(abalone_definition: dict) -> None:
    live = describe(abalone_definition)
    wanted = copy.deepcopy(abalone_definition)
    wanted["FeatureDefinitions"] = [f for f in wanted["FeatureDefinitions"] if f["FeatureName"] != "height"]
    next(f for f in wanted["FeatureDefinitions"] if f["FeatureName"] == "rings")["FeatureType"] = "Fractional"
    wanted["OnlineStoreConfig"] = {"EnableOnlineStore": False}
    with pytest.raises(FeatureGroupError) as raised:
        plan_additions(live, wanted)
    message = str(raised.value)
    assert "feature 'height' was removed (features cannot be deleted)" in message
    assert "feature 'rings' changed FeatureType from 'Integral' to 'Fractional'" in message
    assert "the online store cannot be switched on or off" in message
    assert message.endswith("Only new features can be added: restore the definition, or use a new feature group name.")
    assert "\n" not in message


def test_another_record_identifier_is_refused(abalone_definition: dict) -> None:
    wanted = with_feature(abalone_definition, "animal_id", "String")
    wanted["RecordIdentifierFeatureName"] = "animal_id"
    with pytest.raises(FeatureGroupError, match="RecordIdentifierFeatureName is 'record_id' in the live group"):
        plan_additions(describe(abalone_definition), wanted)


# -- applying against moto ------------------------------------------------------------------------------


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    moto_feature_groups.patch(monkeypatch)
    with mock_aws():
        yield boto3.client("sagemaker")


def apply_to(client: object, definition: dict, **kwargs: object) -> str:
    return apply(client, definition, "abalone", role_arn=ROLE, offline_store_s3_uri=OFFLINE, tags=TAGS,
                 sleep=lambda seconds: None, **kwargs)


def test_apply_creates_then_leaves_alone_then_adds_then_refuses(sagemaker, abalone_definition: dict) -> None:
    assert apply_to(sagemaker, abalone_definition) == "created"
    live = sagemaker.describe_feature_group(FeatureGroupName="abalone")
    assert live["FeatureGroupStatus"] == "Created"
    assert live["FeatureDefinitions"] == abalone_definition["FeatureDefinitions"]
    assert live["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == OFFLINE and live["RoleArn"] == ROLE

    assert apply_to(sagemaker, abalone_definition) == "unchanged"

    grown = with_feature(abalone_definition, "age_years", "Fractional")
    assert apply_to(sagemaker, grown) == "updated"
    live = sagemaker.describe_feature_group(FeatureGroupName="abalone")
    assert live["FeatureDefinitions"][-1] == {"FeatureName": "age_years", "FeatureType": "Fractional"}

    with pytest.raises(FeatureGroupError, match="feature 'age_years' was removed"):
        apply_to(sagemaker, abalone_definition)


# -- waiting, with scripted responses (botocore Stubber checks every request against the API model) --------


@pytest.fixture
def stubbed() -> Iterator[tuple[object, Stubber]]:
    client = boto3.client("sagemaker")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_apply_waits_until_the_new_group_is_created(stubbed, abalone_definition: dict) -> None:
    client, stubber = stubbed
    stubber.add_client_error("describe_feature_group", "ResourceNotFound", http_status_code=400)
    request = create_request(abalone_definition, "abalone", role_arn=ROLE, offline_store_s3_uri=OFFLINE, tags=TAGS)
    stubber.add_response("create_feature_group", {"FeatureGroupArn": "arn:aws:sagemaker:eu-west-1:1:fg/a"}, request)
    stubber.add_response("describe_feature_group", describe(abalone_definition, "Creating"))
    stubber.add_response("describe_feature_group", describe(abalone_definition, "Created"))
    sleeps: list[float] = []
    assert apply(client, abalone_definition, "abalone", role_arn=ROLE, offline_store_s3_uri=OFFLINE, tags=TAGS,
                 poll=7, sleep=sleeps.append) == "created"
    assert sleeps == [7]


def test_a_failed_creation_names_the_reason(stubbed, abalone_definition: dict) -> None:
    client, stubber = stubbed
    stubber.add_response("describe_feature_group", describe(abalone_definition, "CreateFailed",
                                                            FailureReason="S3 bucket not found"))
    with pytest.raises(FeatureGroupError, match=r"is CreateFailed \(S3 bucket not found\); delete it"):
        apply_to(client, abalone_definition)


def test_apply_adds_features_and_waits_for_the_update(stubbed, abalone_definition: dict) -> None:
    client, stubber = stubbed
    grown = with_feature(abalone_definition, "age_years", "Fractional")
    stubber.add_response("describe_feature_group", describe(abalone_definition))
    stubber.add_response("update_feature_group", {"FeatureGroupArn": "arn:aws:sagemaker:eu-west-1:1:fg/a"}, {
        "FeatureGroupName": "abalone", "FeatureAdditions": [{"FeatureName": "age_years", "FeatureType": "Fractional"}]})
    stubber.add_response("describe_feature_group", describe(grown, LastUpdateStatus={"Status": "InProgress"}))
    stubber.add_response("describe_feature_group", describe(grown, LastUpdateStatus={"Status": "Successful"}))
    assert apply_to(client, grown) == "updated"


def test_a_failed_update_names_the_reason(stubbed, abalone_definition: dict) -> None:
    client, stubber = stubbed
    grown = with_feature(abalone_definition, "age_years", "Fractional")
    stubber.add_response("describe_feature_group", describe(abalone_definition))
    stubber.add_response("update_feature_group", {"FeatureGroupArn": "arn:aws:sagemaker:eu-west-1:1:fg/a"})
    stubber.add_response("describe_feature_group", describe(abalone_definition, LastUpdateStatus={
        "Status": "Failed", "FailureReason": "limit exceeded"}))
    with pytest.raises(FeatureGroupError, match=r"updating feature group 'abalone' failed \(limit exceeded\)"):
        apply_to(client, grown)


def test_waiting_has_a_limit(stubbed, abalone_definition: dict) -> None:
    client, stubber = stubbed
    for _ in range(4):  # the first look, then at 0, 10 and 20 s
        stubber.add_response("describe_feature_group", describe(abalone_definition, "Creating"))
    with pytest.raises(FeatureGroupError, match="not created after 20 s"):
        apply_to(client, abalone_definition, timeout=20, poll=10)
