"""The schema-driven transformation (processing/transform.py), without any service."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

import transform as tf
from errors import FileError, JobError
from inputs import source_name

ABALONE = tf.Schema(
    name="abalone",
    record_identifier="record_id",
    event_time="event_time",
    types={"record_id": "String", "event_time": "String", "sex_m": "Integral", "sex_f": "Integral",
           "sex_i": "Integral", "length": "Fractional", "rings": "Integral"},
)


def strings(*values: str) -> pd.Series:
    return pd.Series(list(values), dtype=str)


@pytest.mark.parametrize(("raw", "expected"), [
    ("Whole weight", "whole_weight"),
    ("  Shell  Weight (g) ", "shell_weight_g"),
    ("__Rings__", "rings"),
    ("Sex", "sex"),
    ("\ufeffsex", "sex"),
    ("a--b..c", "a_b_c"),
])
def test_column_names_are_normalised(raw: str, expected: str) -> None:
    assert tf.normalise(raw) == expected


def test_integral_cast_keeps_exact_integers_and_rejects_fractions() -> None:
    cast = tf.cast_integral(strings("15", " 7 ", "3.0", "9007199254740993", "2.5", "abc", "", "1e2"))
    assert cast.values.tolist() == ["15", "7", "3", "9007199254740993", None, None, None, "100"]
    assert cast.invalid.tolist() == [False, False, False, False, True, True, False, False]


def test_fractional_cast_rejects_text_and_infinities() -> None:
    cast = tf.cast_fractional(strings("0.455", "1", "inf", "x", "", "-2.5e-3"))
    assert cast.values.tolist() == ["0.455", "1.0", None, None, None, "-0.0025"]
    assert cast.invalid.tolist() == [False, False, True, True, False, False]


def test_string_event_times_become_iso_8601_utc() -> None:
    cast = tf.cast_event_time(
        strings("2024-03-01T10:00:00Z", "2024-03-01 11:30:00", "2024-03-02T08:15:00+01:00", "1709290800",
                "yesterday", ""),
        "String",
    )
    assert cast.values.tolist() == [
        "2024-03-01T10:00:00Z", "2024-03-01T11:30:00.000Z", "2024-03-02T07:15:00.000Z",
        "2024-03-01T11:00:00.000Z", None, None,
    ]
    assert cast.invalid.tolist() == [False, False, False, False, True, False]


def test_fractional_event_times_become_epoch_seconds() -> None:
    cast = tf.cast_event_time(strings("1709290800.5", "2024-03-01T10:00:00Z"), "Fractional")
    assert cast.values.tolist() == ["1709290800.5", "1709287200.0"]


def test_ingestion_time_has_the_format_of_the_event_time_type() -> None:
    now = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    assert tf.ingestion_time("String", now) == "2024-05-01T12:00:00.123Z"
    assert tf.ingestion_time("Fractional", now) == "1714564800.123"


def test_one_hot_columns_are_found_from_the_features() -> None:
    sample = pd.DataFrame({"sex": ["M", "F"], "length": ["0.4", "0.5"], "colour": ["red", "blue"],
                           "rings": ["7", "9"]})
    plan = tf.plan_columns(list(sample.columns), sample, ABALONE)
    assert plan.passthrough == {"length": "length", "rings": "rings"}
    assert plan.one_hot == {"sex": {"m": "sex_m", "f": "sex_f", "i": "sex_i"}}
    assert plan.dropped == ["colour"]


def test_a_column_whose_values_are_not_categories_is_dropped() -> None:
    schema = tf.Schema("g", "id", "t", {"id": "String", "t": "String", "size_small": "Integral"})
    sample = pd.DataFrame({"size": ["12", "14"]})
    assert tf.plan_columns(["size"], sample, schema).dropped == ["size"]


def test_one_hot_writes_one_and_zero_and_flags_unknown_values() -> None:
    casts, unknown = tf.one_hot(strings("M", "f", "", "X"), {"m": "sex_m", "f": "sex_f", "i": "sex_i"}, ABALONE)
    assert casts["sex_m"].values.tolist() == ["1", "0", None, None]
    assert casts["sex_f"].values.tolist() == ["0", "1", None, None]
    assert casts["sex_i"].values.tolist() == ["0", "0", None, None]
    assert unknown.tolist() == [False, False, False, True]


def test_one_hot_features_of_fractional_type_get_fractional_ones() -> None:
    schema = tf.Schema("g", "id", "t", {"id": "String", "t": "String", "plan_a": "Fractional",
                                         "plan_b": "Fractional"})
    casts, _ = tf.one_hot(strings("A", "b"), {"a": "plan_a", "b": "plan_b"}, schema)
    assert casts["plan_a"].values.tolist() == ["1.0", "0.0"]
    assert casts["plan_b"].values.tolist() == ["0.0", "1.0"]


@pytest.mark.parametrize(("source_uri", "relative", "expected"), [
    ("s3://bucket/uploads/2024/batch.csv", "batch.csv", "s3://bucket/uploads/2024/batch.csv"),
    ("s3://bucket/uploads/", "team-a/batch.csv", "s3://bucket/uploads/team-a/batch.csv"),
    ("s3://bucket/uploads/2024", "2024/batch.csv", "s3://bucket/uploads/2024/batch.csv"),
    ("s3://bucket", "batch.csv", "s3://bucket/batch.csv"),
    (None, "x/batch.csv", "x/batch.csv"),
])
def test_the_source_joins_the_uri_directory_and_the_relative_path(
    tmp_path: Path, source_uri: str | None, relative: str, expected: str
) -> None:
    assert source_name(tmp_path / relative, tmp_path, source_uri) == expected


def test_derived_record_ids_are_stable_and_unique_across_sources() -> None:
    rows = pd.Series([1, 2])
    first = tf.derived_record_ids("s3://b/a/batch.csv", rows, "String").tolist()
    assert first == ["s3://b/a/batch.csv#1", "s3://b/a/batch.csv#2"]
    assert first == tf.derived_record_ids("s3://b/a/batch.csv", rows, "String").tolist()
    other = tf.derived_record_ids("s3://b/b/batch.csv", rows, "String").tolist()
    assert not set(first) & set(other)
    integral = tf.derived_record_ids("s3://b/a/batch.csv", rows, "Integral").tolist()
    assert integral == tf.derived_record_ids("s3://b/a/batch.csv", rows, "Integral").tolist()
    assert all(0 <= int(value) < 2**63 for value in integral) and len(set(integral)) == 2


def test_a_chunk_becomes_records_and_failures() -> None:
    chunk = pd.DataFrame({"sex": ["M", "I", "Q", "F"], "length": ["0.455", "oops", "0.3", ""],
                          "rings": ["15", "7", "9", "10"]}, dtype=str)
    plan = tf.plan_columns(list(chunk.columns), chunk, ABALONE)
    result = tf.transform_chunk(chunk, plan, ABALONE, source="s3://b/in/x.csv", first_row=11,
                                 event_time_now="2024-05-01T12:00:00.000Z")
    assert [row for row, _ in result.records] == [11, 14]
    first = {value["FeatureName"]: value["ValueAsString"] for value in result.records[0][1]}
    assert first == {"length": "0.455", "rings": "15", "sex_m": "1", "sex_f": "0", "sex_i": "0",
                     "record_id": "s3://b/in/x.csv#11", "event_time": "2024-05-01T12:00:00.000Z"}
    last = {value["FeatureName"] for value in result.records[1][1]}
    assert "length" not in last  # an empty cell leaves the feature out of the record
    assert result.failures == [
        (12, "column 'length': cannot cast to Fractional: 'oops'"),
        (13, "column 'sex': no one-hot feature for value 'Q'"),
    ]


def test_an_empty_record_identifier_column_fails_the_row() -> None:
    schema = tf.Schema("g", "id", "t", {"id": "Integral", "t": "Fractional", "x": "String"})
    chunk = pd.DataFrame({"id": ["1", ""], "t": ["1.5", "2.5"], "x": ["a", "b"]}, dtype=str)
    plan = tf.plan_columns(list(chunk.columns), chunk, schema)
    result = tf.transform_chunk(chunk, plan, schema, source="f.csv", first_row=1, event_time_now="0.0")
    assert [row for row, _ in result.records] == [1]
    assert result.failures == [(2, "feature 'id' is empty")]


def test_schema_refuses_a_record_identifier_it_cannot_fill() -> None:
    description = {"FeatureGroupName": "g", "RecordIdentifierFeatureName": "id", "EventTimeFeatureName": "t",
                   "FeatureDefinitions": [{"FeatureName": "id", "FeatureType": "String"},
                                          {"FeatureName": "t", "FeatureType": "Integral"}]}
    with pytest.raises(JobError, match="must be String or Fractional"):
        tf.Schema.from_description(description)


def test_collection_features_are_left_out() -> None:
    description = {"FeatureGroupName": "g", "RecordIdentifierFeatureName": "id", "EventTimeFeatureName": "t",
                   "FeatureDefinitions": [{"FeatureName": "id", "FeatureType": "String"},
                                          {"FeatureName": "t", "FeatureType": "String"},
                                          {"FeatureName": "tags", "FeatureType": "String", "CollectionType": "List"}]}
    assert set(tf.Schema.from_description(description).types) == {"id", "t"}


def test_a_file_whose_columns_clash_or_match_no_feature_cannot_be_planned() -> None:
    clash = tf.normalised_chunk(pd.DataFrame({"Length": ["1"], "length ": ["2"]}, dtype=str))
    with pytest.raises(FileError, match="columns normalise to the same name: length"):
        tf.plan_file(clash, ABALONE)
    other = tf.normalised_chunk(pd.DataFrame({"Customer ID": ["1"], "Plan": ["basic"]}, dtype=str))
    with pytest.raises(FileError, match=r"none of its columns \(customer_id, plan\) is a feature of abalone"):
        tf.plan_file(other, ABALONE)
    assert tf.plan_file(tf.normalised_chunk(pd.DataFrame({"Sex": ["M"]}, dtype=str)), ABALONE).one_hot == {
        "sex": {"m": "sex_m", "f": "sex_f", "i": "sex_i"}}
