"""The one way Steerscope writes a file (``atomic_write_bytes``), and the guard in front of it.

A write goes to a temporary name in the same folder and is renamed into place, so a killed writer
leaves no half-written file. Before that, ``check_target`` refuses what would lose data: a path
that is not a regular file or absent (a device, a pipe, a socket, a folder, a link), a path
inside a Steerscope run written by anyone but that run's own writer, the file a command reads
(``reading``), and, for a file a user names as an output, one that exists unless replacing it
was asked for (``replace``: the CLI's ``--force``). What a run is, is decided by
the run's own marker (``RUN_FORMAT`` in its settings), not by a file name other programs use.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

SETTINGS_FILE = "settings.json"
DATABASE_FILE = "run.sqlite"
RUN_FORMAT = "steerscope-run/1"  # ``settings.json``'s "format": the marker of a run


class WriteRefused(ValueError):
    """A write that would lose or escape data; the message names the file and why."""


def is_run(directory: str | Path) -> bool:
    """Whether ``directory`` is a Steerscope run: its settings carry ``RUN_FORMAT``, or (a run
    from before the marker) its ``run.sqlite`` holds Steerscope's tables."""
    folder = Path(directory)
    try:
        settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
        if isinstance(settings, dict) and settings.get("format") == RUN_FORMAT:
            return True
    except (OSError, ValueError, RecursionError):
        pass
    database = folder / DATABASE_FILE
    if not database.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return False
    return {"metrics", "generations"} <= tables


def check_target(path: str | Path, run_dir: str | Path | None = None, replace: bool = True,
                 reading: tuple = ()) -> Path:
    """``path``, if writing it loses nothing: absent or a regular file (not a link), not one of
    the files ``reading``, absent unless ``replace``, and inside no run but ``run_dir`` (the run
    whose writer asks); else a ``WriteRefused``."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise WriteRefused(f"{path.name}: cannot write into folder {path.parent}, which is a file") from None
    for source in reading:
        if Path(source).resolve() == path.resolve() or mode is not None and Path(source).exists() \
                and os.path.samefile(source, path):
            raise WriteRefused(f"{path.name} is the file being read: write the output to another path")
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise WriteRefused(f"{path.name} is {kind}: refusing to replace it (give the path of a new or regular file)")
    own = Path(run_dir).resolve() if run_dir is not None else None
    for folder in path.resolve().parents:
        if folder != own and is_run(folder):
            raise WriteRefused(f"{path.name} is inside run {folder.name!r}: a run's files are written only by its "
                               "own stages (give a path outside the run)")
    if mode is not None and not replace:
        raise WriteRefused(f"{path.name} exists: refusing to replace it (give a new path, or --force to replace it)")
    return path


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: setting it later would race with other threads' files


def atomic_write_bytes(path: str | Path, data: bytes, run_dir: str | Path | None = None, replace: bool = True) -> None:
    """Write ``data`` to ``path`` (``check_target`` first) through a temporary file in the same
    folder and a rename; the file gets the mode a plain ``open`` would give it."""
    path = check_target(path, run_dir, replace)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:  # name the folder the user gave, not the temporary file
        raise WriteRefused(f"{path.name}: cannot write into folder {path.parent} ({err.strerror})") from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, value: Any, run_dir: str | Path | None = None) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode(), run_dir)
