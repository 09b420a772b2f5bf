"""Which IAM action(s), on which resource ARN, each API operation our code calls is authorized as.

Sources (the Service Authorization Reference, "Actions, resources, and condition keys for <service>",
https://docs.aws.amazon.com/service-authorization/latest/reference/, and the services' own pages):

* S3 -- list_amazons3.html and the S3 User Guide "Required permissions for Amazon S3 API operations"
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html): HeadBucket and
  ListObjects(V2) are ``s3:ListBucket`` on the bucket (``s3:prefix`` in the context), HeadObject is
  ``s3:GetObject``, Get/PutBucketNotificationConfiguration are ``s3:GetBucketNotification`` /
  ``s3:PutBucketNotification``; a PutObject with ``Tagging`` also needs ``s3:PutObjectTagging`` and one with
  an ACL ``s3:PutObjectAcl``; a GetObject with ``VersionId`` is ``s3:GetObjectVersion``. Object reads carry
  ``s3:ExistingObjectTag/<key>`` for the object's tags.
* SageMaker -- list_amazonsagemaker.html; the Feature Store runtime (PutRecord, BatchWriteRecord, GetRecord,
  ...) is authorized as ``sagemaker:<Operation>`` on the feature group's ARN. Creating a resource with
  ``Tags`` also needs ``sagemaker:AddTags`` with ``sagemaker:TaggingAction`` = the create operation
  (SageMaker Developer Guide, "Provide permissions for tagging SageMaker AI resources"). An operation that
  takes a ``RoleArn`` (CreateFeatureGroup, CreatePipeline, UpdatePipeline) is also ``iam:PassRole`` of that
  role with ``iam:PassedToService`` = ``sagemaker.amazonaws.com`` (IAM User Guide, "Grant a user permissions
  to pass a role to an AWS service"). SageMaker lowercases pipeline names in pipeline ARNs.
* EventBridge -- list_amazoneventbridge.html: ListRules has no resource type (``*``), DescribeRule is on the
  rule's ARN (``rule/<name>`` on the default bus, ``rule/<bus>/<name>`` otherwise).
* IAM -- list_awsidentityandaccessmanagementiam.html: GetRole and SimulatePrincipalPolicy on the role's ARN.
* STS -- GetCallerIdentity: "No permissions are required to perform this operation" (STS API reference).
* SQS -- list_amazonsqs.html: on the queue's ARN (``arn:<partition>:sqs:<region>:<account>:<name>``, from the
  ``QueueUrl``); the batch operations are authorized as their single-message actions ("Amazon SQS API
  permissions: Actions and resource reference", SQS Developer Guide: SendMessageBatch needs sqs:SendMessage,
  ChangeMessageVisibilityBatch sqs:ChangeMessageVisibility, DeleteMessageBatch sqs:DeleteMessage).

An operation missing from :data:`OPERATIONS` raises :class:`UnknownOperation`: a new call in the code must be
added here (with its source) before the gate can pass, so it cannot slip past unevaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import ApiCall, Env

# (action, resource ARN, extra context)
Authorization = tuple[str, str, dict[str, Any]]
Mapper = Callable[[Mapping[str, Any], Env], list[Authorization]]

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


class UnknownOperation(KeyError):
    """A recorded call whose IAM authorization the table does not know."""


@dataclass(frozen=True)
class Operation:
    """How one operation is authorized; ``keep`` lists the parameters :func:`authorizations` reads."""

    keep: tuple[str, ...]
    mapper: Mapper

    def reduce(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters worth recording: what the mapper reads (list items reduced the same way)."""
        reduced: dict[str, Any] = {}
        for name in self.keep:
            head, _, rest = name.partition(".")
            if head not in params:
                continue
            value = params[head]
            if rest and isinstance(value, list):  # batch entries: one per distinct value
                distinct = {str(item.get(rest)): item.get(rest) for item in value if isinstance(item, Mapping)}
                reduced[head] = [{rest: distinct[k]} for k in sorted(distinct)]
            elif rest and isinstance(value, Mapping):
                reduced[head] = {rest: value.get(rest)}
            else:
                reduced[head] = value
        return reduced


def _tag_context(tags: Sequence[Mapping[str, str]] | None) -> dict[str, Any]:
    if not tags:
        return {}
    context: dict[str, Any] = {"aws:TagKeys": [t["Key"] for t in tags]}
    context.update({f"aws:RequestTag/{t['Key']}": t["Value"] for t in tags})
    return context


def _object_context(env: Env, bucket: str, key: str) -> dict[str, Any]:
    tags = env.object_tags.get(env.s3(bucket, key), {})
    return {f"s3:ExistingObjectTag/{k}": v for k, v in tags.items()}


# --- S3 ---------------------------------------------------------------------------------------------


