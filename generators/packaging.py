"""Deterministic zip archives: same files in, byte-identical archive out."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
    import zipfile  # here, not at the top: a build packs in a child process, and the parent never needs it

    destination.parent.mkdir(parents=True, exist_ok=True)
    with replaced_on_success(destination) as partial, \
            zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=FIXED_DATE_TIME)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the build host is
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return destination


@contextmanager
def replaced_on_success(destination: Path) -> Iterator[Path]:
    """A ``.partial`` path beside ``destination`` to write; it becomes ``destination`` when the block ends
    normally and is removed when it raises, so a reader never sees a half-written file."""
    partial = destination.with_name(destination.name + ".partial")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(destination)


class Archives:
    """The zips of ``sources`` (archive file name -> folder) being written into ``out_dir``.

    Where the platform can fork and this process runs a single thread (``python -m generators build``), a child
    process writes them while the caller renders the templates: the two overlap on a second core. Elsewhere
    (no ``os.fork``, or other threads that a fork could catch holding a lock, as under a test runner) they are
    written here and now. Either way :meth:`wait` returns archive file name -> file once every zip is in place,
    or raises what packing raised (``OSError``/``ValueError``, same message); a failed zip leaves no file.
    """

    def __init__(self, sources: dict[str, Path], out_dir: Path, *, fork: bool | None = None) -> None:
        self._paths = {name: out_dir / name for name in sources}
        self._pid = 0
        self._reader = -1
        if fork is None:
            fork = hasattr(os, "fork") and threading.active_count() == 1
        if fork:
            self._fork(sources)
        else:
            _write_all(sources, self._paths)

    @property
    def in_child(self) -> bool:
        """Whether a child process is writing them (until :meth:`wait` returns)."""
        return self._pid != 0

    def _fork(self, sources: dict[str, Path]) -> None:
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: write the zips, report a failure on the pipe, never return into the caller
            status = 0
            try:
                os.close(reader)
                _write_all(sources, self._paths)
            except BaseException as error:  # noqa: BLE001 (reported to the parent, which raises it)
                kind = "value" if isinstance(error, ValueError) else "os" if isinstance(error, OSError) else "other"
                os.write(writer, f"{kind}:{error}".encode())
                status = 1
            finally:
                os._exit(status)
        os.close(writer)
        self._pid, self._reader = pid, reader

    def wait(self) -> dict[str, Path]:
        if self._pid:
            pid, self._pid = self._pid, 0
            with os.fdopen(self._reader, "rb") as pipe:
                report = pipe.read().decode(errors="replace")
            _, status = os.waitpid(pid, 0)
            if report or status:
                kind, _, message = report.partition(":")
                message = message or f"the process packing the zips ended with status {status}"
                raise ValueError(message) if kind == "value" else OSError(message)
        return dict(self._paths)


def _write_all(sources: dict[str, Path], paths: dict[str, Path]) -> None:
    for name, source in sources.items():
        deterministic_zip(source, paths[name])
