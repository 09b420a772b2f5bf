"""The transformation: rows of a CSV file -> Feature Store records. This is the module to adapt.

It is driven by the feature group's definition (:class:`Schema`, from DescribeFeatureGroup), not by
per-dataset code, in this order:

1. :func:`read_chunks` reads the file, every cell as text, :data:`CHUNK_ROWS` rows at a time;
2. :func:`normalised_chunk` renames the columns with :func:`normalise` (``Whole weight`` -> ``whole_weight``);
3. :func:`plan_file` (:func:`plan_columns`), on the first chunk, decides what each column becomes: a feature
   (passed through), one-hot features (a column ``c`` whose values appear as features ``c_<value>``), or
   nothing (dropped, one warning);
4. :func:`transform_chunk` casts the values to the feature types (:data:`CASTS`, :func:`cast_event_time`,
   :func:`one_hot`), adds what the file lacks (:func:`derived_record_ids`, :func:`ingestion_time`) and
   returns the records plus the rows that could not be cast, with the reason.

``ingest.py`` runs these steps for every file and hands the records to ``feature_store_writer.py``.

No scaling happens here: features from different files stay comparable. To derive a new feature, add it
to ``feature_group.json`` and compute it in :func:`transform_chunk` (a column of ``casts``).

Runs in the SageMaker scikit-learn image: pandas 1.1+ and Python 3.9+ only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from errors import FileError, JobError

LOG = logging.getLogger("transform_and_ingest.transform")

CHUNK_ROWS = 5_000  # rows read, transformed and written at a time: bounded memory, work to share
_ISO_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
_INT_TEXT = r"[+-]?\d+"


# --------------------------------------------------------------------------------------------------
# The feature group's schema
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """What the transformation needs to know about the feature group."""

    name: str
    record_identifier: str
    event_time: str
    types: dict[str, str]  # scalar feature name -> Integral | Fractional | String

    @classmethod
    def from_description(cls, description: dict) -> Schema:
        """From a DescribeFeatureGroup response."""
        types = {}
        for feature in description["FeatureDefinitions"]:
            if feature.get("CollectionType"):
                # CSV cells cannot carry lists; such features are left out of every record.
                LOG.warning("feature %r is a %s collection: CSV files cannot fill it, it is skipped",
                            feature["FeatureName"], feature["CollectionType"])
                continue
            types[feature["FeatureName"]] = feature["FeatureType"]
        schema = cls(
            name=description["FeatureGroupName"],
            record_identifier=description["RecordIdentifierFeatureName"],
            event_time=description["EventTimeFeatureName"],
            types=types,
        )
        if schema.types.get(schema.event_time) not in ("String", "Fractional"):
            raise JobError(f"event time feature {schema.event_time!r} must be String or Fractional")
        if schema.record_identifier not in schema.types:
            raise JobError(f"record identifier {schema.record_identifier!r} is not a scalar feature")
        return schema


# --------------------------------------------------------------------------------------------------
# Reading a CSV file
# --------------------------------------------------------------------------------------------------


def read_chunks(path: Path) -> Iterable[pd.DataFrame]:
    """The file's rows, :data:`CHUNK_ROWS` at a time, every cell as text (change the separator or the
    encoding here)."""
    # Empty stays empty ("NA" is not missing data here); index_col=False keeps a trailing delimiter from
    # turning the first column into the index.
    return pd.read_csv(
        path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig",
        index_col=False, chunksize=CHUNK_ROWS,
    )


# --------------------------------------------------------------------------------------------------
# Columns: names, one-hot encoding, what is dropped
# --------------------------------------------------------------------------------------------------


def normalise(name: object) -> str:
    """Lowercase; every run of non-alphanumeric characters becomes one ``_``; trimmed of ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def normalised_chunk(raw: pd.DataFrame) -> pd.DataFrame:
    """A chunk as the transformation sees it: the same cells under normalised column names."""
    return raw.set_axis([normalise(column) for column in raw.columns], axis=1)


@dataclass
class ColumnPlan:
    """How the (normalised) columns of one file map to features."""

    passthrough: dict[str, str] = field(default_factory=dict)  # column -> feature
    one_hot: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {value -> feature}
    dropped: list[str] = field(default_factory=list)


