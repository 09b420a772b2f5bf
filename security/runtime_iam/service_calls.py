"""Calls AWS services make with a project's roles, which no test can record: listed here as data.

Each function reads the resolved resources of one project scenario (and the recorded pipeline definitions)
and returns the IAM requests the service makes, with the AWS document that says it does (``source``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ..launch_role import requirements
from ..scenarios import Scenario
from . import pipeline_steps
from .model import LISTED, Env, IamRequest
from .recordings import Recordings

PUBLISHED_OBJECT_TAGS = {"servicecatalog:provisioning": "true"}  # generators.release_s3.PROVISIONING_TAG

CFN_HANDLERS = (
    "CloudFormation registry schemas, handlers.*.permissions (the table in security/launch_role.py, checked "
    "against the schemas by tests/test_security_launch_role.py)"
)
SERVICE_CATALOG = (
    "Service Catalog Administrator Guide, 'AWS Service Catalog launch constraints' "
    "(https://docs.aws.amazon.com/servicecatalog/latest/adminguide/constraints-launch.html): the product's "
    "stack is created, updated and deleted with the launch role, which reads the template; SageMaker Developer "
    "Guide, 'AWS Managed Policies for SageMaker Projects and JumpStart' (cloudformation, s3)"
)
CODEPIPELINE_ROLE_DOC = (
    "CodePipeline User Guide, 'Manage the CodePipeline service role' "
    "(https://docs.aws.amazon.com/codepipeline/latest/userguide/how-to-custom-role.html): artifact store "
    "objects, CodeCommit source actions, CodeBuild build actions"
)
CONNECTION_DOC = (
    "CodePipeline User Guide, action reference 'CodeStarSourceConnection for Bitbucket Cloud, GitHub, GitHub "
    "Enterprise Server, GitLab.com, and GitLab self-managed actions', service role permissions "
    "(https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodestarConnectionSource.html)"
)
CODEBUILD_ROLE_DOC = (
    "CodeBuild User Guide, 'Allow CodeBuild to interact with other AWS services' "
    "(https://docs.aws.amazon.com/codebuild/latest/userguide/setting-up-service-role.html): build logs, "
    "input artifact in the CodePipeline artifact bucket"
)
RULE_TARGET_DOC = (
    "CodePipeline User Guide, 'CodeCommit source actions and EventBridge' "
    "(https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-trigger-source-repo-changes-cfn.html): "
    "the rule's target role starts the pipeline"
)
LAMBDA_LOGS_DOC = (
    "Lambda Developer Guide, 'Defining Lambda function permissions with an execution role' "
    "(https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html): logs:CreateLogStream, "
    "logs:PutLogEvents to the function's log group"
)
LAMBDA_DLQ_DOC = (
    "Lambda Developer Guide, 'Capturing records of Lambda asynchronous invocations', dead-letter queues "
    "(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html): the execution role "
    "needs sqs:SendMessage on the queue"
)
LAMBDA_SQS_DOC = (
    "Lambda Developer Guide, 'Using Lambda with Amazon SQS', execution role permissions "
    "(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html): the event source mapping polls the queue with the "
    "function's execution role (sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes)"
)
PIPELINE_ROLE_DOC = (
    "SageMaker Developer Guide, Pipelines 'IAM Access Management', pipeline role permissions "
    "(https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-access.html): the pipeline's role "
    "creates the step's job and passes the job's role"
)
PROCESSING_ROLE_DOC = (
    "SageMaker Developer Guide, 'How to use SageMaker AI execution roles', 'CreateProcessingJob API: Execution "
    "Role Permissions' (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html): inputs "
    "(s3:ListBucket, s3:GetObject), outputs (s3:PutObject), logs, cloudwatch:PutMetricData, ECR image pull"
)
FEATURE_STORE_OUTPUT_DOC = (
    "SageMaker Developer Guide, Data Wrangler 'Export to SageMaker Feature Store' "
    "(https://docs.aws.amazon.com/sagemaker/latest/dg/data-wrangler-data-export.html): the processing job "
    "writes the flow's output to the feature group (DescribeFeatureGroup, PutRecord) with its role"
)
OFFLINE_STORE_DOC = (
    "SageMaker Developer Guide, 'AWS managed policy: AmazonSageMakerFeatureStoreAccess' "
    "(https://docs.aws.amazon.com/sagemaker/latest/dg/security-iam-awsmanpol-feature-store.html): what the "
    "feature group's role needs for the offline store (s3:PutObject, s3:GetBucketAcl, s3:PutObjectAcl)"
)

SAMPLE_STACK = "stack/SC-{account}-pp-abcdefghijklm/5b6f6c10-1a2b-11f0-9c3d-0a1b2c3d4e5f"
SAMPLE_BUILD_ID = "0f6c5e1a-2b3c-4d5e-8f90-123456789abc"
SAMPLE_MANIFEST = "0" * 64 + ".manifest"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


@dataclass(frozen=True)
class Preconditions:
    """What the README asks of the account before a project works (the gate's documented assumptions)."""

    connection_tags: Mapping[str, str] = field(default_factory=lambda: {"sagemaker": "true"})
    flow_url: str = "s3://sagemaker-eu-west-1-123456789012/data-wrangler-flows/abalone.flow"
    execution_role_data_actions: tuple[str, ...] = ("s3:GetObject",)  # README: on the watched prefix
    execution_role_flow_actions: tuple[str, ...] = ()  # README: on the Data Wrangler flow (none documented yet)
    sample_file: str = "abalone-2026-12-02.csv"
    long_key_file: str = "x" * 980 + ".csv"  # s3://bucket/prefix + this > 1,024 characters: the manifest path


def readme_execution_role_grant(readme: str, topic: str) -> tuple[str, ...]:
    """The S3 actions a README paragraph naming the execution role and ``topic`` tells admins to grant."""
    for paragraph in re.split(r"\n\s*\n", readme):
        if "AmazonSageMakerServiceCatalogProductsExecutionRole" in paragraph and topic in paragraph:
            actions = tuple(dict.fromkeys(re.findall(r"`(s3:[A-Za-z]+)`", paragraph)))
            if actions:
                return actions
    return ()


def preconditions_from_readme(readme: str) -> Preconditions:
    """The gate's documented assumptions, with the execution role's data grants read from the README."""
    data = readme_execution_role_grant(readme, "watched prefix")
    if not data:
        raise ValueError("README: no paragraph tells admins which s3: actions the execution role needs on the "
                         "watched prefix (the gate models that grant from it)")
    return Preconditions(execution_role_data_actions=data,
                         execution_role_flow_actions=readme_execution_role_grant(readme, "flow"))


def _request(role: str, action: str, resource: str, activity: str, source: str, **context: Any) -> IamRequest:
    return IamRequest(role, action, resource, dict(context), LISTED, activity, source)


def _tag_context(tags: Any) -> dict[str, Any]:
    pairs = tags.items() if isinstance(tags, Mapping) else [(t["Key"], t["Value"]) for t in tags or []]
    pairs = list(pairs)
    if not pairs:
        return {}
    return {"aws:TagKeys": [k for k, _ in pairs], **{f"aws:RequestTag/{k}": v for k, v in pairs}}


def _s3_url(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


def _of_type(project: Scenario, resource_type: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for logical_id, resource in sorted(project.resources.items()):
        if resource["Type"] == resource_type:
            yield logical_id, resource.get("Properties", {})


# --- launch role -------------------------------------------------------------------------------------


def launch_role_calls(project: Scenario, portfolio: Scenario | None, env: Env) -> list[IamRequest]:
    found = []
    for need in requirements(project.resources):
        context: dict[str, Any] = {}
        if need.passed_to:
            prefix = need.action.split(":", 1)[0]
            context[f"{prefix}:PassedToService"] = need.passed_to
        context.update(need.context)
        props = project.resources[need.logical_id].get("Properties", {})
        verb = need.action.split(":", 1)[1]
        if verb.startswith(("Tag", "Create", "AddTags")) or verb == "PutBucketTagging":  # the request's tags
            context.update(_tag_context(props.get("Tags")))
        if need.action in ("s3:GetObject", "s3:GetObjectVersion"):
            context.update({f"s3:ExistingObjectTag/{k}": v for k, v in PUBLISHED_OBJECT_TAGS.items()})
        found.append(IamRequest("launch", need.action, need.arn, context, LISTED,
                                f"CloudFormation {need.logical_id} ({need.resource_type})", CFN_HANDLERS))
    stack = env.arn("cloudformation", SAMPLE_STACK.format(account=env.account))
    for action in ("CreateStack", "UpdateStack", "DeleteStack", "DescribeStacks", "DescribeStackEvents"):
        found.append(_request("launch", f"cloudformation:{action}", stack, "Service Catalog provisioning",
                              SERVICE_CATALOG))
    for _, props in _of_type(portfolio, "AWS::ServiceCatalog::CloudFormationProduct") if portfolio else ():
        for artifact in props["ProvisioningArtifactParameters"]:
            url = urlparse(artifact["Info"]["LoadTemplateFromURL"])
            bucket, key = url.netloc.split(".s3.", 1)[0], url.path.lstrip("/")
            found.append(_request("launch", "s3:GetObject", env.s3(bucket, key), "Service Catalog reads the template",
                                  SERVICE_CATALOG, **{f"s3:ExistingObjectTag/{k}": v
                                                      for k, v in PUBLISHED_OBJECT_TAGS.items()}))
    return found


# --- CodePipeline, CodeBuild, rules --------------------------------------------------------------------


def _artifact_key(pipeline: str, artifact: str) -> str:
    """Where CodePipeline stores an action's output artifact: <pipeline[:20]>/<artifact[:20]>/<random>."""
    return f"{pipeline[:20]}/{artifact[:20]}/AbCdEf1"


def code_pipeline_calls(project: Scenario, env: Env, roles_by_arn: Mapping[str, str],
                        pre: Preconditions) -> list[IamRequest]:
    found = []
    for _, props in _of_type(project, "AWS::CodePipeline::Pipeline"):
        role = roles_by_arn.get(props["RoleArn"])
        if role is None:
            continue
        bucket = props["ArtifactStore"]["Location"]
        for stage in props["Stages"]:
            for action in stage["Actions"]:
                provider, config = action["ActionTypeId"]["Provider"], action.get("Configuration", {})
                activity = f"CodePipeline {stage['Name']}/{action['Name']} ({provider})"
                for artifact in action.get("OutputArtifacts", []):
                    key = env.s3(bucket, _artifact_key(props["Name"], artifact["Name"]))
                    found.append(_request(role, "s3:PutObject", key, activity, CODEPIPELINE_ROLE_DOC))
                for artifact in action.get("InputArtifacts", []):
                    key = env.s3(bucket, _artifact_key(props["Name"], artifact["Name"]))
                    for verb in ("s3:GetObject", "s3:GetObjectVersion"):
                        found.append(_request(role, verb, key, activity, CODEPIPELINE_ROLE_DOC))
                if provider == "CodeCommit":
                    repository = env.arn("codecommit", config["RepositoryName"])
                    for verb in ("GetBranch", "GetCommit", "UploadArchive", "GetUploadArchiveStatus",
                                 "CancelUploadArchive"):
                        found.append(_request(role, f"codecommit:{verb}", repository, activity, CODEPIPELINE_ROLE_DOC))
                elif provider == "CodeStarSourceConnection":
                    connection = config["ConnectionArn"]
                    tags = {f"aws:ResourceTag/{k}": v for k, v in pre.connection_tags.items()}
                    found.append(IamRequest(role, f"{connection.split(':')[2]}:UseConnection", connection, tags,
                                            LISTED, activity, CONNECTION_DOC))
                elif provider == "CodeBuild":
                    project_arn = env.arn("codebuild", f"project/{config['ProjectName']}")
                    for verb in ("StartBuild", "BatchGetBuilds"):
                        found.append(_request(role, f"codebuild:{verb}", project_arn, activity, CODEPIPELINE_ROLE_DOC))
                else:
                    raise KeyError(f"{activity}: add the calls of a {provider} action to the gate")
    return found


def code_build_calls(project: Scenario, env: Env, roles_by_arn: Mapping[str, str]) -> list[IamRequest]:
    found = []
    pipelines = dict(_of_type(project, "AWS::CodePipeline::Pipeline"))
    for _, props in _of_type(project, "AWS::CodeBuild::Project"):
        role = roles_by_arn.get(props["ServiceRole"])
        if role is None:
            continue
        activity = f"CodeBuild project {props['Name']}"
        group = f"log-group:/aws/codebuild/{props['Name']}"
        found.append(_request(role, "logs:CreateLogGroup", env.arn("logs", group), activity, CODEBUILD_ROLE_DOC))
        stream = env.arn("logs", f"{group}:log-stream:{SAMPLE_BUILD_ID}")
        for verb in ("logs:CreateLogStream", "logs:PutLogEvents"):
            found.append(_request(role, verb, stream, activity, CODEBUILD_ROLE_DOC))
        if props["Source"]["Type"] == "CODEPIPELINE":
            for pipeline in pipelines.values():
                bucket = pipeline["ArtifactStore"]["Location"]
                for stage in pipeline["Stages"]:
                    for action in stage["Actions"]:
                        if action.get("Configuration", {}).get("ProjectName") != props["Name"]:
                            continue
                        for artifact in action.get("InputArtifacts", []):
                            key = env.s3(bucket, _artifact_key(pipeline["Name"], artifact["Name"]))
                            for verb in ("s3:GetObject", "s3:GetObjectVersion"):
                                found.append(_request(role, verb, key, activity, CODEBUILD_ROLE_DOC))
                        for verb in ("s3:GetBucketAcl", "s3:GetBucketLocation"):
                            found.append(_request(role, verb, env.s3(bucket), activity, CODEBUILD_ROLE_DOC))
    return found


def rule_target_calls(project: Scenario, env: Env, roles_by_arn: Mapping[str, str]) -> list[IamRequest]:
    found = []
    for logical_id, props in _of_type(project, "AWS::Events::Rule"):
        for target in props.get("Targets", []):
            role = roles_by_arn.get(target.get("RoleArn", ""))
            if role is None:
                continue
            service = target["Arn"].split(":")[2]
            if service != "codepipeline":
                raise KeyError(f"{logical_id}: add what EventBridge calls for a {service} target to the gate")
            found.append(_request(role, "codepipeline:StartPipelineExecution", target["Arn"],
                                  f"EventBridge rule {props['Name']}", RULE_TARGET_DOC))
    return found


def lambda_runtime_calls(project: Scenario, env: Env, roles_by_arn: Mapping[str, str]) -> list[IamRequest]:
    found = []
    for _, props in _of_type(project, "AWS::Lambda::Function"):
        role = roles_by_arn.get(props["Role"])
        if role is None:
            continue
        activity = f"Lambda runtime of {props['FunctionName']}"
        group = props.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{props['FunctionName']}"
        stream = env.arn("logs", f"log-group:{group}:log-stream:2026/12/02/[$LATEST]0123456789abcdef")
        for verb in ("logs:CreateLogStream", "logs:PutLogEvents"):
            found.append(_request(role, verb, stream, activity, LAMBDA_LOGS_DOC))
        target = props.get("DeadLetterConfig", {}).get("TargetArn")
        if target:
            found.append(_request(role, "sqs:SendMessage", target, activity, LAMBDA_DLQ_DOC))
        for _, mapping in _of_type(project, "AWS::Lambda::EventSourceMapping"):
            function_arn = env.arn("lambda", f"function:{props['FunctionName']}")
            if mapping["FunctionName"] not in (props["FunctionName"], function_arn):
                continue
            queue = mapping["EventSourceArn"]
            for verb in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                found.append(_request(role, verb, queue, f"event source mapping of {props['FunctionName']}",
                                      LAMBDA_SQS_DOC))
    return found


# --- the SageMaker pipeline, its processing jobs, the offline store --------------------------------------


def pipeline_samples(project: Scenario, pre: Preconditions) -> list[dict[str, str]]:
    """Parameter values an execution gets: an upload under the watched prefix, and the manifest path."""
    p = project.parameters
    upload = f"s3://{p['DataBucketName']}/{p['DataPrefix']}{pre.sample_file}"
    samples = [{"InputDataUrl": upload, "InputManifestUrl": ""}]
    for _, props in _of_type(project, "AWS::Lambda::Function"):
        variables = props.get("Environment", {}).get("Variables", {})
        if variables.get("MANIFEST_BUCKET"):
            prefix = variables.get("MANIFEST_PREFIX") or "input-manifests/"
            samples.append({"InputDataUrl": "", "InputManifestUrl":
                            f"s3://{variables['MANIFEST_BUCKET']}/{prefix}{SAMPLE_MANIFEST}"})
    return samples


def _image_calls(role: str, image: str, env: Env, activity: str) -> list[IamRequest]:
    registry, _, repository = image.partition("/")
    account, _, rest = registry.partition(".dkr.ecr.")
    region = rest.split(".", 1)[0]
    repo_arn = env.arn("ecr", f"repository/{repository.split(':')[0].split('@')[0]}", region=region, account=account)
    found = [_request(role, "ecr:GetAuthorizationToken", "*", activity, PROCESSING_ROLE_DOC)]
    for verb in ("BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "BatchGetImage"):
        found.append(IamRequest(role, f"ecr:{verb}", repo_arn, {"aws:ResourceAccount": account}, LISTED, activity,
                                PROCESSING_ROLE_DOC))
    return found


def _input_calls(role: str, step_input: Mapping[str, Any], values: Mapping[str, str], pre: Preconditions,
                 env: Env, activity: str) -> list[IamRequest]:
    url = pipeline_steps.evaluate(step_input["uri"], values)
    if not url:
        return []
    bucket, key = _s3_url(url)
    found = [_request(role, "s3:GetObject", env.s3(bucket, key), activity, PROCESSING_ROLE_DOC)]
    if step_input["data_type"] == "S3Prefix":
        found.append(_request(role, "s3:ListBucket", env.s3(bucket), activity, PROCESSING_ROLE_DOC,
                              **{"s3:prefix": key}))
    elif step_input["data_type"] == "ManifestFile":
        # The manifest lists one object under the watched prefix: SageMaker downloads it with the job's role.
        data_bucket, data_prefix = values["DataBucketName"], values["DataPrefix"]
        listed = env.s3(data_bucket, f"{data_prefix}{pre.long_key_file}")
        found.append(_request(role, "s3:GetObject", listed, activity, PROCESSING_ROLE_DOC))
    else:
        raise KeyError(f"{activity}: S3DataType {step_input['data_type']} is not modelled")
    return found


def processing_calls(project: Scenario, recordings: Recordings, env: Env, roles_by_arn: Mapping[str, str],
                     pre: Preconditions) -> list[IamRequest]:
    found = []
    p = project.parameters
    for definition in recordings.pipelines:
        pipeline_role = roles_by_arn.get(definition["pipeline_role_arn"])
        for step in definition["steps"]:
            job_role = roles_by_arn.get(step["role_arn"])
            job = env.arn("sagemaker", f"processing-job/pipelines-{pipeline_steps.SAMPLE_EXECUTION_ID}-"
                                       f"{step['name'].lower()}-0a1b2c3d4e")
            activity = f"pipeline step {step['name']}"
            if pipeline_role:
                found.append(_request(pipeline_role, "sagemaker:CreateProcessingJob", job, activity, PIPELINE_ROLE_DOC))
                found.append(_request(pipeline_role, "iam:PassRole", step["role_arn"], activity, PIPELINE_ROLE_DOC,
                                      **{"iam:PassedToService": "sagemaker.amazonaws.com"}))
            if job_role is None:
                continue
            activity = f"processing job of {step['name']}"
            found += _image_calls(job_role, step["image_uri"], env, activity)
            group = env.arn("logs", f"log-group:{PROCESSING_LOG_GROUP}")
            stream = env.arn("logs", f"log-group:{PROCESSING_LOG_GROUP}:log-stream:{job.rsplit('/', 1)[-1]}/algo-1-1")
            found += [
                _request(job_role, "logs:CreateLogGroup", group, activity, PROCESSING_ROLE_DOC),
                _request(job_role, "logs:DescribeLogStreams", group, activity, PROCESSING_ROLE_DOC),
                _request(job_role, "logs:CreateLogStream", stream, activity, PROCESSING_ROLE_DOC),
                _request(job_role, "logs:PutLogEvents", stream, activity, PROCESSING_ROLE_DOC),
                _request(job_role, "cloudwatch:PutMetricData", "*", activity, PROCESSING_ROLE_DOC,
                         **{"cloudwatch:namespace": PROCESSING_LOG_GROUP}),
            ]
            for sample in pipeline_samples(project, pre):
                values = {**definition["parameters"], **sample, "DataBucketName": p["DataBucketName"],
                          "DataPrefix": p["DataPrefix"]}
                for step_input in step["inputs"]:
                    names = pipeline_steps.parameter_names(step_input["uri"])
                    if names & {"InputDataUrl", "InputManifestUrl"} and not any(values.get(n) for n in names):
                        continue  # the other input path
                    found += _input_calls(job_role, step_input, values, pre, env, activity)
                for output in step["outputs"]:
                    if "uri" in output:
                        bucket, key = _s3_url(pipeline_steps.evaluate(output["uri"], values))
                        found.append(_request(job_role, "s3:PutObject", env.s3(bucket, f"{key}/failed-rows.csv"),
                                              activity, PROCESSING_ROLE_DOC))
                    else:
                        group = pipeline_steps.evaluate(output["feature_group"], values)
                        arn = env.arn("sagemaker", f"feature-group/{group}")
                        for verb in ("DescribeFeatureGroup", "PutRecord"):
                            found.append(_request(job_role, f"sagemaker:{verb}", arn, activity,
                                                  FEATURE_STORE_OUTPUT_DOC))
    return found


def offline_store_calls(recordings: Recordings, env: Env, roles_by_arn: Mapping[str, str]) -> list[IamRequest]:
    found = []
    for _, call in recordings.calls:
        if (call.service, call.operation) != ("sagemaker", "CreateFeatureGroup"):
            continue
        uri = call.params.get("OfflineStoreConfig", {}).get("S3StorageConfig", {}).get("S3Uri")
        role = roles_by_arn.get(call.params.get("RoleArn", ""))
        if not uri or role is None:
            continue
        group = call.params["FeatureGroupName"]
        bucket, prefix = _s3_url(uri)
        key = (f"{prefix.rstrip('/')}/{env.account}/sagemaker/{env.region}/offline-store/{group}-1764633600/data/"
               "year=2026/month=12/day=02/hour=09/20261202T090000Z_0123456789abcdef.parquet").lstrip("/")
        activity = f"Feature Store offline store of {group}"
        found += [
            _request(role, "s3:PutObject", env.s3(bucket, key), activity, OFFLINE_STORE_DOC),
            _request(role, "s3:PutObjectAcl", env.s3(bucket, key), activity, OFFLINE_STORE_DOC),
            _request(role, "s3:GetBucketAcl", env.s3(bucket), activity, OFFLINE_STORE_DOC),
        ]
    return found


def listed_calls(project: Scenario, portfolio: Scenario | None, recordings: Recordings, env: Env,
                 roles_by_arn: Mapping[str, str], pre: Preconditions) -> list[IamRequest]:
    """Every call an AWS service makes with one of the roles in this project scenario."""
    return [
        *launch_role_calls(project, portfolio, env),
        *code_pipeline_calls(project, env, roles_by_arn, pre),
        *code_build_calls(project, env, roles_by_arn),
        *rule_target_calls(project, env, roles_by_arn),
        *lambda_runtime_calls(project, env, roles_by_arn),
        *processing_calls(project, recordings, env, roles_by_arn, pre),
        *offline_store_calls(recordings, env, roles_by_arn),
    ]