def _put_object(p: Mapping[str, Any], env: Env) -> list[Authorization]:
    arn = env.s3(p["Bucket"], p["Key"])
    found: list[Authorization] = [("s3:PutObject", arn, {})]
    if p.get("Tagging"):
        found.append(("s3:PutObjectTagging", arn, {}))
    if any(p.get(k) for k in ("ACL", "GrantFullControl", "GrantRead", "GrantReadACP", "GrantWriteACP")):
        found.append(("s3:PutObjectAcl", arn, {}))
    return found


def _get_object(p: Mapping[str, Any], env: Env) -> list[Authorization]:
    action = "s3:GetObjectVersion" if p.get("VersionId") else "s3:GetObject"
    return [(action, env.s3(p["Bucket"], p["Key"]), _object_context(env, p["Bucket"], p["Key"]))]


def _list_bucket(p: Mapping[str, Any], env: Env) -> list[Authorization]:
    context = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
    return [("s3:ListBucket", env.s3(p["Bucket"]), context)]


def _on_bucket(action: str) -> Mapper:
    return lambda p, env: [(action, env.s3(p["Bucket"]), {})]


# --- SageMaker ----------------------------------------------------------------------------------------


def _feature_group_arn(name: str, env: Env) -> str:
    return name if name.startswith("arn:") else env.arn("sagemaker", f"feature-group/{name}")


def _pipeline_arn(name: str, env: Env) -> str:
    return name if name.startswith("arn:") else env.arn("sagemaker", f"pipeline/{name.lower()}")


def _pass_role(role: str, env: Env) -> Authorization:
    return ("iam:PassRole", env.role_arn(role), {"iam:PassedToService": SAGEMAKER_PRINCIPAL})


def _create(action: str, arn_of: Callable[[Mapping[str, Any], Env], str]) -> Mapper:
    """A SageMaker Create* call: the action, AddTags for its tags, PassRole for its role."""

    def mapper(p: Mapping[str, Any], env: Env) -> list[Authorization]:
        arn = arn_of(p, env)
        found: list[Authorization] = [(f"sagemaker:{action}", arn, _tag_context(p.get("Tags")))]
        if p.get("Tags"):
            found.append(("sagemaker:AddTags", arn, {**_tag_context(p["Tags"]), "sagemaker:TaggingAction": action}))
        if p.get("RoleArn"):
            found.append(_pass_role(p["RoleArn"], env))
        return found

    return mapper


def _sagemaker_on(action: str, arn_of: Callable[[Mapping[str, Any], Env], str]) -> Mapper:
    def mapper(p: Mapping[str, Any], env: Env) -> list[Authorization]:
        found: list[Authorization] = [(f"sagemaker:{action}", arn_of(p, env), _tag_context(p.get("Tags")))]
        if p.get("RoleArn"):
            found.append(_pass_role(p["RoleArn"], env))
        return found

    return mapper


def _group(p: Mapping[str, Any], env: Env) -> str:
    return _feature_group_arn(p["FeatureGroupName"], env)


def _pipeline(p: Mapping[str, Any], env: Env) -> str:
    return _pipeline_arn(p["PipelineName"], env)


def _resource_arn(p: Mapping[str, Any], env: Env) -> str:
    return p["ResourceArn"]


def _per_item(action: str, items: str) -> Mapper:
    """Batch Feature Store calls: one authorization per feature group named in the batch."""

    def mapper(p: Mapping[str, Any], env: Env) -> list[Authorization]:
        groups = sorted({item["FeatureGroupName"] for item in p.get(items, [])})
        return [(f"sagemaker:{action}", _feature_group_arn(group, env), {}) for group in groups]

    return mapper


# --- EventBridge and IAM --------------------------------------------------------------------------------


def _queue(action: str) -> Mapper:
    """``https://sqs.<region>.<domain>/<account>/<name>`` -> the queue's ARN."""

    def mapper(p: Mapping[str, Any], env: Env) -> list[Authorization]:
        account, name = p["QueueUrl"].rstrip("/").rsplit("/", 2)[-2:]
        return [(action, env.arn("sqs", name, account=account), {})]

    return mapper