def plan_columns(columns: Sequence[str], sample: pd.DataFrame, schema: Schema) -> ColumnPlan:
    """Decide, from the header and a first chunk of rows, what each column becomes."""
    by_normalised = {normalise(feature): feature for feature in schema.types}
    plan = ColumnPlan()
    for column in columns:
        if column in by_normalised:
            plan.passthrough[column] = by_normalised[column]
    provided = set(plan.passthrough.values())
    for column in columns:
        if column in plan.passthrough:
            continue
        prefix = column + "_"
        categories = {
            key[len(prefix):]: feature
            for key, feature in by_normalised.items()
            if key.startswith(prefix) and feature not in provided
        }
        values = {normalise(value) for value in sample[column].unique() if str(value).strip() != ""}
        if categories and values & set(categories):
            plan.one_hot[column] = categories
        else:
            plan.dropped.append(column)
    return plan


def plan_file(chunk: pd.DataFrame, schema: Schema) -> ColumnPlan:
    """The plan of a file, from its first (normalised) chunk; a file none of whose columns is a feature, or
    whose columns clash once normalised, cannot be ingested (FileError)."""
    columns = list(chunk.columns)
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise FileError(f"columns normalise to the same name: {', '.join(duplicates)}")
    plan = plan_columns(columns, chunk, schema)
    if not plan.passthrough and not plan.one_hot:  # a file meant for another feature group
        raise FileError(f"none of its columns ({', '.join(columns)[:300]}) is a feature of {schema.name}")
    return plan


# --------------------------------------------------------------------------------------------------
# Casting (vectorised: a chunk at a time)
# --------------------------------------------------------------------------------------------------


@dataclass
class Cast:
    """A column cast to a feature type: the value to send (None = leave the feature out) per row,
    and the rows whose value could not be cast."""

    values: pd.Series  # object: str or None
    invalid: pd.Series  # bool


def _empty_like(series: pd.Series) -> pd.Series:
    return pd.Series([None] * len(series), index=series.index, dtype=object)


def cast_integral(raw: pd.Series) -> Cast:
    text = raw.astype(str).str.strip()
    present = text.ne("")
    out = _empty_like(raw)
    exact = present & text.str.fullmatch(_INT_TEXT).fillna(False).astype(bool)
    if exact.any():
        ints = text[exact].map(int)
        good = ints[ints.map(lambda v: -(2**63) <= v < 2**63).astype(bool)]
        out.loc[good.index] = good.map(str).tolist()
    other = present & ~exact
    if other.any():
        numbers = _floats(text[other])
        good = numbers[numbers.notna() & (numbers.abs() < 2.0**53) & (numbers % 1 == 0)]
        out.loc[good.index] = good.astype("int64").astype(str).tolist()
    return Cast(out, present & out.isna())


def _floats(text: pd.Series) -> pd.Series:
    """Python's correctly rounded float() per cell (NaN where it fails): pandas 1.x's to_numeric can be
    one unit in the last place off (0.101 -> 0.10099999999999999)."""

    def parse(value: str) -> float:
        try:
            return float(value) if "_" not in value else float("nan")
        except ValueError:
            return float("nan")

    values = text.tolist()
    try:  # the common case, at C speed: every cell parses (and none has the "_" float() would accept)
        if "_" not in "".join(values):
            return pd.Series(list(map(float, values)), index=text.index, dtype=float)
    except (TypeError, ValueError):
        pass
    return pd.Series([parse(value) for value in values], index=text.index, dtype=float)


def _float_text(numbers: pd.Series) -> list[str]:
    """Shortest round-trip text of each float, the same with every pandas and numpy version."""
    return list(map(repr, map(float, numbers.tolist())))


def cast_fractional(raw: pd.Series) -> Cast:
    text = raw.astype(str).str.strip()
    present = text.ne("")
    out = _empty_like(raw)
    if present.any():
        numbers = _floats(text[present])
        good = numbers[numbers.notna() & numbers.abs().lt(float("inf"))]
        out.loc[good.index] = _float_text(good)
    return Cast(out, present & out.isna())


