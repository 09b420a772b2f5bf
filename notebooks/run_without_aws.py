#!/usr/bin/env python3
"""Run the four walkthrough notebooks against a local moto server: no AWS account, no internet.

    .tox/tests/bin/python notebooks/run_without_aws.py [--out DIR] [--abalone FILE_OR_URL]

The notebooks run under papermill in kernels of this interpreter, with boto3 pointed at a moto server started
here (``AWS_ENDPOINT_URL``, fake credentials) and ``SKIP_AWS_ONLY_STEPS = True``: the steps moto cannot serve
(creating the project, the real pipeline run, the Feature Store runtime, Athena, ...) print
``skipped: needs AWS: <step>``. The executed notebooks, their state files and data land in ``--out``
(default: a new temporary folder); nothing is written into the checkout. Needs the tests environment
(``tox -e tests`` creates ``.tox/tests``): moto[server], papermill and ipykernel.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parent
REPO = NOTEBOOKS_DIR.parent
SAMPLE = NOTEBOOKS_DIR / "sample-data" / "abalone-sample.data"
# moto's fixes for its feature-group gaps (missing group answers ResourceNotFound, as AWS does)
MOTO_FIXES = REPO / "seed-code" / "s3-fs-ingestion" / "tests" / "moto_feature_groups.py"
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
NOTEBOOKS = ("00-setup", "01-feature-store-ingest-pipeline", "02-batch-inference", "99-clean-up")
SKIPPED = re.compile(r"^skipped: needs AWS: (.+)$", re.MULTILINE)


def parameters(name: str, out: Path, abalone: str) -> dict[str, object]:
    common: dict[str, object] = {"SKIP_AWS_ONLY_STEPS": True, "STATE_FILE": str(out / "walkthrough-state.json")}
    if name != "00-setup" and name != "01-feature-store-ingest-pipeline":
        common["BATCH_STATE_FILE"] = str(out / "batch-inference-state.json")
    if name == "00-setup":
        return {**common, "REGION": REGION, "ABALONE_SOURCE": abalone, "WORK_DIR": str(out / "data"),
                "EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/service-role/StudioExecutionRole"}
    if name in ("01-feature-store-ingest-pipeline", "02-batch-inference"):
        return {**common, "WORK_DIR": str(out / "data"), "SAMPLE_ROWS": 5}
    return {**common, "CONFIRM_DELETE": True}  # 99-clean-up: everything it deletes lives in this moto server


def skipped_steps(executed: Path) -> list[str]:
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.get("outputs", []) if output.get("output_type") == "stream")
    return SKIPPED.findall(printed)


def isolate(out: Path, url: str) -> None:
    """Fake credentials for the moto server; kernels of this interpreter, not the developer's kernelspecs."""
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        os.environ.pop(variable, None)
    os.environ.update({
        "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": str(out / "no-credentials"), "AWS_CONFIG_FILE": str(out / "no-config"),
        "JUPYTER_PREFER_ENV_PATH": "1", "JUPYTER_DATA_DIR": str(out / ".jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(out / ".jupyter-config"), "IPYTHONDIR": str(out / ".ipython"),
    })
    os.environ.pop("JUPYTER_PATH", None)


def load_moto_fixes() -> object:
    spec = importlib.util.spec_from_file_location("moto_feature_groups", MOTO_FIXES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(out: Path, abalone: str) -> int:
    import papermill
    import pytest  # MonkeyPatch, to apply the seed code's moto fixes for the duration of the run
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    isolate(out, f"http://{host}:{port}")
    try:
        with pytest.MonkeyPatch.context() as patch:
            load_moto_fixes().patch(patch)  # type: ignore[attr-defined]
            for name in NOTEBOOKS:
                executed = out / f"{name}.ipynb"
                print(f"running {name} -> {executed}", flush=True)
                try:
                    papermill.execute_notebook(
                        str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(executed), parameters=parameters(name, out, abalone),
                        kernel_name="python3", cwd=str(NOTEBOOKS_DIR), progress_bar=False, execution_timeout=300,
                    )
                except papermill.PapermillExecutionError as error:
                    print(f"error: {name} stopped: {error.ename}: {error.evalue}", file=sys.stderr)
                    return 1
                for step in skipped_steps(executed):
                    print(f"  skipped (needs AWS): {step}")
    finally:
        server.stop()
    print(f"all {len(NOTEBOOKS)} notebooks ran against moto; executed copies in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for the executed notebooks and their files (default: a new temp folder)")
    parser.add_argument("--abalone", default=str(SAMPLE),
                        help="the Abalone data (abalone.data or the UCI zip, path or URL; default: the bundled "
                        "200-line sample)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="notebooks-without-aws-"))
    out.mkdir(parents=True, exist_ok=True)
    return run(out.resolve(), args.abalone)


if __name__ == "__main__":
    sys.exit(main())
