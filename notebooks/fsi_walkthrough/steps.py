"""What the notebooks did and what they left out, and the state they hand to each other.

Each notebook runs its steps through :class:`Steps`. A step marked ``aws_only`` needs a service a local
stand-in cannot provide (Service Catalog provisioning, CreateProject, a real pipeline run, the Feature
Store runtime, Athena results); with ``skip_aws_only=True`` it is not run and reported as
``skipped: needs AWS``, so a test run against moto says exactly what it did not exercise.

The notebooks share a small JSON state file (:class:`State`) instead of IPython's ``%store``: it names
every resource the walkthrough created, so the clean-up notebook deletes exactly those.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import NoCredentialsError, PartialCredentialsError

from .aws import NO_CREDENTIALS, WalkthroughError

LOG = logging.getLogger("fsi_walkthrough")
SKIPPED = "skipped: needs AWS"
T = TypeVar("T")


def show_progress(level: int = logging.INFO) -> None:
    """Send the walkthrough's log lines to the notebook's output (once, however often it is called)."""
    if not any(getattr(handler, "_fsi_walkthrough", False) for handler in LOG.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._fsi_walkthrough = True  # type: ignore[attr-defined]
        LOG.addHandler(handler)
    LOG.setLevel(level)
    LOG.propagate = False


class Steps:
    """Runs and records the steps of one notebook."""

    def __init__(self, notebook: str, *, skip_aws_only: bool = False) -> None:
        self.notebook = notebook
        self.skip_aws_only = skip_aws_only
        self.executed: list[str] = []
        self.skipped: list[str] = []

    def run(self, title: str, func: Callable[..., T], *args: Any, aws_only: bool = False, **kwargs: Any) -> T | None:
        """``func(*args, **kwargs)``, or None when the step needs AWS and AWS-only steps are skipped."""
        if aws_only and self.skip_aws_only:
            LOG.info("%s: %s", SKIPPED, title)
            self.skipped.append(title)
            return None
        LOG.info("-> %s", title)
        try:
            result = func(*args, **kwargs)
        except (NoCredentialsError, PartialCredentialsError) as error:
            # botocore raises these from the first call, deep in a traceback that does not say what to do
            raise WalkthroughError(f"{title}: {NO_CREDENTIALS} ({error})") from None
        self.executed.append(title)
        return result

    def summary(self) -> dict[str, list[str]]:
        return {"executed": list(self.executed), "skipped": list(self.skipped)}

    def report(self) -> dict[str, list[str]]:
        """Log what ran and what was skipped; returns :meth:`summary`."""
        LOG.info("%s: %d step(s) executed", self.notebook, len(self.executed))
        if self.skipped:
            LOG.info("%s: %d step(s) %s: %s", self.notebook, len(self.skipped), SKIPPED, "; ".join(self.skipped))
        return self.summary()


@dataclass
class State:
    """What 00-setup and 01-feature-store-ingest-pipeline created, for the next notebooks."""

    region: str
    account: str
    data_bucket: str
    data_prefix: str
    feature_group_name: str
    offline_store_uri: str
    trigger_mode: str = "S3EventBridge"
    data_suffix: str = ""
    work_prefix: str = ""
    local_csv: str = ""
    # What the walkthrough created (not reused): "data_bucket"; states of earlier versions may also hold
    # "eventbridge_notifications" (00-setup turned them on itself then; today the project's stack does).
    created: dict[str, bool] = field(default_factory=dict)
    project: dict[str, Any] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)  # s3:// URLs of files the walkthrough uploaded

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        LOG.info("state saved to %s", path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> State:
        path = Path(path)
        if not path.is_file():
            raise WalkthroughError(
                f"no walkthrough state at {path}: run 00-setup.ipynb first (with the same STATE_FILE)"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def remember_upload(self, url: str) -> None:
        if url not in self.uploads:
            self.uploads.append(url)
