"""A comparison's output folder: checked before any simulating, locked while in use, and resumable.

Layout (besides the report files)::

    spec.json        what the runs depend on (arms, seeds, model overrides...) and its fingerprint;
                     a folder whose spec differs belongs to another comparison and is refused
    .lock            the pid and host of the `twosided compare` using the folder (removed at the end)
    runs/*.pkl       one file per finished (arm, replicate) run, written atomically (a temporary
                     file, then os.replace), so a killed comparison keeps every run that ended

Rerunning the same command into the same folder loads the finished runs and
simulates only the others; every run is a pure function of its config, so the
result is the same as an uninterrupted comparison's.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import shlex
import socket
import subprocess
from pathlib import Path

from sim.config import ConfigError

SPEC_FILE = "spec.json"
LOCK_FILE = ".lock"
RUNS_DIR = "runs"
KIND = "twosided compare"


class FolderError(ConfigError):
    """The output folder cannot be used; the message says why and what to do, in one paragraph."""

    def __init__(self, path: Path, why: str):
        self.key, self.value, self.allowed = "out", str(path), why
        ValueError.__init__(self, f"Cannot use `out` = {str(path)!r}: {why}.")


def fingerprint(spec: dict) -> str:
    """A short hash of the spec (canonical JSON)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the whole new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class OutputFolder:
    """The checked, locked folder of one comparison (use as a context manager, or call release())."""

    def __init__(self, path: Path | str, spec: dict):
        self.path = Path(path)
        self.spec = spec
        self.fingerprint = fingerprint(spec)
        self.locked = False
        self.resumed = 0

    # -- checks and lock -------------------------------------------------------------------------
    def open(self) -> OutputFolder:
        """Check the folder (a folder, writable, this comparison's or empty, not in use) and lock it."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise FolderError(path, "it is a file, not a folder; choose a folder path with out=DIR")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise FolderError(path, f"the folder cannot be created ({error.strerror or error}); choose a writable "
                              "place with out=DIR") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise FolderError(path, "the folder is not writable; choose a writable place with out=DIR")
        self._lock()
        try:
            self._check_spec()
        except BaseException:
            self.release()
            raise
        return self

    def _lock(self) -> None:
        lock = self.path / LOCK_FILE
        mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    holder = json.loads(lock.read_text() or "{}")
                except (OSError, ValueError):
                    holder = {}
                pid, host = holder.get("pid"), holder.get("host")
                if isinstance(pid, int) and (host != socket.gethostname() or _pid_alive(pid)):
                    raise FolderError(self.path, f"it is in use by a running `twosided compare` (pid {pid} on "
                                      f"{host}); wait for it to finish, or choose another folder with out=DIR"
                                      ) from None
                lock.unlink(missing_ok=True)  # a stale lock: its compare was killed
                continue
            except OSError as error:
                raise FolderError(self.path, f"the folder is not writable ({error.strerror or error}); choose a "
                                  "writable place with out=DIR") from None
            with os.fdopen(fd, "wb") as handle:
                handle.write(mine)
            self.locked = True
            return
        raise FolderError(self.path, "another `twosided compare` took the folder's lock at the same moment; "
                          "choose another folder with out=DIR")

    def _check_spec(self) -> None:
        spec_path = self.path / SPEC_FILE
        if spec_path.exists():
            try:
                stored = json.loads(spec_path.read_text())
            except (OSError, ValueError):
                stored = {}
            if stored.get("kind") != KIND:
                raise FolderError(self.path, f"its {SPEC_FILE} is not a comparison's; choose another folder "
                                  "with out=DIR")
            if stored.get("fingerprint") != self.fingerprint:
                diff = _differences(stored.get("spec", {}), self.spec)
                raise FolderError(self.path, "it holds another comparison (" + diff + "); rerun that comparison's "
                                  "command to resume it, or choose another folder with out=DIR")
            return
        others = [p.name for p in self.path.iterdir() if p.name != LOCK_FILE]
        if others:
            raise FolderError(self.path, f"it is not empty ({', '.join(sorted(others)[:3])}"
                              + (", ..." if len(others) > 3 else "") + ") and not a comparison's folder; choose "
                              "an empty or new folder with out=DIR")
        (self.path / RUNS_DIR).mkdir(exist_ok=True)
        atomic_write(spec_path, json.dumps({"kind": KIND, "fingerprint": self.fingerprint, "spec": self.spec},
                                           indent=2, default=str).encode())

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.locked:
            (self.path / LOCK_FILE).unlink(missing_ok=True)
            self.locked = False

    def __enter__(self) -> OutputFolder:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- finished runs ---------------------------------------------------------------------------
    def run_path(self, key: str) -> Path:
        return self.path / RUNS_DIR / f"{key}.pkl"

    def save_run(self, key: str, result: dict) -> None:
        """Save one finished run atomically (only successful runs: a failed one is retried on resume)."""
        (self.path / RUNS_DIR).mkdir(exist_ok=True)
        atomic_write(self.run_path(key), pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))

    def saved_count(self) -> int:
        """How many finished runs the folder holds."""
        return len(list((self.path / RUNS_DIR).glob("*.pkl")))

    def load_run(self, key: str) -> dict | None:
        """A finished run saved by this comparison, or None."""
        path = self.run_path(key)
        if not path.exists():
            return None
        with open(path, "rb") as handle:
            return pickle.load(handle)


def _differences(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not keys:
        return "a different spec"
    return "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:2])


@functools.cache
def provenance() -> dict:
    """The package version and the git commit of the code that runs (None outside a git checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("twosided")
    except PackageNotFoundError:
        package = None
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"version": package, "commit": commit}


def reproduce_command(args: list[str], out: Path) -> str:
    """The one command that redraws a report (into its folder) or recomputes it (into a new out=)."""
    return "twosided compare " + shlex.join([a for a in args if not a.startswith("out=")] + [f"out={out}"])
