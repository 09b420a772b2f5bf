"""Helpers of the walkthrough notebooks (00-setup, 01-feature-store-ingest-pipeline, 02-batch-inference, 99-clean-up).

The notebooks call these small, tested functions instead of carrying long inline code. They need boto3
and pandas only (no SageMaker Python SDK), and run unchanged against AWS or a local stand-in
(boto3 honours ``AWS_ENDPOINT_URL``).

The names exported here are the notebooks' steps; the modules hold the building blocks. The steps of
02-batch-inference (module ``batch_inference``) are exported under names that say they are its own.
"""

from .aws import Aws, WalkthroughError, connect
from .backfill import BackfillResult, backfill_project
from .batch_inference import (
    BatchState,
    approve_model,
    delete_registered_models,
    latest_approved_package,
    package_model,
    predict_locally,
    prepare_scoring_file,
    read_predictions,
    register_model,
    upload_model,
)
from .batch_inference import check_before_create as check_batch_before_create
from .batch_inference import check_notifications as check_batch_notifications
from .batch_inference import create_project as create_batch_project
from .batch_inference import delete_files as delete_batch_files
from .batch_inference import delete_pipeline as delete_batch_pipeline
from .batch_inference import delete_pipeline_models as delete_batch_models
from .batch_inference import delete_project as delete_batch_project
from .batch_inference import delete_project_buckets as delete_batch_buckets
from .batch_inference import delete_project_log_groups as delete_batch_log_groups
from .batch_inference import follow_upload as follow_scoring
from .batch_inference import start as start_batch
from .batch_inference import template_parameters as batch_template_parameters
from .batch_inference import train_model as train_rings_model
from .batch_inference import upload as upload_for_scoring
from .batch_inference import wait_for_deployment as wait_for_batch_deployment
from .cleanup import CleanupNotConfirmed, cleanup_plan, delete_offline_store, require_confirmation
from .connection import check_connection
from .dataset import ABALONE_PAGE, ABALONE_URL, download_abalone, load_abalone, write_csv
from .feature_group import apply_definition, describe_if_exists, load_definition
from .project import PRODUCT_NAME, check_flow_url, check_project_name, project_resources, wait_for_project
from .resources import check_bucket_region, check_trigger_mode, default_bucket_name, execution_role, watched_prefix
from .sklearn_images import sklearn_image_uri
from .steps import SKIPPED, State, Steps, show_progress
from .walkthrough import (
    check_before_create,
    check_eventbridge_notifications,
    create_project,
    delete_feature_group,
    delete_project,
    delete_project_buckets,
    delete_project_log_groups,
    delete_project_pipeline,
    delete_walkthrough_files,
    follow_upload,
    forget,
    prepare_data_bucket,
    prepare_upload,
    read_offline,
    read_online,
    record_ids,
    restore_data_bucket,
    template_parameters,
    upload,
    wait_for_deployment,
)

__all__ = [
    "BackfillResult",
    "backfill_project",
    "ABALONE_PAGE",
    "ABALONE_URL",
    "PRODUCT_NAME",
    "SKIPPED",
    "Aws",
    "BatchState",
    "CleanupNotConfirmed",
    "State",
    "Steps",
    "WalkthroughError",
    "apply_definition",
    "approve_model",
    "batch_template_parameters",
    "check_batch_before_create",
    "check_batch_notifications",
    "check_before_create",
    "check_bucket_region",
    "check_connection",
    "check_eventbridge_notifications",
    "check_flow_url",
    "check_project_name",
    "check_trigger_mode",
    "cleanup_plan",
    "connect",
    "create_batch_project",
    "create_project",
    "default_bucket_name",
    "delete_batch_buckets",
    "delete_batch_files",
    "delete_batch_log_groups",
    "delete_batch_models",
    "delete_batch_pipeline",
    "delete_batch_project",
    "delete_feature_group",
    "delete_offline_store",
    "delete_project",
    "delete_project_buckets",
    "delete_project_log_groups",
    "delete_project_pipeline",
    "delete_registered_models",
    "delete_walkthrough_files",
    "describe_if_exists",
    "download_abalone",
    "execution_role",
    "follow_scoring",
    "follow_upload",
    "forget",
    "latest_approved_package",
    "load_abalone",
    "load_definition",
    "package_model",
    "predict_locally",
    "prepare_data_bucket",
    "prepare_scoring_file",
    "prepare_upload",
    "project_resources",
    "read_offline",
    "read_online",
    "read_predictions",
    "record_ids",
    "register_model",
    "require_confirmation",
    "restore_data_bucket",
    "show_progress",
    "sklearn_image_uri",
    "start_batch",
    "template_parameters",
    "train_rings_model",
    "upload",
    "upload_for_scoring",
    "upload_model",
    "wait_for_batch_deployment",
    "wait_for_deployment",
    "wait_for_project",
    "watched_prefix",
    "write_csv",
]
