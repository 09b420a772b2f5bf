"""S3 to Feature Store ingestion: every file uploaded under a bucket/prefix is transformed and ingested.

The SageMaker project watches an S3 bucket/prefix (upload trigger), starts the project's SageMaker
pipeline for every uploaded file, and redeploys that pipeline (and the feature group definition) with
CodePipeline + CodeBuild whenever the seed code (``seed-code/s3-fs-ingestion``) changes.
"""

from __future__ import annotations

import awacs.s3 as s3
import awacs.sagemaker as sm
from troposphere import Output, Ref, Sub

from ..blocks import alarms, buckets, pipeline_jobs, seed_code_cicd, upload_trigger
from ..blocks.project import PROJECT_PARAMETERS, ProjectTemplate
from ..common import arn
from ..data_wrangler import DATA_WRANGLER_REGIONS
from ..grants import Grant
from ..names import ProjectNames, wild
from ..parameters import ParameterSpec, ParameterTable
from ..settings import Settings
from . import BLOCK_SAMPLE_PARAMETERS, PortfolioEntry, Product

PROCESSING_IMAGES = ("sagemaker-scikit-learn", "sagemaker-data-wrangler-container")
DESTINATION = "Destination"
TRANSFORMATION = "Transformation"
PARAMETERS = ParameterTable.of(
    upload_trigger.DATA_LOCATION_PARAMETERS,
    [
        ParameterSpec(
            "FeatureGroupName",
            DESTINATION,
            "Feature group name",
            {
                "Type": "String",
                "MinLength": 1,
                "MaxLength": 64,
                "AllowedPattern": "[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}",
                "Description": "Feature group the rows are ingested into (created by the seed code's build).",
            },
            readme="destination feature group (created/updated by the seed code's build)",
        ),
        ParameterSpec(
            "TransformMode",
            TRANSFORMATION,
            "Transformation",
            {
                "Type": "String",
                "Default": "Script",
                "AllowedValues": ["Script", "DataWranglerFlow"],
                "Description": "Script: the seed code's pandas job. DataWranglerFlow: a Data Wrangler flow.",
            },
            readme="`Script` (the seed code's pandas job) or `DataWranglerFlow`",
        ),
        ParameterSpec(
            "DataWranglerFlowUrl",
            TRANSFORMATION,
            "Data Wrangler flow S3 URL",
            {
                "Type": "String",
                "Default": "",
                "AllowedPattern": "(s3://(sagemaker-|aws-glue-)[a-z0-9.-]*[a-z0-9]/.+)?",
                "ConstraintDescription": "an s3:// URL in a bucket named sagemaker-* or aws-glue-* (the only buckets "
                "the project's CodeBuild role may read)",
                "Description": "s3:// URL of the .flow file (DataWranglerFlow mode only), in a bucket named "
                "sagemaker-* or aws-glue-*: the AWS-managed CodeBuild project role reads no other bucket.",
            },
            readme="`s3://` URL of the `.flow` file (`DataWranglerFlow` only), in a bucket named `sagemaker-*` or "
            "`aws-glue-*`: the AWS-managed CodeBuild project role reads no other bucket",
        ),
        ParameterSpec(
            "DataWranglerOutputName",
            TRANSFORMATION,
            "Data Wrangler output name",
            {
                "Type": "String",
                "Default": "",
                "Description": "Output node of the flow to ingest, e.g. '<node-id>.default' "
                "(DataWranglerFlow mode only).",
            },
            readme="flow output node to ingest (`DataWranglerFlow` only)",
        ),
        ParameterSpec(
            "ProcessingInstanceType",
            TRANSFORMATION,
            "Processing instance type",
            {
                "Type": "String",
                "Default": "ml.m5.xlarge",
                "AllowedPattern": "ml\\.[a-z0-9]+\\.[a-z0-9]+",
                "Description": "Instance type of the processing job.",
            },
            readme="processing job instance type",
        ),
        ParameterSpec(
            "ProcessingInstanceCount",
            TRANSFORMATION,
            "Processing instance count",
            {
                "Type": "Number",
                "Default": 1,
                "MinValue": 1,
                "MaxValue": 20,
                "Description": "Instances of the processing job; above 1 the input is sharded by S3 key.",
            },
            readme="instances; above 1 the input is sharded by S3 key",
        ),
    ],
    upload_trigger.TRIGGER_PARAMETERS,
    seed_code_cicd.SOURCE_PARAMETERS,
    alarms.NOTIFICATION_PARAMETERS,
    PROJECT_PARAMETERS,
)


