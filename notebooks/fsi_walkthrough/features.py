"""Read the ingested features back: the online store (GetRecord) and the offline store (Athena)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from .aws import WalkthroughError, error_code

LOG = logging.getLogger("fsi_walkthrough")

ATHENA_DONE = {"SUCCEEDED"}
ATHENA_FAILED = {"FAILED", "CANCELLED"}


def get_records(fs_runtime: Any, feature_group_name: str, record_ids: Sequence[str]) -> pd.DataFrame:
    """The online store's latest record for each id, one row per id (GetRecord)."""
    rows, missing = [], []
    for record_id in record_ids:
        try:
            response = fs_runtime.get_record(
                FeatureGroupName=feature_group_name, RecordIdentifierValueAsString=record_id
            )
        except ClientError as error:
            if error_code(error) in ("ResourceNotFound", "ResourceNotFoundException"):
                missing.append(record_id)
                continue
            raise
        record = response.get("Record")
        if not record:
            missing.append(record_id)
            continue
        rows.append({item["FeatureName"]: item.get("ValueAsString") for item in record})
    if missing:
        raise WalkthroughError(
            f"the online store of {feature_group_name} has no record for {', '.join(missing)}: did the pipeline "
            "execution succeed, and is the online store enabled in the feature group definition?"
        )
    LOG.info("read %d record(s) from the online store of %s", len(rows), feature_group_name)
    return pd.DataFrame(rows)


def offline_query(description: dict[str, Any], record_ids: Sequence[str]) -> str:
    """SQL for the latest offline-store row of each id (the offline store keeps every write)."""
    catalog = description.get("OfflineStoreConfig", {}).get("DataCatalogConfig")
    if not catalog:
        raise WalkthroughError(
            f"feature group {description.get('FeatureGroupName')} has no Glue table (DisableGlueTableCreation?)"
        )
    identifier = description["RecordIdentifierFeatureName"]
    event_time = description["EventTimeFeatureName"]
    ids = ", ".join("'" + record_id.replace("'", "''") + "'" for record_id in record_ids)
    table = f'"{catalog["Database"]}"."{catalog["TableName"]}"'
    # Names come from the feature group's description, ids are quoted with '' doubled: no injection.
    ranked = (
        f'SELECT *, row_number() OVER (PARTITION BY "{identifier}" '  # noqa: S608
        f'ORDER BY "{event_time}" DESC, api_invocation_time DESC, write_time DESC) AS row_rank '
        f'FROM {table} WHERE "{identifier}" IN ({ids})'
    )
    return f"SELECT * FROM ({ranked}) WHERE row_rank = 1 AND NOT is_deleted"  # noqa: S608


def run_query(
    athena: Any,
    sql: str,
    output_location: str,
    *,
    database: str = "sagemaker_featurestore",
    catalog: str = "AwsDataCatalog",
    workgroup: str = "primary",
    timeout: float = 300,
    poll: float = 2,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> pd.DataFrame:
    """Run ``sql`` on Athena and return the result as strings (Athena's wire format)."""
    query_id = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database, "Catalog": catalog},
        ResultConfiguration={"OutputLocation": output_location},
        WorkGroup=workgroup,
    )["QueryExecutionId"]
    deadline = clock() + timeout
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        state = status["State"]
        if state in ATHENA_DONE:
            break
        if state in ATHENA_FAILED:
            raise WalkthroughError(f"Athena query {query_id} {state}: {status.get('StateChangeReason', '')}")
        if clock() >= deadline:
            raise TimeoutError(f"Athena query {query_id} is still {state} after {timeout:.0f} s")
        sleep(poll)
    header: list[str] = []
    rows: list[list[str | None]] = []
    for number, page in enumerate(athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id)):
        page_rows = page["ResultSet"]["Rows"]
        if number == 0:
            header = [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
            page_rows = page_rows[1:]  # the first row of a SELECT's results repeats the column names
        rows.extend([cell.get("VarCharValue") for cell in row["Data"]] for row in page_rows)
    return pd.DataFrame(rows, columns=header)


def read_offline_store(
    athena: Any,
    description: dict[str, Any],
    record_ids: Sequence[str],
    output_location: str,
    *,
    workgroup: str = "primary",
    timeout: float = 1200,
    poll: float = 60,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> pd.DataFrame:
    """The offline-store rows of ``record_ids``, querying again until all of them are there.

    Feature Store copies records to the offline store in batches: they appear there within about
    15 minutes of the write.
    """
    catalog = description["OfflineStoreConfig"]["DataCatalogConfig"]
    sql = offline_query(description, record_ids)
    identifier = description["RecordIdentifierFeatureName"]
    deadline = clock() + timeout
    while True:
        frame = run_query(
            athena, sql, output_location, database=catalog["Database"], catalog=catalog["Catalog"],
            workgroup=workgroup, sleep=sleep, clock=clock,
        )
        found = set(frame[identifier]) if identifier in frame else set()
        missing = [record_id for record_id in record_ids if record_id not in found]
        if not missing:
            LOG.info("read %d row(s) from the offline store (%s.%s)", len(frame), catalog["Database"],
                     catalog["TableName"])
            return frame
        if clock() >= deadline:
            raise TimeoutError(
                f"the offline store of {description['FeatureGroupName']} still lacks {len(missing)} of "
                f"{len(record_ids)} record(s) after {timeout / 60:.0f} min (e.g. {missing[0]}). Records reach the "
                "offline store within about 15 minutes; if this persists, check the execution role's access to the "
                "offline store bucket and to the Glue table (Lake Formation)."
            )
        LOG.info("offline store: %d of %d record(s) there yet; querying again in %.0f s",
                 len(record_ids) - len(missing), len(record_ids), poll)
        sleep(poll)
