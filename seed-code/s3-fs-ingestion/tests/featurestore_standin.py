"""A local stand-in for SageMaker Feature Store, for tests and benchmarks only.

moto has no Feature Store runtime, so this small HTTP server bound to 127.0.0.1 speaks the wire
protocols botocore uses:

* ``sagemaker`` (JSON 1.1, ``X-Amz-Target: SageMaker.DescribeFeatureGroup``) for DescribeFeatureGroup;
* ``sagemaker-featurestore-runtime`` (REST-JSON): ``PUT /FeatureGroup/<name>`` (PutRecord) and
  ``POST /BatchWriteRecord``.

Point unchanged boto3 code at it with ``AWS_ENDPOINT_URL_SAGEMAKER`` and
``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME``. Like the real service it validates every record
against the group's definition (unknown features, missing identifier or event time, values that do not
parse as the feature's type). Faults can be injected: whole calls answered with ThrottlingException (the next
ones, or every n-th one), BatchWriteRecord entries answered as errors or left unprocessed; and a fixed latency
per call. It records the entries of every BatchWriteRecord call and, on request, each request as received
(headers and body, to check signatures). With ``keep_records=False`` it keeps only the record identifiers
(millions of records in a benchmark).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
_INTEGRAL = re.compile(r"^-?\d+$")


class ServiceError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class EntryFault:
    """Answer the next ``count`` BatchWriteRecord entries with ``code`` (or as unprocessed)."""

    count: int
    code: str | None  # None: return the entry in UnprocessedEntries


def describe_response(name: str, definition: dict) -> dict:
    """What DescribeFeatureGroup returns for a group created from a feature_group.json definition."""
    return {
        "FeatureGroupArn": f"arn:aws:sagemaker:eu-west-1:123456789012:feature-group/{name.lower()}",
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": definition["RecordIdentifierFeatureName"],
        "EventTimeFeatureName": definition["EventTimeFeatureName"],
        "FeatureDefinitions": definition["FeatureDefinitions"],
        "CreationTime": 1_700_000_000,
        "FeatureGroupStatus": "Created",
        "NextToken": "",
    }


class FeatureStoreStandIn:
    """Start with ``with FeatureStoreStandIn() as store:``; ``store.url`` is the endpoint."""

    def __init__(self, *, latency: float = 0.0, keep_records: bool = True, record_requests: bool = False) -> None:
        self.latency = latency
        self.keep_records = keep_records
        self.record_requests = record_requests
        self.groups: dict[str, dict] = {}
        self.written: list[tuple[str, dict[str, str]]] = []  # every accepted record, in arrival order
        self.written_count = 0
        self.ids: dict[str, set[str]] = {}  # record identifiers per group (keep_records=False)
        self.calls: Counter[str] = Counter()
        self.batch_sizes: list[int] = []  # entries of every BatchWriteRecord call, in arrival order
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []  # (method, path, headers, body)
        self.throttled = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._throttle_calls = 0
        self._throttle_every = 0
        self._write_calls = 0
        self._entry_faults: list[EntryFault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------------

    def add_group(self, name: str, definition: dict) -> None:
        self.groups[name] = describe_response(name, definition)

    def throttle_next_calls(self, count: int) -> None:
        """The next ``count`` write calls fail as a whole with HTTP 400 ThrottlingException."""
        with self._lock:
            self._throttle_calls += count

    def throttle_every(self, period: int) -> None:
        """From now on every ``period``-th write call fails as a whole with ThrottlingException (0: none)."""
        with self._lock:
            self._throttle_every, self._write_calls = period, 0

    def fail_next_entries(self, count: int, code: str | None) -> None:
        """The next ``count`` BatchWriteRecord entries get ``code`` in Errors (None: unprocessed)."""
        with self._lock:
            self._entry_faults.append(EntryFault(count, code))

    # -- what was received -------------------------------------------------------------------------

    def latest(self, group: str) -> dict[str, dict[str, str]]:
        """The records of a group by record identifier, as the online store would hold them."""
        identifier = self.groups[group]["RecordIdentifierFeatureName"]
        with self._lock:
            return {record[identifier]: record for name, record in self.written if name == group}

    def unique_ids(self, group: str) -> int:
        """How many distinct records the group holds."""
        if self.keep_records:
            return len(self.latest(group))
        with self._lock:
            return len(self.ids.get(group, ()))

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FeatureStoreStandIn:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="featurestore-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FeatureStoreStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the operations ----------------------------------------------------------------------------

    def describe_feature_group(self, body: dict) -> dict:
        name = body.get("FeatureGroupName", "")
        if name not in self.groups:
            raise ServiceError("ResourceNotFound", f"Resource Not Found: FeatureGroup {name} not found")
        return self.groups[name]

    def put_record(self, name: str, body: dict) -> dict:
        self._maybe_throttle()
        self._accept(name, body.get("Record") or [])
        return {}

    def batch_write_record(self, body: dict) -> dict:
        self._maybe_throttle()
        entries = body.get("Entries") or []
        if not 1 <= len(entries) <= 25:
            raise ServiceError("ValidationError", f"Entries must hold 1 to 25 entries, not {len(entries)}")
        with self._lock:
            self.batch_sizes.append(len(entries))
        errors, unprocessed = [], []
        for entry in entries:
            fault = self._take_entry_fault()
            if fault is not None:
                if fault.code is None:
                    unprocessed.append(entry)
                else:
                    errors.append({"Entry": entry, "ErrorCode": fault.code, "ErrorMessage": "injected"})
                continue
            try:
                self._accept(entry.get("FeatureGroupName", ""), entry.get("Record") or [])
            except ServiceError as error:
                errors.append({"Entry": entry, "ErrorCode": error.code, "ErrorMessage": error.message})
        return {"Errors": errors, "UnprocessedEntries": unprocessed}

    def _maybe_throttle(self) -> None:
        with self._lock:
            self._write_calls += 1
            periodic = self._throttle_every and self._write_calls % self._throttle_every == 0
            if self._throttle_calls > 0 or periodic:
                if not periodic:
                    self._throttle_calls -= 1
                self.throttled += 1
                raise ServiceError("ThrottlingException", "Rate exceeded")

    def _take_entry_fault(self) -> EntryFault | None:
        with self._lock:
            while self._entry_faults and self._entry_faults[0].count <= 0:
                self._entry_faults.pop(0)
            if not self._entry_faults:
                return None
            self._entry_faults[0].count -= 1
            return self._entry_faults[0]

    def _accept(self, name: str, record: list[dict]) -> None:
        group = self.groups.get(name)
        if group is None:
            raise ServiceError("ResourceNotFound", f"FeatureGroup {name} not found", 404)
        types = {f["FeatureName"]: f["FeatureType"] for f in group["FeatureDefinitions"]}
        values: dict[str, str] = {}
        for item in record:
            feature, value = item.get("FeatureName"), item.get("ValueAsString")
            if feature not in types:
                raise ServiceError("ValidationError", f"Feature {feature} is not defined in {name}")
            if feature in values:
                raise ServiceError("ValidationError", f"Feature {feature} appears twice")
            if not isinstance(value, str) or not _valid(value, types[feature]):
                raise ServiceError("ValidationError", f"Value {value!r} is not a valid {types[feature]}")
            values[feature] = value
        for required in (group["RecordIdentifierFeatureName"], group["EventTimeFeatureName"]):
            if required not in values:
                raise ServiceError("ValidationError", f"Record is missing {required}")
        event_time = values[group["EventTimeFeatureName"]]
        if types[group["EventTimeFeatureName"]] == "String" and not _ISO.match(event_time):
            raise ServiceError("ValidationError", f"EventTime {event_time!r} is not ISO-8601")
        with self._lock:
            self.written_count += 1
            if self.keep_records:
                self.written.append((name, values))
            else:
                self.ids.setdefault(name, set()).add(values[group["RecordIdentifierFeatureName"]])


def _valid(value: str, feature_type: str) -> bool:
    if feature_type == "Integral":
        return bool(_INTEGRAL.match(value)) and -(2**63) <= int(value) < 2**63
    if feature_type == "Fractional":
        try:
            return float(value) not in (float("inf"), float("-inf")) and value.lower() != "nan"
        except ValueError:
            return False
    return True


def _handler(store: FeatureStoreStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
        disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stalls

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            pass

        def do_POST(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            body = json.loads(raw or b"{}")
            target = self.headers.get("X-Amz-Target", "")
            json11 = bool(target)
            with store._lock:
                store.in_flight += 1
                store.max_in_flight = max(store.max_in_flight, store.in_flight)
                if store.record_requests:
                    store.requests.append((self.command, self.path, dict(self.headers.items()), raw))
            try:
                self._answer(body, target, json11)
            finally:
                with store._lock:
                    store.in_flight -= 1

        def _answer(self, body: dict, target: str, json11: bool) -> None:
            if store.latency:
                time.sleep(store.latency)
            try:
                if target == "SageMaker.DescribeFeatureGroup":
                    store.calls["DescribeFeatureGroup"] += 1
                    result = store.describe_feature_group(body)
                elif target:
                    raise ServiceError("UnknownOperationException", f"{target} is not served here")
                elif self.command == "POST" and self.path.rstrip("/") == "/BatchWriteRecord":
                    store.calls["BatchWriteRecord"] += 1
                    result = store.batch_write_record(body)
                elif self.command == "PUT" and self.path.startswith("/FeatureGroup/"):
                    store.calls["PutRecord"] += 1
                    result = store.put_record(unquote(self.path[len("/FeatureGroup/"):]), body)
                else:
                    raise ServiceError("UnknownOperationException", f"{self.command} {self.path}", 404)
            except ServiceError as error:
                payload = {"__type": error.code, "message": error.message} if json11 else {"message": error.message}
                self._send(error.status, payload, {"x-amzn-ErrorType": error.code}, json11)
                return
            self._send(200, result, {}, json11)

        def _send(self, status: int, payload: dict, headers: dict, json11: bool) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1" if json11 else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", "standin")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
