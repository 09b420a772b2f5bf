"""Helpers of the walkthrough notebooks (00-setup, 01-feature-store-ingest-pipeline, 99-clean-up).

The notebooks call these small, tested functions instead of carrying long inline code. They need boto3
and pandas only (no SageMaker Python SDK), and run unchanged against AWS or a local stand-in
(boto3 honours ``AWS_ENDPOINT_URL``).

The names exported here are the notebooks' steps; the modules hold the building blocks.
"""

from .aws import Aws, WalkthroughError, connect
from .cleanup import CleanupNotConfirmed, cleanup_plan, delete_offline_store, require_confirmation
from .connection import check_connection
from .dataset import ABALONE_PAGE, ABALONE_URL, download_abalone, load_abalone, write_csv
from .feature_group import apply_definition, describe_if_exists, load_definition
from .project import PRODUCT_NAME, check_flow_url, check_project_name, project_resources, wait_for_project
from .resources import check_bucket_region, check_trigger_mode, default_bucket_name, execution_role, watched_prefix
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
    "ABALONE_PAGE",
    "ABALONE_URL",
    "PRODUCT_NAME",
    "SKIPPED",
    "Aws",
    "CleanupNotConfirmed",
    "State",
    "Steps",
    "WalkthroughError",
    "apply_definition",
    "check_before_create",
    "check_bucket_region",
    "check_connection",
    "check_eventbridge_notifications",
    "check_flow_url",
    "check_project_name",
    "check_trigger_mode",
    "cleanup_plan",
    "connect",
    "create_project",
    "default_bucket_name",
    "delete_feature_group",
    "delete_offline_store",
    "delete_project",
    "delete_project_buckets",
    "delete_project_log_groups",
    "delete_project_pipeline",
    "delete_walkthrough_files",
    "describe_if_exists",
    "download_abalone",
    "execution_role",
    "follow_upload",
    "forget",
    "load_abalone",
    "load_definition",
    "prepare_data_bucket",
    "prepare_upload",
    "project_resources",
    "read_offline",
    "read_online",
    "record_ids",
    "require_confirmation",
    "restore_data_bucket",
    "show_progress",
    "template_parameters",
    "upload",
    "wait_for_deployment",
    "wait_for_project",
    "watched_prefix",
    "write_csv",
]
