"""Batch inference on upload: every file uploaded under a bucket/prefix is scored by the latest approved model.

The same building blocks as the ingestion product: the upload trigger (both modes, dead-letter queue, retry,
idempotent start; the start Lambda passes every upload as a one-object manifest, so each prediction's path
holds its input's key) and the seed-code loop (``seed-code/s3-batch-inference``), whose build resolves the
model package group's latest Approved package and upserts a pipeline that runs a batch transform with it.
A rule on "SageMaker Model Package State Change" for the group restarts the seed-code CodePipeline, so new
uploads use the newly approved model; until one is approved the pipeline does not exist and uploads go to
the dead-letter queue with that reason.
"""

from __future__ import annotations

import awacs.s3 as s3
import awacs.sagemaker as sm
from troposphere import GetAtt, Output, Ref, Sub

from .. import event_patterns
from ..blocks import alarms, buckets, pipeline_jobs, seed_code_cicd, upload_trigger
from ..blocks.project import PROJECT_PARAMETERS, ProjectTemplate
from ..common import arn
from ..grants import Grant
from ..names import ProjectNames, wild
from ..parameters import ParameterSpec, ParameterTable
from ..settings import Settings
from . import BLOCK_SAMPLE_PARAMETERS, PortfolioEntry, Product

MODEL = "Model"
PREDICTIONS = "Predictions"
# AWS's framework images a registered model may use; account repositories follow the sagemaker-* convention
# of the AWS-managed project roles (CodeBuild may push sagemaker-* repositories).
MODEL_IMAGE_REPOSITORIES = ("sagemaker-scikit-learn", "sagemaker-xgboost")
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"

PARAMETERS = ParameterTable.of(
    upload_trigger.DATA_LOCATION_PARAMETERS,
    [
        ParameterSpec(
            "ModelPackageGroupName",
            MODEL,
            "Model package group",
            {
                "Type": "String",
                "MinLength": 1,
                "MaxLength": 63,
                "AllowedPattern": "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
                "Description": "Model package group whose latest Approved package scores the uploads; the project "
                "redeploys its pipeline when a package of the group is approved or rejected.",
            },
            readme="model package group whose latest `Approved` package scores the uploads; approving or rejecting "
            "a package redeploys the pipeline",
        ),
        ParameterSpec(
            "PredictionsPrefix",
            PREDICTIONS,
            "Predictions prefix",
            {
                "Type": "String",
                "Default": "predictions/",
                "MinLength": 2,
                "MaxLength": 200,
                "AllowedPattern": "[a-zA-Z0-9!_.*'()-][a-zA-Z0-9!_.*'()/-]*/",
                "Description": "Key prefix in the project's artifact bucket for the predictions, ending with '/': "
                "one folder per pipeline execution, each prediction named after its input's key.",
            },
            readme="key prefix in the project's artifact bucket, ending with `/`: one folder per execution, each "
            "prediction at `<prefix><execution id>/<input key>.out`",
        ),
        ParameterSpec(
            "TransformInstanceType",
            PREDICTIONS,
            "Transform instance type",
            {
                "Type": "String",
                "Default": "ml.m5.large",
                "AllowedPattern": "ml\\.[a-z0-9]+\\.[a-z0-9]+",
                "Description": "Instance type of the batch transform job.",
            },
            readme="batch transform instance type",
        ),
        ParameterSpec(
            "TransformInstanceCount",
            PREDICTIONS,
            "Transform instance count",
            {
                "Type": "Number",
                "Default": 1,
                "MinValue": 1,
                "MaxValue": 10,
                "Description": "Instances of the batch transform job.",
            },
            readme="batch transform instances",
        ),
    ],
    upload_trigger.TRIGGER_PARAMETERS,
    seed_code_cicd.SOURCE_PARAMETERS,
    alarms.NOTIFICATION_PARAMETERS,
    PROJECT_PARAMETERS,
)


def model_grants(pt: ProjectTemplate) -> list[Grant]:
    """The build resolves the group's latest approved package; the pipeline creates a model from it."""
    return [
        Grant(
            "ModelPackages",
            [sm.DescribeModelPackage, sm.DescribeModelPackageGroup],
            [arn("sagemaker", "model-package-group/*"), arn("sagemaker", "model-package/*")],
        ),
        # ListModelPackages names no required resource type (Service Authorization Reference); read-only.
        Grant("ListModelPackages", [sm.ListModelPackages], ["*"]),
        # With no Approved package left, the build withdraws the pipeline (seed-code deploy.py).
        Grant(
            "WithdrawPipeline", [sm.DeletePipeline], [arn("sagemaker", f"pipeline/{wild(pt.names.sagemaker_pipeline)}")]
        ),
    ]


