"""Stand-ins shared by the operations commands' tests (tests/test_ops_*.py); this module holds no test.

* S3, SQS, IAM and the Lambda function's configuration are moto 5.2.5 (``mock_aws``), in process. moto runs a
  function's code only in Docker, so :class:`LambdaRunningHandler` answers ``Invoke`` itself: it checks the request
  against botocore's Lambda model and runs the real ``lambda_functions/start_ingestion_pipeline/app.py`` handler,
  answering as the Invoke API does (AWS Lambda API Reference, "Invoke": ``StatusCode`` 200, ``FunctionError`` and the
  runtime's error document ``errorMessage``/``errorType``/``stackTrace`` when the handler raised).
* :class:`SageMakerFake` serves StartPipelineExecution and DescribePipeline, checking each request against
  botocore's SageMaker model (types, lengths and patterns). A repeated ``ClientRequestToken`` starts nothing
  ("An idempotent operation completes no more than once", SageMaker API Reference, StartPipelineExecution): by
  default it answers with the first execution; ``repeat_answer="conflict"`` answers with the ConflictException the
  start function's own tests assume instead. Both lead to no second execution.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3
import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from lambda_support import assert_valid_request, load_app

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
PROJECT = "Churn-Features1"
PROJECT_ID = "p-abcdefghijkl"
FUNCTION = "sagemaker-Churn-Features1-start-ingest"  # ProjectNames.lambda_function, as the project stack names it
QUEUE = "sagemaker-Churn-Features1-ingestion-dlq"  # ProjectNames.dead_letter_queue
PIPELINE = "sagemaker-p-abcdefghijkl-fs-ingestion"
DATA_BUCKET = "amzn-s3-demo-bucket"  # the bucket of every event fixture in tests/events
DATA_PREFIX = "incoming/"
ARTIFACT_BUCKET = f"sagemaker-{PROJECT_ID}-artifacts-{ACCOUNT}"

_MODELS: dict[str, Any] = {}


def model(service: str) -> Any:
    if service not in _MODELS:
        _MODELS[service] = botocore.session.get_session().get_service_model(service)
    return _MODELS[service]


def function_environment(**changes: str) -> dict[str, str]:
    """The start function's environment as the project stack sets it (generators/blocks/upload_trigger.py)."""
    env = {
        "PIPELINE_NAME": PIPELINE,
        "DATA_BUCKET": DATA_BUCKET,
        "DATA_PREFIX": DATA_PREFIX,
        "DATA_SUFFIX": "",
        "MANIFEST_BUCKET": ARTIFACT_BUCKET,
        "MANIFEST_PREFIX": "input-manifests/",
    }
    env.update(changes)
    return {name: value for name, value in env.items() if value is not None}


def create_start_function(env: dict[str, str], timeout: int = 30) -> None:
    """The project's start function in moto (call inside ``mock_aws``)."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sagemaker-fsi-p-abcdefghijkl-start-ingestion",
                           AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role["Role"]["Arn"], Handler="app.lambda_handler",
        Code={"ZipFile": code.getvalue()}, Timeout=timeout, Environment={"Variables": env},
    )


class SageMakerFake:
    """StartPipelineExecution (idempotent on the token) and DescribePipeline of one pipeline."""

    def __init__(self, parameters: tuple[str, ...] = ("InputDataUrl", "InputManifestUrl", "FeatureGroupName",
                                                       "ProcessingInstanceType", "ProcessingInstanceCount"),
                 repeat_answer: str = "first-execution", exists: bool = True) -> None:
        self.parameters = parameters
        self.repeat_answer = repeat_answer
        self.exists = exists
        self.requests: list[dict[str, Any]] = []
        self.executions: dict[str, str] = {}  # token -> execution ARN
        self.failure: tuple[str, str] | None = None  # (code, message) of the next starts

    def _check(self, operation: str, params: dict[str, Any]) -> None:
        validate_parameters(params, model("sagemaker").operation_model(operation).input_shape)
        assert_valid_request(params, operation)

    def _error(self, code: str, message: str, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                           operation)

    def describe_pipeline(self, **params: Any) -> dict[str, Any]:
        self._check("DescribePipeline", params)
        if not self.exists:
            raise self._error("ResourceNotFound", f"Pipeline {params['PipelineName']} does not exist",
                              "DescribePipeline")
        definition = {"Version": "2020-12-01", "Parameters": [{"Name": name, "Type": "String"}
                                                              for name in self.parameters], "Steps": []}
        return {"PipelineName": params["PipelineName"], "PipelineDefinition": json.dumps(definition)}

    def start_pipeline_execution(self, **params: Any) -> dict[str, Any]:
        self._check("StartPipelineExecution", params)
        self.requests.append(params)
        if self.failure:
            raise self._error(*self.failure, "StartPipelineExecution")
        if not self.exists:
            raise self._error("ResourceNotFound", f"Pipeline {params['PipelineName']} does not exist",
                              "StartPipelineExecution")
        token = params["ClientRequestToken"]
        if token in self.executions:
            if self.repeat_answer == "conflict":
                raise self._error("ConflictException", "The ClientRequestToken has already been used for a "
                                  "different pipeline execution.", "StartPipelineExecution")
            return {"PipelineExecutionArn": self.executions[token]}
        arn = (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{params['PipelineName']}/execution/"
               f"exec{len(self.executions) + 1:08d}")
        self.executions[token] = arn
        return {"PipelineExecutionArn": arn}


class LambdaRunningHandler:
    """moto's Lambda client for everything but Invoke, which runs the real start function in process."""

    def __init__(self, moto_client: Any, sagemaker: SageMakerFake, monkeypatch: Any, env: dict[str, str]) -> None:
        self.moto = moto_client
        self.meta = moto_client.meta
        self.payloads: list[bytes] = []
        self.app = load_app()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(self.app, "_sagemaker_client", lambda: sagemaker)

    def get_function_configuration(self, **params: Any) -> dict[str, Any]:
        return dict(self.moto.get_function_configuration(**params))

    def invoke(self, **params: Any) -> dict[str, Any]:
        validate_parameters(params, model("lambda").operation_model("Invoke").input_shape)
        assert params["FunctionName"] == FUNCTION and params["InvocationType"] == "RequestResponse"
        self.payloads.append(params["Payload"])
        try:
            result = self.app.lambda_handler(json.loads(params["Payload"]), None)
        except Exception as error:  # the runtime turns an exception into Invoke's error document
            document = {"errorMessage": str(error), "errorType": type(error).__name__, "requestId": "test",
                        "stackTrace": []}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST",
                    "Payload": io.BytesIO(json.dumps(document).encode())}
        return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": io.BytesIO(json.dumps(result).encode())}
