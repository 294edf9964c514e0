"""Runs on disk: a directory with settings (JSON), tensors (safetensors with metadata) and tables
(SQLite). Every file is written to a temporary name and renamed into place, so a killed run leaves
no half-written artifact; tensors are never unpickled.

Only the holder of a run's lock (``Run.writing()``, one process or thread at a time) may write to
it: reading a run never writes, and a second writer gets a ``RunLockedError`` instead of mixing
its files with the first's. Which stages are complete is recorded per stage, after the stage's
files, with the inputs they were computed from, so a killed stage is never reported as done.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Iterable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from ..core.files import (DATABASE_FILE, RUN_FORMAT, SETTINGS_FILE, WriteRefused, atomic_write_bytes, atomic_write_json,  # noqa: F401
                    is_run)
from ..core.limits import LIMITS
from .schema import Row

PROMPTS_FILE = "prompts.jsonl"
TENSOR_DIR = "tensors"
MAX_HEADER_BYTES = LIMITS["safetensors_header_bytes"].high  # a 20 MB model name is not read, let alone echoed
MIN_FREE_BYTES = 64 * 2**20  # below this, a stage's tables and tensors may not fit: refused before it starts
# settings.json's top-level fields and the types they must have (a hand-edited file is refused whole).
SETTINGS_SHAPE = {"pipeline": (dict,), "model": (dict,), "prompt_set": (dict,), "model_fingerprint": (str,),
                  "model_ref": (str, type(None)), "format": (str,)}
KIND_WORDS = {dict: "an object", str: "a string", type(None): "null"}


def cache_home() -> Path:
    """Where Steerscope keeps what it can recompute (activations, dequantized GGUF models):
    ``$STEERSCOPE_CACHE``, default ``~/.cache/steerscope``; read at each use, so a setting made
    after import counts, and a value that is not a folder is named in the error."""
    value = os.environ.get("STEERSCOPE_CACHE") or str(Path.home() / ".cache" / "steerscope")
    if os.path.exists(value) and not os.path.isdir(value):
        raise StorageError(f"STEERSCOPE_CACHE is {value!r}, which is not a folder: point it at a folder, or unset it")
    return Path(value)


class StorageError(ValueError):
    """A file that cannot be used as asked; the message says why."""


class RunLockedError(StorageError):
    """Another writer holds the run."""


RUN_NAME = re.compile(r"[A-Za-z0-9_][\w.-]{0,99}")  # no separators, no leading dot (so no "..")


def run_in(root: str | Path, name: str) -> Path:
    """The run directory ``name`` under ``root``, for names that come from users (a link's
    ``?run=``, a form): a StorageError for anything but a plain name, so nothing outside ``root``
    is ever opened, and the message shows the name, not a server path."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        shown = repr(name[:40] + "…") if isinstance(name, str) and len(name) > 40 else repr(name)
        raise StorageError(f"{shown} is not a run name: use up to 100 letters, digits, '.', '_' and '-', "
                           "not starting with '.'")
    path = Path(root) / name
    if path.is_symlink():  # a link in the runs folder would open (or write) a folder anywhere
        raise StorageError(f"{name!r} is a link, not a run folder: the runs folder holds runs only")
    return path


def tensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> bytes:
    """``tensors`` as a safetensors file; ``metadata`` values are stored as JSON strings."""
    meta = {key: json.dumps(value) for key, value in metadata.items()}
    data = {key: t.detach().to("cpu").contiguous() for key, t in tensors.items()}
    return safetensors_bytes(data, metadata=meta)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any], run_dir: Path | None = None,
                 replace: bool = True) -> None:
    atomic_write_bytes(path, tensors_bytes(tensors, metadata), run_dir, replace)


