"""The UCI Abalone data set: download at run time, check, and write as CSV with a header.

Source: https://archive.ics.uci.edu/dataset/1/abalone (licence CC BY 4.0).
Nash, W., Sellers, T., Talbot, S., Cawthorn, A. and Ford, W. (1994). Abalone [Dataset].
UCI Machine Learning Repository. https://doi.org/10.24432/C55C7W -- and
Dua, D. and Graff, C. (2019). UCI Machine Learning Repository. Irvine, CA: University of California,
School of Information and Computer Science.

The data is downloaded when the notebook runs, never committed. ``source`` may also be a local path
or ``file://`` URL (a mirror, or a fixture in tests).
"""

from __future__ import annotations

import io
import logging
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from .aws import WalkthroughError

LOG = logging.getLogger("fsi_walkthrough")

ABALONE_PAGE = "https://archive.ics.uci.edu/dataset/1/abalone"
ABALONE_URL = "https://archive.ics.uci.edu/static/public/1/abalone.zip"
DATA_FILE = "abalone.data"
COLUMNS = [
    "sex",
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
    "rings",
]
SEXES = {"M", "F", "I"}
RECORD_ID = "record_id"
DOWNLOAD_TIMEOUT = 60  # seconds


def download_abalone(source: str, dest_dir: str | Path) -> Path:
    """Fetch ``abalone.data`` from ``source`` (the UCI zip or the raw file, by URL or local path)."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    payload = _read(source)
    target = dest_dir / DATA_FILE
    if zipfile.is_zipfile(io.BytesIO(payload)):
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = [n for n in archive.namelist() if Path(n).name == DATA_FILE]
            if not members:
                raise WalkthroughError(f"{source} is a zip without {DATA_FILE}: is it the UCI Abalone archive?")
            for name in archive.namelist():  # keep the description (abalone.names) next to the data
                if Path(name).name in (DATA_FILE, "abalone.names"):
                    (dest_dir / Path(name).name).write_bytes(archive.read(name))
    else:
        target.write_bytes(payload)
    LOG.info("downloaded %s (%d bytes) from %s", target, target.stat().st_size, source)
    return target


def _read(source: str) -> bytes:
    scheme = urlparse(source).scheme
    if scheme in ("https", "http", "file"):
        # The scheme is checked above: no ftp:// or custom handlers.
        with urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT) as response:  # noqa: S310
            return response.read()
    path = Path(source)
    if not path.is_file():
        raise WalkthroughError(f"cannot read the data set from {source!r}: not an http(s)/file URL nor a file")
    return path.read_bytes()


def load_abalone(path: str | Path) -> pd.DataFrame:
    """The raw file (no header) as a frame with named columns and a stable ``record_id``.

    ``record_id`` is the animal's line number in the published file ("abalone-0001"): the same animal
    keeps its id in every file it is uploaded in, so a re-upload updates records instead of adding any.
    """
    frame = pd.read_csv(path, header=None, names=COLUMNS)
    problems = []
    if frame.empty:
        problems.append("no rows")
    unknown = sorted(set(frame["sex"].astype(str)) - SEXES)
    if unknown:
        problems.append(f"unknown sex values {unknown}")
    numeric = frame[COLUMNS[1:]].apply(pd.to_numeric, errors="coerce")
    if numeric.isna().any().any():
        problems.append("non-numeric or missing measurements")
    if problems:
        raise WalkthroughError(f"{path} does not look like the UCI Abalone data: {', '.join(problems)}")
    frame[COLUMNS[1:]] = numeric
    frame["rings"] = frame["rings"].astype("int64")
    width = max(4, len(str(len(frame))))
    frame.insert(0, RECORD_ID, [f"abalone-{i:0{width}d}" for i in range(1, len(frame) + 1)])
    return frame


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """CSV with a header row (the processing job maps columns to features by name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    LOG.info("wrote %s: %d rows, columns %s", path, len(frame), ", ".join(frame.columns))
    return path


def sample(frame: pd.DataFrame, rows: int, seed: int = 7) -> pd.DataFrame:
    """``rows`` random rows in file order (all rows when ``rows`` is 0 or more than there are)."""
    if rows <= 0 or rows >= len(frame):
        return frame.copy()
    return frame.sample(n=rows, random_state=seed).sort_index()