def transform_grants(pt: ProjectTemplate) -> list[Grant]:
    """What the execution role does for the pipeline's model and batch transform steps (SageMaker Developer
    Guide, "CreateTransformJob API: Execution Role Permissions", "CreateModel API: Execution Role Permissions")."""
    return [
        Grant(
            "PipelineModels", [sm.CreateModel, sm.DescribeModel, sm.AddTags], [arn("sagemaker", "model/pipelines-*")]
        ),
        Grant(
            "PipelineTransformJobs",
            [sm.CreateTransformJob, sm.DescribeTransformJob, sm.StopTransformJob, sm.AddTags],
            [arn("sagemaker", "transform-job/pipelines-*")],
        ),
        *pipeline_jobs.log_grants("TransformJob", TRANSFORM_LOG_GROUP),
        pipeline_jobs.image_grant([*MODEL_IMAGE_REPOSITORIES, arn("ecr", "repository/sagemaker-*")]),
        # The SageMaker SDK's default bucket, where registered models keep their artifacts (model.tar.gz).
        Grant("ReadModelArtifacts", [s3.GetObject], [arn("s3", "sagemaker-${AWS::Region}-${AWS::AccountId}/*")]),
    ]


def build(settings: Settings, product: Product) -> ProjectTemplate:
    pt = ProjectTemplate.start(settings, product, PARAMETERS, "S3 upload -> batch transform with the latest "
                               "approved model")
    bucket = buckets.artifact_bucket(pt, {upload_trigger.MANIFEST_PREFIX: buckets.TRANSIENT_DAYS})
    trigger = upload_trigger.upload_trigger(
        pt,
        bucket,
        description="Starts the project's batch-inference pipeline for each uploaded file.",
        rule_description="Starts the batch inference for uploads under the watched bucket and prefix.",
        environment={
            "START_WITH_MANIFEST": "always",  # the prediction's path keeps the input's full key
            "MISSING_PIPELINE_HINT": Sub(
                "the pipeline is deployed once a model package of group ${ModelPackageGroupName} is Approved: "
                "approve one, then redrive the dead-letter queue"
            ),
        },
    )
    cicd = seed_code_cicd.seed_code_cicd(
        pt,
        bucket,
        build_description="Resolves the latest approved model package and upserts the batch-inference pipeline.",
        build_variables={
            "MODEL_PACKAGE_GROUP_NAME": pt.ref("ModelPackageGroupName"),
            "PREDICTIONS_PREFIX": pt.ref("PredictionsPrefix"),
            "TRANSFORM_INSTANCE_TYPE": pt.ref("TransformInstanceType"),
            "TRANSFORM_INSTANCE_COUNT": pt.ref("TransformInstanceCount"),
            "CONTENT_TYPE": "text/csv",
        },
    )
    approval_rule = seed_code_cicd.redeploy_rule(
        pt,
        "ModelApprovalRule",
        pt.names.model_approval_rule,
        cicd.pipeline,
        description="Redeploys the pipeline with the latest approved model when a package of the group is "
        "approved or rejected.",
        pattern=event_patterns.model_package_state_pattern(pt.ref("ModelPackageGroupName")),
    )
    alarms.project_alarms(pt, trigger)
    pt.project_roles.extend(model_grants(pt))
    pt.execution.extend([*transform_grants(pt), *pipeline_jobs.input_grants(pt)])
    pt.template.add_output(
        [
            Output("SageMakerPipelineName", Value=Sub(pt.names.sagemaker_pipeline),
                   Description="SageMaker pipeline started for each upload (exists once a model is approved)"),
            Output("ArtifactBucketName", Value=Ref(bucket)),
            Output("PredictionsLocation", Value=Sub("s3://${ArtifactBucket}/${PredictionsPrefix}"),
                   Description="One folder per execution, each prediction named after its input's key"),
            Output("ModelApprovalRuleArn", Value=GetAtt(approval_rule, "Arn")),
        ]
    )
    return pt


PRODUCT = Product(
    slug="s3-batch-inference",
    display_name="S3 batch inference with the latest approved model",
    description="Watch an S3 prefix and score each new file with a batch transform of the latest approved model "
    "package of a group.",
    names=ProjectNames(short="bi", suffix="batch-inference"),
    build_template=build,
    lambdas=upload_trigger.LAMBDAS,
    sample_parameters={
        **BLOCK_SAMPLE_PARAMETERS,
        "SageMakerProjectName": "Churn-Scoring1",
        "SageMakerProjectId": "p-bcdefghijklm",
        "ModelPackageGroupName": "churn-models",
        "RepositoryId": "my-org/churn-scoring",
    },
    portfolio=PortfolioEntry.named("BatchInference"),
)