def load_tensors(path: Path, max_bytes: int | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a safetensors file and its metadata, or raise a StorageError saying what is wrong:
    a file over ``max_bytes`` and a header over ``MAX_HEADER_BYTES`` are refused unread."""
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"no tensor file at {path}")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise StorageError(f"{path.name} is {size / 2**20:,.1f} MiB; what it should hold for this model takes at most "
                           f"{max_bytes / 2**20:,.1f} MiB")
    with open(path, "rb") as handle:
        header = int.from_bytes(handle.read(8).ljust(8, b"\0"), "little")
    if MAX_HEADER_BYTES < header <= size - 8:  # a longer claim than the file is safetensors' own error
        raise StorageError(f"{path.name} has a header of {header:,} bytes; Steerscope reads at most {MAX_HEADER_BYTES:,} "
                           "(safetensors_header_bytes)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise StorageError(f"{path.name} is not a valid safetensors file (tampered or truncated): {err}") from None
    try:
        metadata = {key: json.loads(value) for key, value in raw.items()}
    except json.JSONDecodeError:
        raise StorageError(f"{path.name} has metadata that is not Steerscope's (not JSON)") from None
    return tensors, metadata


def record_inputs(record: dict) -> str:
    """The hash of what a run's results come from (its ``settings.json`` record): pipeline
    settings, model weights and prompt set. A stage recorded with other inputs is stale."""
    inputs = {"pipeline": record.get("pipeline"), "model": record.get("model_fingerprint"),
              "prompts": record.get("prompt_set", {}).get("fingerprint")}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


class Run:
    """One pipeline run: ``settings.json``, ``tensors/*.safetensors`` and ``run.sqlite``."""

    def __init__(self, directory: str | Path, create: bool = False):
        """Open the run in ``directory``; with ``create``, a new one (nothing is written until
        the first save, so a run that fails its checks leaves nothing behind)."""
        self.dir = Path(directory)
        self._lock_depth = 0
        self._forget_first: list[str] = []
        if create and self.dir.is_symlink() and not self.dir.is_dir():  # mkdir would say "File exists"
            raise StorageError(f"{self.dir.name!r} is a link to nothing: give a new or empty folder for the run")
        if not create and not is_run(self.dir):
            raise StorageError(f"{self.dir.name!r} is not a Steerscope run (no run marker in its {SETTINGS_FILE}, "
                               f"no {DATABASE_FILE} of Steerscope's)")

    # the writer's lock --------------------------------------------------------------------
    @contextmanager
    def writing(self):
        """Hold the run's lock while writing: a second writer (process or thread) gets a
        ``RunLockedError`` at once; temporary files a killed writer left are removed on taking it."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield self
            finally:
                self._lock_depth -= 1
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        # The lock is on the run's directory itself: no lock file to leave behind, and the kernel
        # releases it when its holder dies (kill -9 included).
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(f"run {self.dir.name!r} is being written by another process or session: wait "
                                 "for it to finish, or start a new run") from None
        self._lock_depth = 1
        try:
            self._check_writable()
            self._remove_stale_temporaries()
            yield self
        finally:
            self._lock_depth, self._forget_first = 0, []
            os.close(fd)  # closing releases the lock

    def _check_writable(self) -> None:
        """Refuse, before any stage spends minutes generating, a run whose files cannot be written
        (a read-only disk or files) or whose disk is nearly full."""
        try:
            fd, probe = tempfile.mkstemp(dir=self.dir, prefix=".probe.", suffix=".tmp")
            os.close(fd)
            os.unlink(probe)
            for path in (self.dir / DATABASE_FILE, self.dir / TENSOR_DIR, self.dir / SETTINGS_FILE):
                if path.exists() and not os.access(path, os.W_OK):
                    raise PermissionError(f"{path.name} is read-only")
            free = shutil.disk_usage(self.dir).free
        except OSError as err:
            raise StorageError(f"run {self.dir.name!r} cannot be written ({err.strerror or err}): "
                               "make it writable, or start a new run elsewhere") from None
        if free < MIN_FREE_BYTES:
            raise StorageError(f"run {self.dir.name!r} is on a disk with {free / 2**20:.1f} MiB free; a stage needs "
                               f"at least {MIN_FREE_BYTES / 2**20:.0f} MiB: free some space, or start the run elsewhere")

    def _remove_stale_temporaries(self) -> None:
        for folder in (self.dir, self.dir / TENSOR_DIR):
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def _require_lock(self) -> None:
        if not self._lock_depth:
            raise RuntimeError(f"write to run {self.dir.name!r} outside Run.writing(): readers never write")
        if self._forget_first:  # the first write of a stage: it is no longer done
            stages, self._forget_first = self._forget_first, []
            self.forget_stages(stages)

    def forget_before_writing(self, stages: Iterable[str]) -> None:
        """Mark ``stages`` not done just before the next write, so a stage that fails before
        writing anything leaves the run exactly as it was."""
        self._forget_first = list(stages)

    def _connect(self, write: bool = True) -> sqlite3.Connection:
        """A connection to ``run.sqlite``: read-only for readers (so reading never changes a byte)."""
        try:
            if not write:
                return sqlite3.connect(f"{(self.dir / DATABASE_FILE).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            db = sqlite3.connect(self.dir / DATABASE_FILE, timeout=30)
            db.execute("CREATE TABLE IF NOT EXISTS metrics (stage TEXT, name TEXT, layer INTEGER, "
                       "value REAL, extra TEXT, created REAL)")
            db.execute("CREATE TABLE IF NOT EXISTS generations (stage TEXT, task_id TEXT, condition TEXT, "
                       "seed INTEGER, prompt TEXT, text TEXT, language TEXT, confidence REAL, "
                       "parses INTEGER, n_tokens INTEGER, created REAL)")
            db.execute("CREATE TABLE IF NOT EXISTS stages (stage TEXT PRIMARY KEY, inputs TEXT, seconds REAL, "
                       "threads INTEGER, finished REAL)")
        except sqlite3.OperationalError as err:  # a read-only file, a full disk, a lock held too long
            raise StorageError(f"cannot use {DATABASE_FILE} of run {self.dir.name!r}: {err}") from None
        except sqlite3.DatabaseError as err:
            raise StorageError(f"{DATABASE_FILE} of run {self.dir.name!r} is not a readable database: {err}") from None
        return db

    @contextmanager
    def _transaction(self):
        """One write transaction on ``run.sqlite``, whose SQLite errors (a read-only file, a full
        disk) end in one StorageError naming the run."""
        try:
            with closing(self._connect()) as db, db:
                yield db
        except sqlite3.OperationalError as err:
            raise StorageError(f"cannot write {DATABASE_FILE} of run {self.dir.name!r}: {err}") from None

    # settings -----------------------------------------------------------------------------
    @property
    def settings(self) -> dict:
        path = self.dir / SETTINGS_FILE
        if not path.is_file():
            return {}
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise StorageError(f"{SETTINGS_FILE} of run {self.dir.name!r} is not valid JSON ({err})") from None
        if not isinstance(value, dict):
            raise StorageError(f"{SETTINGS_FILE} of run {self.dir.name!r} is not a JSON object")
        for key, kinds in SETTINGS_SHAPE.items():  # what every reader relies on, checked once here
            if key in value and not isinstance(value[key], kinds):
                raise StorageError(f"{SETTINGS_FILE} of run {self.dir.name!r}: {key!r} must be "
                                   f"{' or '.join(KIND_WORDS[k] for k in kinds)}, not {type(value[key]).__name__}")
        return value

    def write_settings(self, values: dict) -> None:
        self._require_lock()
        atomic_write_json(self.dir / SETTINGS_FILE, {**values, "format": RUN_FORMAT}, self.dir)  # the run's marker

    def write_prompts(self, jsonl: str) -> None:
        """The prompt set the run is made from (rewritten only when it differs)."""
        self._require_lock()
        path = self.dir / PROMPTS_FILE
        if not path.is_file() or path.read_text(encoding="utf-8") != jsonl:
            atomic_write_bytes(path, jsonl.encode(), self.dir)

    def clear(self) -> None:
        """Remove everything the run stored (``--overwrite``), under the lock."""
        self._require_lock()
        for path in [self.dir / SETTINGS_FILE, self.dir / DATABASE_FILE, self.dir / PROMPTS_FILE,
                     *(self.dir / TENSOR_DIR).glob("*.safetensors")]:
            path.unlink(missing_ok=True)

    # stages -------------------------------------------------------------------------------
    def stage_records(self) -> dict[str, dict]:
        """``{stage: {inputs, seconds, threads, finished}}`` of the stages that completed."""
        rows = self._select("stages", "stage, inputs, seconds, threads, finished", None, order="finished")
        return {r["stage"]: {k: r[k] for k in ("inputs", "seconds", "threads", "finished")} for r in rows}

    def predates_stage_records(self) -> bool:
        """A run written before stages were recorded: a database without the ``stages`` table
        (a run killed before its first record has the table, and no stage counts as done)."""
        if not (self.dir / DATABASE_FILE).is_file():
            return False
        tables = self._select("sqlite_master", "name", None, order="name")
        return "stages" not in {row["name"] for row in tables}

    def forget_stages(self, stages: Iterable[str]) -> None:
        """Mark ``stages`` not done, before their files are rewritten (so a kill in between
        never leaves a stage reported done over mixed files)."""
        self._require_lock()
        with self._transaction() as db:
            db.executemany("DELETE FROM stages WHERE stage = ?", [(s,) for s in stages])

    def record_stage(self, stage: str, inputs: str, seconds: float, threads: int) -> None:
        self._require_lock()
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO stages VALUES (?, ?, ?, ?, ?)",
                       (stage, inputs, float(seconds), int(threads), time.time()))

    def verify(self) -> None:
        """Raise a StorageError naming the first damaged file (settings, database, a tensor
        file's header and length), so a reader can refuse a broken run at once, not mid-page."""
        self.settings
        for table in ("metrics", "generations", "stages"):
            self._select(table, "COUNT(*)", None, order="1")
        for path in sorted((self.dir / TENSOR_DIR).glob("*.safetensors")):
            try:
                with safe_open(str(path), framework="pt"):
                    pass
            except (SafetensorError, OSError, ValueError) as err:
                raise StorageError(f"{path.name} is not a valid safetensors file (tampered or truncated): {err}") from None

    def prompt_set(self):
        """The prompt set the run was started with."""
        from ..code.prompts import PromptSet

        path = self.dir / PROMPTS_FILE
        if not path.is_file():
            raise StorageError(f"{self.dir} has no {PROMPTS_FILE}: it was never started")
        return PromptSet.from_text(path.read_text(encoding="utf-8"), self.settings.get("prompt_set", {}).get("name", "prompts"))

    # tensors ------------------------------------------------------------------------------
    def tensor_path(self, name: str) -> Path:
        return self.dir / TENSOR_DIR / f"{name}.safetensors"

    def save(self, name: str, tensors: dict[str, torch.Tensor], **metadata: Any) -> Path:
        self._require_lock()
        path = self.tensor_path(name)
        save_tensors(path, tensors, metadata, self.dir)
        return path

    def load(self, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return load_tensors(self.tensor_path(name))

    def has(self, name: str) -> bool:
        return self.tensor_path(name).is_file()

    # tables -------------------------------------------------------------------------------
    def replace_metrics(self, stage: str, rows: Iterable[Row]) -> None:
        """Replace the metrics of ``stage`` with ``rows`` of (name, layer, value, extra) in one transaction."""
        self._require_lock()
        now = time.time()
        with self._transaction() as db:
            db.execute("DELETE FROM metrics WHERE stage = ?", (stage,))
            db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
                [(stage, n, l, float(v), json.dumps(e) if e else None, now) for n, l, v, e in rows],
            )

    def _select(self, table: str, columns: str, stage: str | None, order: str = "rowid") -> list[sqlite3.Row]:
        """Rows of ``table`` in insertion order, of one stage or of all (none before the first
        write: reading never creates the database)."""
        if not (self.dir / DATABASE_FILE).is_file():
            return []
        where, args = (" WHERE stage = ?", (stage,)) if stage is not None else ("", ())
        with closing(self._connect(write=False)) as db:
            db.row_factory = sqlite3.Row
            try:
                return db.execute(f"SELECT {columns} FROM {table}{where} ORDER BY {order}", args).fetchall()
            except sqlite3.OperationalError as err:
                if "no such table" in str(err):  # a run from before the table existed
                    return []
                raise StorageError(f"{DATABASE_FILE} of run {self.dir.name!r} cannot be read: {err}") from None
            except sqlite3.DatabaseError as err:
                raise StorageError(f"{DATABASE_FILE} of run {self.dir.name!r} cannot be read: {err}") from None

    def metrics(self, stage: str | None = None) -> list[dict]:
        rows = self._select("metrics", "stage, name, layer, value, extra", stage)
        return [{**dict(r), "extra": json.loads(r["extra"]) if r["extra"] else None} for r in rows]

    def replace_generations(self, stage: str, rows: Iterable[dict]) -> None:
        self._require_lock()
        now = time.time()
        keys = ("task_id", "condition", "seed", "prompt", "text", "language", "confidence", "parses", "n_tokens")
        with self._transaction() as db:
            db.execute("DELETE FROM generations WHERE stage = ?", (stage,))
            db.executemany(
                "INSERT INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(stage, *(row.get(k) for k in keys), now) for row in rows],
            )

    def generations(self, stage: str | None = None) -> list[dict]:
        columns = "stage, task_id, condition, seed, prompt, text, language, confidence, parses, n_tokens"
        return [dict(r) for r in self._select("generations", columns, stage)]