def data_wrangler_rules(pt: ProjectTemplate) -> None:
    ref = pt.table.ref
    pt.add_rule(
        "DataWranglerNeedsFlow",
        {"Fn::Equals": [ref("TransformMode"), "DataWranglerFlow"]},
        [
            ({"Fn::Not": [{"Fn::Equals": [ref("DataWranglerFlowUrl"), ""]}]},
             "TransformMode DataWranglerFlow needs DataWranglerFlowUrl."),
            ({"Fn::Not": [{"Fn::Equals": [ref("DataWranglerOutputName"), ""]}]},
             "TransformMode DataWranglerFlow needs DataWranglerOutputName."),
            ({"Fn::Contains": [list(DATA_WRANGLER_REGIONS), {"Ref": "AWS::Region"}]},
             "TransformMode DataWranglerFlow: the Data Wrangler container does not exist in this Region; use Script, "
             "or create the project in one of " + ", ".join(DATA_WRANGLER_REGIONS) + "."),
        ],
    )


def feature_store_grants(pt: ProjectTemplate) -> list[Grant]:
    """The build applies the feature group definition; the processing job writes its records."""
    feature_group_arn = arn("sagemaker", "feature-group/*")
    return [
        Grant("FeatureGroupDefinition",
              [sm.CreateFeatureGroup, sm.DescribeFeatureGroup, sm.UpdateFeatureGroup, sm.AddTags, sm.ListTags],
              [feature_group_arn]),
        Grant("FeatureStoreWrites", [sm.PutRecord, sm.BatchWriteRecord, sm.GetRecord], [feature_group_arn]),
    ]


def offline_store_grants(pt: ProjectTemplate) -> list[Grant]:
    """The feature group's offline store writes under ``feature-store/`` of the artifact bucket as the execution
    role, with the bucket-owner-full-control ACL (Feature Store offline store permissions)."""
    artifact_bucket = wild(pt.names.artifact_bucket)
    return [
        Grant("OfflineStoreBucketAcl", [s3.GetBucketAcl], [arn("s3", artifact_bucket)]),
        Grant("OfflineStoreObjectAcl", [s3.PutObjectAcl], [arn("s3", f"{artifact_bucket}/feature-store/*")]),
    ]


def build(settings: Settings, product: Product) -> ProjectTemplate:
    pt = ProjectTemplate.start(settings, product, PARAMETERS, "S3 upload -> SageMaker Pipeline -> Feature Store")
    data_wrangler_rules(pt)
    bucket = buckets.artifact_bucket(
        pt, {"failed-rows/": 90, upload_trigger.MANIFEST_PREFIX: buckets.TRANSIENT_DAYS}
    )
    trigger = upload_trigger.upload_trigger(
        pt,
        bucket,
        description="Starts the project's SageMaker pipeline for each uploaded file.",
        rule_description="Starts the ingestion for uploads under the watched bucket and prefix.",
    )
    seed_code_cicd.seed_code_cicd(
        pt,
        bucket,
        build_description="Applies the feature group definition and upserts the SageMaker pipeline.",
        build_variables={
            "OFFLINE_STORE_S3_URI": Sub("s3://${ArtifactBucket}/feature-store"),
            "FEATURE_GROUP_NAME": pt.ref("FeatureGroupName"),
            "TRANSFORM_MODE": pt.ref("TransformMode"),
            "DATA_WRANGLER_FLOW_URL": pt.ref("DataWranglerFlowUrl"),
            "DATA_WRANGLER_OUTPUT_NAME": pt.ref("DataWranglerOutputName"),
            "PROCESSING_INSTANCE_TYPE": pt.ref("ProcessingInstanceType"),
            "PROCESSING_INSTANCE_COUNT": pt.ref("ProcessingInstanceCount"),
        },
    )
    alarms.project_alarms(pt, trigger)
    pt.project_roles.extend(feature_store_grants(pt))
    pt.execution.extend([*pipeline_jobs.processing_job_grants(pt, PROCESSING_IMAGES), *offline_store_grants(pt)])
    pt.template.add_output(
        [
            Output("SageMakerPipelineName", Value=Sub(pt.names.sagemaker_pipeline),
                   Description="SageMaker pipeline started for each upload"),
            Output("ArtifactBucketName", Value=Ref(bucket)),
        ]
    )
    return pt


PRODUCT = Product(
    slug="s3-fs-ingestion",
    display_name="S3 to Feature Store ingestion",
    description="Watch an S3 prefix, transform each new file and ingest it into a SageMaker feature group.",
    names=ProjectNames(short="fsi", suffix="fs-ingestion"),
    build_template=build,
    lambdas=upload_trigger.LAMBDAS,
    sample_parameters={
        **BLOCK_SAMPLE_PARAMETERS,
        "SageMakerProjectName": "Churn-Features1",
        "SageMakerProjectId": "p-abcdefghijkl",
        "FeatureGroupName": "abalone",
        "DataWranglerFlowUrl": "s3://sagemaker-eu-west-1-123456789012/flows/abalone.flow",
        "DataWranglerOutputName": "0b8ef4a2-1234.default",
        "RepositoryId": "my-org/churn-features",
    },
    # The first product's logical ids in the portfolio template, unchanged since its first release.
    portfolio=PortfolioEntry(
        product_id="IngestionProduct",
        association_id="ProductAssociation",
        constraint_id="LaunchConstraint",
        output_prefix="",
    ),
)