def cast_string(raw: pd.Series) -> Cast:
    text = raw.astype(str)
    present = text.str.strip().ne("")
    out = _empty_like(raw)
    out.loc[present] = text[present].tolist()
    return Cast(out, pd.Series(False, index=raw.index))


def _parse_instant(value: str) -> dt.datetime | None:
    """An ISO-8601 date/time (naive = UTC) or else epoch seconds, as an aware UTC datetime; None if neither."""
    value = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        try:
            return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
        except (ValueError, OverflowError, OSError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def format_iso(instant: dt.datetime) -> str:
    """The ISO-8601 form Feature Store accepts for String event times (UTC, ``Z``, milliseconds)."""
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def cast_event_time(raw: pd.Series, feature_type: str) -> Cast:
    """Event times as Feature Store wants them: ISO-8601 UTC for String, epoch seconds for Fractional."""
    text = raw.astype(str).str.strip()
    present = text.ne("")
    out = _empty_like(raw)
    if feature_type == "String":
        ready = present & text.str.match(_ISO_EVENT_TIME).fillna(False).astype(bool)
        out.loc[ready] = text[ready].tolist()
        todo = present & ~ready
        convert: Callable[[dt.datetime], str] = format_iso
    else:
        numbers = _floats(text)
        ready = present & numbers.notna() & numbers.abs().lt(float("inf"))
        out.loc[ready] = _float_text(numbers[ready])
        todo = present & ~ready
        convert = lambda instant: repr(instant.timestamp())  # noqa: E731
    for index, value in text[todo].items():
        instant = _parse_instant(value)
        if instant is not None:
            out.at[index] = convert(instant)
    return Cast(out, present & out.isna())


CASTS = {"Integral": cast_integral, "Fractional": cast_fractional, "String": cast_string}


def one_hot(raw: pd.Series, categories: dict[str, str], schema: Schema) -> tuple[dict[str, Cast], pd.Series]:
    """One Cast per category feature (1 where the row has that value, else 0), and the rows whose value
    is not a category. An empty cell leaves every category feature out of the record."""
    text = raw.astype(str)
    keys = text.map({value: normalise(value) for value in text.unique()})
    present = keys.ne("")
    unknown = present & ~keys.isin(list(categories))
    casts = {}
    for key, feature in categories.items():
        one, zero = ("1.0", "0.0") if schema.types[feature] == "Fractional" else ("1", "0")
        values = keys.eq(key).map({True: one, False: zero}).astype(object)
        values[~present | unknown] = None
        casts[feature] = Cast(values, pd.Series(False, index=raw.index))
    return casts, unknown


# --------------------------------------------------------------------------------------------------
# Record identifiers and event times that are not in the file
# --------------------------------------------------------------------------------------------------


def derived_record_ids(source: str, row_numbers: pd.Series, feature_type: str) -> pd.Series:
    """Stable across re-runs, unique across files: ``<source>#<row>`` (String) or a 63-bit hash of it.
    ``source`` is the object's URL (``s3://bucket/key``), the same in the object and manifest paths."""
    text = source + "#" + row_numbers.astype(str)
    if feature_type == "String":
        return text.astype(object)
    return text.map(
        lambda value: str(int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big") >> 1)
    ).astype(object)


def ingestion_time(feature_type: str, now: dt.datetime | None = None) -> str:
    """The event time of rows whose file has none: now, in the form the event time feature's type needs."""
    instant = now or dt.datetime.now(dt.timezone.utc)
    return format_iso(instant) if feature_type == "String" else repr(round(instant.timestamp(), 3))


# --------------------------------------------------------------------------------------------------
# Transformation of one chunk
# --------------------------------------------------------------------------------------------------


Record = list[dict[str, str]]  # what PutRecord takes: [{"FeatureName": ..., "ValueAsString": ...}, ...]


@dataclass
class Transformed:
    """The records of one chunk, held as columns (``names`` x rows) until they are needed, and the rows that
    could not be cast. :attr:`records` gives them as PutRecord records, :meth:`entries` as the JSON text of
    BatchWriteRecord entries (what the writer sends: no dictionaries built, no JSON encoder walking them)."""

    first_row: int
    names: list[str]  # the features of every record, in column order
    columns: list[list[str | None]]  # per feature, its value in every row of the chunk (None: left out)
    failed: list[bool]  # per row of the chunk: could not be cast (see failures)
    failures: list[tuple[int, str]]  # (row number, reason)

    @property
    def records(self) -> list[tuple[int, Record]]:
        """(row number, record) of every row that was cast."""
        result = []
        for position, values in enumerate(zip(*self.columns)):
            if not self.failed[position]:
                record = [{"FeatureName": name, "ValueAsString": value}
                          for name, value in zip(self.names, values) if value is not None]
                result.append((self.first_row + position, record))
        return result

    def entries(self, feature_group_name: str) -> list[tuple[int, str]]:
        """(row number, BatchWriteRecordEntry as JSON text) of every row that was cast: the same JSON document
        ``json.dumps({"FeatureGroupName": ..., "Record": record})`` gives, built from the columns directly."""
        quote = json.encoder.encode_basestring_ascii  # what json.dumps uses for every str (C, ensure_ascii)
        quoted = [list(map(quote, values)) if None not in values else
                  [None if value is None else quote(value) for value in values] for values in self.columns]
        head = '{"FeatureGroupName":' + quote(feature_group_name) + ',"Record":['
        features = ['{"FeatureName":' + quote(name) + ',"ValueAsString":' for name in self.names]
        # A row with every feature: one format operation. A row that leaves some out: joined piece by piece.
        template = (head + ",".join(feature.replace("%", "%%") + "%s}" for feature in features) + "]}")
        result = []
        for position, values in enumerate(zip(*quoted)):
            if self.failed[position]:
                continue
            if None in values:
                entry = head + ",".join([feature + value + "}" for feature, value in zip(features, values)
                                         if value is not None]) + "]}"
            else:
                entry = template % values
            result.append((self.first_row + position, entry))
        return result


def transform_chunk(
    chunk: pd.DataFrame,
    plan: ColumnPlan,
    schema: Schema,
    *,
    source: str,
    first_row: int,
    event_time_now: str,
) -> Transformed:
    """Cast one chunk (normalised column names, string cells) into Feature Store records."""
    chunk = chunk.reset_index(drop=True)
    row_numbers = pd.Series(range(first_row, first_row + len(chunk)), index=chunk.index)
    casts: dict[str, Cast] = {}
    reasons = pd.Series([None] * len(chunk), index=chunk.index, dtype=object)

    def blame(mask: pd.Series, column: str, what: str) -> None:
        fresh = mask & reasons.isna()
        if fresh.any():
            reasons.loc[fresh] = [f"column {column!r}: {what} {value!r}" for value in chunk.loc[fresh, column]]

    for column, feature in plan.passthrough.items():
        if feature == schema.event_time:
            cast = cast_event_time(chunk[column], schema.types[feature])
            blame(cast.invalid, column, f"not an event time ({schema.types[feature]}):")
        else:
            cast = CASTS[schema.types[feature]](chunk[column])
            blame(cast.invalid, column, f"cannot cast to {schema.types[feature]}:")
        casts[feature] = cast
    for column, categories in plan.one_hot.items():
        encoded, unknown = one_hot(chunk[column], categories, schema)
        casts.update(encoded)
        blame(unknown, column, "no one-hot feature for value")

    if schema.record_identifier not in casts:
        ids = derived_record_ids(source, row_numbers, schema.types[schema.record_identifier])
        casts[schema.record_identifier] = Cast(ids, pd.Series(False, index=chunk.index))
    if schema.event_time not in casts:
        now = pd.Series([event_time_now] * len(chunk), index=chunk.index, dtype=object)
        casts[schema.event_time] = Cast(now, pd.Series(False, index=chunk.index))
    for feature in (schema.record_identifier, schema.event_time):
        missing = casts[feature].values.isna() & reasons.isna()
        reasons[missing] = f"feature {feature!r} is empty"

    names = list(casts)
    failed = reasons.notna().tolist()
    failures = [(first_row + position, reasons.iat[position]) for position, bad in enumerate(failed) if bad]
    return Transformed(first_row=first_row, names=names, columns=[casts[name].values.tolist() for name in names],
                       failed=failed, failures=failures)
