"""Deterministic zip archives: same files in, byte-identical archive out."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

# 1980-01-01 is the earliest timestamp a zip entry can hold.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".ipynb_checkpoints", ".venv"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
EXCLUDED_NAMES = {".DS_Store"}


def _included_files(source: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS)
        for name in names:
            path = Path(root, name)
            if name in EXCLUDED_NAMES or path.suffix in EXCLUDED_SUFFIXES or path.is_symlink():
                continue
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(source).as_posix())


def deterministic_zip(source: Path, destination: Path) -> Path:
    """Zip every file under ``source`` (sorted, fixed timestamps and modes) into ``destination``.

    Executable files keep 0755, everything else is 0644, so the archive does not depend on the umask
    of the machine that built it.
    """
    if not source.is_dir():
        raise FileNotFoundError(f"cannot package {source}: not a directory")
    files = _included_files(source)
    if not files:
        raise ValueError(f"cannot package {source}: no files to include")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=FIXED_DATE_TIME)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the build host is
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(destination)
    return destination
