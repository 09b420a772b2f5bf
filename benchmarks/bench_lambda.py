"""Cold-start and per-event cost of the start-ingestion Lambda. Run on demand (not a test):

    .venv/bin/python benchmarks/bench_lambda.py [--repeat 9] [--events 2000]

(a) Import time, each sample in a fresh interpreter (``python -I -B``: no user site, no bytecode
    written, so app.py is compiled every time, as in the Lambda package, which ships no .pyc):
    ``import boto3`` against ``import app`` (the handler module, which imports boto3), and the
    first client creation on top. Median of --repeat runs, cases interleaved.
(b) Handler time per event, in-process and warm: a real boto3 SageMaker client behind botocore's
    Stubber (request validation and serialisation included, no network), and a no-op client (the
    handler's own work). Log records go through a JSON formatter into /dev/null, as the function's
    JSON LoggingConfig would format them.

Nothing here reaches AWS: fake credentials, AWS_EC2_METADATA_DISABLED, stubbed clients.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from botocore.stub import Stubber

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = REPO_ROOT / "lambda_functions" / "start_ingestion_pipeline"
EVENTS_DIR = REPO_ROOT / "tests" / "events"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
LAMBDA_ENV = {
    "PIPELINE_NAME": "sagemaker-demo-p-abc123def456-ingestion",
    "DATA_BUCKET": "amzn-s3-demo-bucket",
    "DATA_PREFIX": "incoming/",
    "DATA_SUFFIX": ".csv",
}
EXECUTION_ARN = (
    "arn:aws:sagemaker:eu-west-1:111122223333:pipeline/sagemaker-demo-p-abc123def456-ingestion/"
    "execution/abcdef123456"
)

_TIMED = """
import sys, time
sys.path.insert(0, {app_dir!r})
start = time.perf_counter()
{body}
print(time.perf_counter() - start)
"""
IMPORT_CASES = {
    "import boto3": "import boto3",
    "import app": "import app",
    "import app + first client": "import app\napp._sagemaker_client()",
}


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    return {**env, **FAKE_AWS, **LAMBDA_ENV}


def time_imports(repeat: int) -> dict[str, list[float]]:
    env = _environment()
    samples: dict[str, list[float]] = {name: [] for name in IMPORT_CASES}
    for _ in range(repeat):
        for name, body in IMPORT_CASES.items():  # interleaved, so drift hits every case alike
            code = _TIMED.format(app_dir=str(APP_DIR), body=body)
            output = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
                [sys.executable, "-I", "-B", "-c", code], env=env, check=True, capture_output=True, text=True
            ).stdout
            samples[name].append(float(output.strip().splitlines()[-1]))
    return samples


class _JsonFormatter(logging.Formatter):
    """Roughly what the Lambda runtime's JSON log format does: message plus ``extra`` fields."""

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in self._standard}
        return json.dumps({"timestamp": record.created, "level": record.levelname,
                           "message": record.getMessage(), "logger": record.name, **fields}, default=str)


def _load_app():
    spec = importlib.util.spec_from_file_location("bench_start_ingestion_app", APP_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class _NoOpClient:
    def start_pipeline_execution(self, **_):
        return {"PipelineExecutionArn": EXECUTION_ARN}


def time_events(count: int, rounds: int = 5) -> dict[str, dict[str, float]]:
    os.environ.update(FAKE_AWS)
    os.environ.update(LAMBDA_ENV)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER"):
        os.environ.pop(name, None)
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole run
    handler = logging.StreamHandler(sink)
    handler.setFormatter(_JsonFormatter())
    logger = logging.getLogger("start_ingestion_pipeline")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    app = _load_app()
    import boto3

    events = {
        "CloudTrail PutObject (started)": json.loads((EVENTS_DIR / "cloudtrail-putobject.json").read_text()),
        "S3 Object Created (started)": json.loads((EVENTS_DIR / "s3-object-created.json").read_text()),
        "other bucket (ignored)": _other_bucket(json.loads((EVENTS_DIR / "s3-object-created.json").read_text())),
        "malformed (ignored)": {"detail-type": "Object Created", "source": "aws.s3", "detail": []},
    }
    results: dict[str, dict[str, float]] = {}
    for label, event in events.items():
        starts = "(started)" in label
        per_client: dict[str, float] = {}
        for client_kind in ("stubbed botocore client", "no-op client"):
            medians = []
            for _ in range(rounds):
                if client_kind == "no-op client":
                    client = _NoOpClient()
                else:
                    client = boto3.client("sagemaker", region_name="eu-west-1")
                    stubber = Stubber(client)
                    for _ in range(count if starts else 0):
                        stubber.add_response("start_pipeline_execution", {"PipelineExecutionArn": EXECUTION_ARN})
                    stubber.activate()
                app._sagemaker_client = lambda client=client: client
                batch = [copy.deepcopy(event) for _ in range(count)]
                begin = time.perf_counter_ns()
                for item in batch:
                    app.lambda_handler(item, None)
                medians.append((time.perf_counter_ns() - begin) / count / 1000)
            per_client[client_kind] = statistics.median(medians)
        results[label] = per_client
    return results


def _other_bucket(event: dict) -> dict:
    event["detail"]["bucket"]["name"] = "amzn-s3-demo-bucket-other"
    return event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9, help="fresh interpreters per import case (median)")
    parser.add_argument("--events", type=int, default=2000, help="handler calls per timing round")
    args = parser.parse_args(argv)

    imports = time_imports(args.repeat)
    boto3_median = statistics.median(imports["import boto3"])
    print(f"(a) cold import, median of {args.repeat} fresh interpreters  [{sys.version.split()[0]}]")
    print(f"    {'case':<28}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'x boto3':>9}")
    for name, values in imports.items():
        median = statistics.median(values)
        print(f"    {name:<28}{median * 1e3:>11.1f}{min(values) * 1e3:>9.1f}{max(values) * 1e3:>9.1f}"
              f"{median / boto3_median:>9.2f}")

    events = time_events(args.events)
    print(f"\n(b) handler time per event, warm, median of 5 rounds x {args.events} events")
    print(f"    {'event':<34}{'stubbed boto3 µs':>18}{'no-op client µs':>17}")
    for label, values in events.items():
        print(f"    {label:<34}{values['stubbed botocore client']:>18.1f}{values['no-op client']:>17.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
