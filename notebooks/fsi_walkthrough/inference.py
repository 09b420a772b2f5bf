"""Entry point of the walkthrough's Abalone model in the SageMaker scikit-learn serving container.

``02-batch-inference`` packages this file as ``code/inference.py`` in ``model.tar.gz``, next to the model
(``model.json``), and registers the package with ``SAGEMAKER_PROGRAM=inference.py`` and
``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code``, the layout the SageMaker Python SDK gives a repacked model
(``_script_mode_env_vars`` in sagemaker-serve's ``model_builder.py``). The container imports it and calls
(aws/sagemaker-scikit-learn-container, ``serving.py``; SageMaker Python SDK, "Using Scikit-learn with the
SageMaker Python SDK", "Deploy a Scikit-learn model"):

* ``model_fn(model_dir)`` once: the model, from ``model.json`` in the extracted archive;
* ``input_fn(body, content_type)`` per request: ``text/csv`` bodies (a ``str``: the container decodes CSV
  as UTF-8) of Abalone rows without the label, one row per line, no header:
  ``sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight``;
* ``predict_fn(rows, model)``: one predicted number of rings per row;
* ``output_fn(predictions, accept)``: ``text/csv``, one prediction per line, in input order, returned as
  ``(body, content type)``.

A batch transform with ``SplitType=Line`` sends several lines per request and, with ``AssembleWith=Line``,
writes the answers line by line: the prediction file has one line per input line.

The model is a linear regression kept as plain numbers (no pickle): it loads with any scikit-learn container
version, whatever library versions trained it. The features are those of the walkthrough's feature group:
``sex`` one-hot encoded into ``sex_m``, ``sex_f``, ``sex_i`` as the ingestion's processing script does
(case-insensitively), the measurements as they are. Training (``fsi_walkthrough.batch_inference``) encodes
rows with :func:`features` from this file, so training and serving cannot encode differently.

Standard library only, Python 3.9 syntax: the 1.2-1 container runs Python 3.9.
"""

import csv
import io
import json
import math
import os

MODEL_FILE = "model.json"
MODEL_FORMAT = "fsi-walkthrough/linear-regression/1"
CSV_TYPE = "text/csv"
ANY_TYPE = "*/*"


def model_fn(model_dir):
    """The model in ``model_dir`` (the container extracts ``model.tar.gz`` to /opt/ml/model)."""
    with open(os.path.join(model_dir, MODEL_FILE), encoding="utf-8") as handle:
        model = json.load(handle)
    check_model(model)
    return model


def check_model(model):
    """Refuse a model this script cannot evaluate (another format, or inconsistent numbers)."""
    if model.get("format") != MODEL_FORMAT:
        raise ValueError(f"model.json has format {model.get('format')!r}, this entry point reads {MODEL_FORMAT!r}")
    if len(model["coefficients"]) != len(model["features"]):
        raise ValueError(f"model.json has {len(model['coefficients'])} coefficients for "
                         f"{len(model['features'])} features")
    encoded = set()
    for column in model["input_columns"]:
        encoded.update(model["categories"].get(column, {column: column}).values())
    missing = [name for name in model["features"] if name not in encoded]
    if missing:
        raise ValueError(f"model.json uses features no input column provides: {', '.join(missing)}")


def _media_type(value):
    return (value or "").split(";")[0].strip().lower()


def input_fn(request_body, content_type):
    """The CSV rows of the request (blank lines skipped)."""
    if _media_type(content_type) != CSV_TYPE:
        raise ValueError(f"this model reads {CSV_TYPE}, not {content_type!r}")
    if isinstance(request_body, (bytes, bytearray)):
        request_body = request_body.decode("utf-8")
    return [row for row in csv.reader(io.StringIO(request_body)) if any(cell.strip() for cell in row)]


def features(row, model):
    """The model's feature vector of one input row (a list of strings)."""
    columns = model["input_columns"]
    if len(row) != len(columns):
        raise ValueError(f"expected {len(columns)} values ({','.join(columns)}) per line, without header or "
                         f"label, got {len(row)}: {','.join(row)[:200]}")
    values = {}
    for column, cell in zip(columns, row):  # noqa: B905 - Python 3.9 has no zip(strict=); lengths checked above
        text = cell.strip()
        categories = model["categories"].get(column)
        if categories is not None:
            key = text.lower()
            if key not in categories:
                raise ValueError(f"{column} {text!r} is none of {', '.join(sorted(categories))}")
            for category, feature in categories.items():
                values[feature] = 1.0 if category == key else 0.0
            continue
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{column} {text!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{column} {text!r} is not a finite number")
        values[column] = number
    return [values[name] for name in model["features"]]


def predict_fn(rows, model):
    """One prediction per row: intercept + coefficients . features."""
    intercept, coefficients = model["intercept"], model["coefficients"]
    # check_model made both lists equally long (Python 3.9 has no zip(strict=))
    return [intercept + sum(c * x for c, x in zip(coefficients, features(row, model))) for row in rows]  # noqa: B905


def output_fn(predictions, accept):
    """``text/csv``: one prediction per line, no trailing newline (``AssembleWith=Line`` adds one)."""
    if _media_type(accept) not in ("", ANY_TYPE, CSV_TYPE):
        raise ValueError(f"this model answers {CSV_TYPE}, not {accept!r}")
    return "\n".join(f"{value:.4f}" for value in predictions), CSV_TYPE