def _rule_arn(p: Mapping[str, Any], env: Env) -> str:
    bus = p.get("EventBusName")
    if bus and bus.startswith("arn:"):
        bus = bus.rsplit("/", 1)[-1]
    path = p["Name"] if not bus or bus == "default" else f"{bus}/{p['Name']}"
    return env.arn("events", f"rule/{path}")


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("s3", "PutObject"): Operation(
        ("Bucket", "Key", "Tagging", "ACL", "GrantFullControl", "GrantRead", "GrantReadACP", "GrantWriteACP"),
        _put_object,
    ),
    ("s3", "GetObject"): Operation(("Bucket", "Key", "VersionId"), _get_object),
    ("s3", "HeadObject"): Operation(("Bucket", "Key", "VersionId"), _get_object),
    ("s3", "HeadBucket"): Operation(("Bucket",), _on_bucket("s3:ListBucket")),
    ("s3", "ListObjectsV2"): Operation(("Bucket", "Prefix"), _list_bucket),
    ("s3", "ListObjects"): Operation(("Bucket", "Prefix"), _list_bucket),
    ("s3", "GetBucketLocation"): Operation(("Bucket",), _on_bucket("s3:GetBucketLocation")),
    ("s3", "GetBucketNotificationConfiguration"): Operation(("Bucket",), _on_bucket("s3:GetBucketNotification")),
    ("s3", "PutBucketNotificationConfiguration"): Operation(("Bucket",), _on_bucket("s3:PutBucketNotification")),
    ("sagemaker", "DescribeFeatureGroup"): Operation(
        ("FeatureGroupName",), _sagemaker_on("DescribeFeatureGroup", _group)
    ),
    ("sagemaker", "CreateFeatureGroup"): Operation(
        ("FeatureGroupName", "RoleArn", "Tags", "OfflineStoreConfig"), _create("CreateFeatureGroup", _group)
    ),
    ("sagemaker", "UpdateFeatureGroup"): Operation(("FeatureGroupName",), _sagemaker_on("UpdateFeatureGroup", _group)),
    ("sagemaker", "CreatePipeline"): Operation(
        ("PipelineName", "RoleArn", "Tags"), _create("CreatePipeline", _pipeline)
    ),
    ("sagemaker", "UpdatePipeline"): Operation(("PipelineName", "RoleArn"), _sagemaker_on("UpdatePipeline", _pipeline)),
    ("sagemaker", "DescribePipeline"): Operation(("PipelineName",), _sagemaker_on("DescribePipeline", _pipeline)),
    ("sagemaker", "StartPipelineExecution"): Operation(
        ("PipelineName",), _sagemaker_on("StartPipelineExecution", _pipeline)
    ),
    ("sagemaker", "AddTags"): Operation(("ResourceArn", "Tags"), _sagemaker_on("AddTags", _resource_arn)),
    ("sagemaker", "ListTags"): Operation(("ResourceArn",), _sagemaker_on("ListTags", _resource_arn)),
    ("sagemaker-featurestore-runtime", "PutRecord"): Operation(
        ("FeatureGroupName",), _sagemaker_on("PutRecord", _group)
    ),
    ("sagemaker-featurestore-runtime", "GetRecord"): Operation(
        ("FeatureGroupName",), _sagemaker_on("GetRecord", _group)
    ),
    ("sagemaker-featurestore-runtime", "DeleteRecord"): Operation(
        ("FeatureGroupName",), _sagemaker_on("DeleteRecord", _group)
    ),
    ("sagemaker-featurestore-runtime", "BatchWriteRecord"): Operation(
        ("Entries.FeatureGroupName",), _per_item("BatchWriteRecord", "Entries")
    ),
    ("sagemaker-featurestore-runtime", "BatchGetRecord"): Operation(
        ("Identifiers.FeatureGroupName",), _per_item("BatchGetRecord", "Identifiers")
    ),
    ("events", "ListRules"): Operation(("NamePrefix", "EventBusName"), lambda p, env: [("events:ListRules", "*", {})]),
    ("events", "DescribeRule"): Operation(
        ("Name", "EventBusName"), lambda p, env: [("events:DescribeRule", _rule_arn(p, env), {})]
    ),
    ("iam", "GetRole"): Operation(("RoleName",), lambda p, env: [("iam:GetRole", env.role_arn(p["RoleName"]), {})]),
    ("iam", "SimulatePrincipalPolicy"): Operation(
        ("PolicySourceArn",), lambda p, env: [("iam:SimulatePrincipalPolicy", p["PolicySourceArn"], {})]
    ),
    ("sts", "GetCallerIdentity"): Operation((), lambda p, env: []),
    ("sqs", "SendMessage"): Operation(("QueueUrl",), _queue("sqs:SendMessage")),
    ("sqs", "SendMessageBatch"): Operation(("QueueUrl",), _queue("sqs:SendMessage")),
    ("sqs", "ChangeMessageVisibility"): Operation(("QueueUrl",), _queue("sqs:ChangeMessageVisibility")),
    ("sqs", "ChangeMessageVisibilityBatch"): Operation(("QueueUrl",), _queue("sqs:ChangeMessageVisibility")),
}

REFERENCE = "Service Authorization Reference"


def operation(call: ApiCall) -> Operation:
    try:
        return OPERATIONS[(call.service, call.operation)]
    except KeyError:
        raise UnknownOperation(
            f"{call.service}:{call.operation} is not in security/runtime_iam/operations.py OPERATIONS: add how IAM "
            f"authorizes it (action, resource ARN, context) with its source, so the gate can evaluate it"
        ) from None


def authorizations(call: ApiCall, env: Env) -> list[Authorization]:
    """The IAM authorizations ``call`` needs; raises :class:`UnknownOperation` for an unknown operation."""
    return operation(call).mapper(call.params, env)


def reduce(call: ApiCall) -> ApiCall:
    """``call`` with only the parameters the table reads (raises for an unknown operation)."""
    return ApiCall(call.service, call.operation, operation(call).reduce(call.params))
