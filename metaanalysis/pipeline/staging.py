"""Replace the results folder whole or not at all.

A run writes everything into a staging folder beside the results folder
(`.results.staging-<pid>-<token>/`), writes `manifest.json` last (the mark of a
complete run: every file with its SHA-256), and only then swaps the staging
folder into place in one step (Linux `renameat2(RENAME_EXCHANGE)`; elsewhere two
renames, repaired by the next run if a kill falls between them). Any failure or
interruption before the swap removes the staging folder and leaves the previous
results byte-identical; a SIGKILL leaves only a staging folder, which the next
run removes. A lock file stops two runs from writing the same folder at once.

    with StagedOutput(Path("results")) as stage:
        write everything under stage.path
        stage.commit(extra_manifest)       # manifest, then the swap
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

MANIFEST = "manifest.json"
# Every run before manifests existed wrote these two; a folder holding both is a results folder.
# Only such a folder, an empty one or one with a manifest is ever replaced.
LEGACY_MARKS = {"pooled.csv", "changes.md"}


class OutputError(RuntimeError):
    """The output folder cannot be used; the message is one line naming it."""


def _prefix(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ManifestCheck:
    """What `folder/manifest.json` holds: the manifest of a complete run (its `files` only the
    entries that can be checked), or why there is none, and the entries that were set aside."""

    manifest: dict | None
    problem: str = ""  # e.g. "is not valid JSON (line 1, column 5)"; "" when usable or absent with no folder
    damaged_entries: tuple[str, ...] = ()  # e.g. 'files["../../etc/passwd"] names a path outside results/'


_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_manifest(folder: Path) -> ManifestCheck:
    """Read the manifest of `folder`, saying what is wrong with it when it cannot be used."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        # an empty or absent folder: nothing was there to lose, so nothing to report
        return ManifestCheck(None, "is missing" if folder.is_dir() and any(folder.iterdir()) else "")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return ManifestCheck(None, f"cannot be read ({exc.strerror})")
    except UnicodeDecodeError as exc:
        return ManifestCheck(None, f"is not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start})")
    if not text.strip():
        return ManifestCheck(None, "is empty")
    try:
        data = json.loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        return ManifestCheck(None, f"is not valid JSON{where}")
    if not isinstance(data, dict):
        return ManifestCheck(None, f"is JSON {json_kind(data)}, not an object")
    if data.get("complete") is not True:
        said = json.dumps(data["complete"]) if "complete" in data else "nothing"
        return ManifestCheck(None, f'says "complete": {said} (not written by a complete run)')
    files = data.get("files")
    if not isinstance(files, dict):
        return ManifestCheck(None, f'field "files" is {json_kind(files)}, not a mapping of file to SHA-256')
    kept, damaged = {}, []
    for rel, digest in files.items():
        if not _inside(folder, rel):
            damaged.append(f"files[{json.dumps(rel)}] names a path outside {folder.name}/")
        elif not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            damaged.append(f"files[{json.dumps(rel)}] is not a SHA-256")
        else:
            kept[rel] = digest
    return ManifestCheck({**data, "files": kept}, "", tuple(damaged))


def json_kind(value) -> str:
    """'null', 'a list', 'a string'...: what a JSON value is, for messages."""
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _inside(folder: Path, rel) -> bool:
    """Whether manifest entry `rel` names a file inside `folder` (never hashed otherwise: a manifest
    is read from disk, and `../../etc/passwd` must not make a run read that file)."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or ".." in parts:
        return False
    root = folder.resolve()
    return (root / rel).resolve().is_relative_to(root)  # a symlink inside may point out


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a complete run in `folder`, or None (no run, or not written by a complete run)."""
    return check_manifest(folder).manifest


def altered_files(folder: Path, manifest: dict) -> list[str]:
    """Files of a complete run that were changed or deleted by hand since (relative paths); entries
    naming a path outside `folder` are never opened (`check_manifest` reports them)."""
    files = manifest.get("files")
    out = []
    for rel, digest in (files if isinstance(files, dict) else {}).items():
        if not _inside(Path(folder), rel):
            continue
        path = folder / rel
        if not path.is_file() or sha256(path) != digest:
            out.append(rel)
    return out


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _SignalsDeferred:
    """Hold SIGINT/SIGTERM for the few system calls of the swap (main thread only)."""

    def __enter__(self):
        self.blocked = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
        if self.blocked:
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return self

    def __exit__(self, *exc):
        if self.blocked:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)  # a held signal is delivered now


class StagedOutput:
    """Context manager: a staging folder for one run, swapped into `target` on `commit()`."""

    def __init__(self, target: Path):
        target = Path(target)
        # A symlinked results folder: replace the folder it points to, keep the link.
        self.target = target.resolve() if target.is_symlink() else target
        self.path: Path | None = None
        self.committed = False
        self.removed_extra: list[str] = []  # files in the old folder that no run wrote
        self._lock = None

    # -- checks, lock, recovery --------------------------------------------------------
    def __enter__(self) -> StagedOutput:
        target = self.target
        if target.exists() and not target.is_dir():
            raise OutputError(f"--out {target} is a file, not a folder: give a folder name (e.g. results)")
        parent = target.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the folder {parent} for {target.name}/: {exc.strerror}") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"the folder {parent} is not writable, so {target.name}/ cannot be replaced")
        if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
            raise OutputError(f"the output folder {target} is read-only: make it writable or choose another --out")
        # Refusals first: a refused --out (a foreign folder, `/`) leaves no lock file behind.
        self._refuse_foreign(target)
        self._take_lock(parent)
        try:
            self._recover(parent)
            self._refuse_foreign(target)  # again under the lock: a kill may have left a swap half done
            self.path = Path(tempfile.mkdtemp(prefix=_prefix(target, "staging") + f"{os.getpid()}-", dir=parent))
        except BaseException:
            self._release_lock()
            raise
        return self

    def _take_lock(self, parent: Path) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the staging names still never collide
            return
        try:
            handle = open(parent / f".{self.target.name}.lock", "a+")
        except OSError as exc:
            raise OutputError(f"cannot create a lock file in {parent}: {exc.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutputError(
                f"another `metaanalysis run` is writing {self.target} right now; wait for it to finish"
            ) from None
        self._lock = handle

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _recover(self, parent: Path) -> None:
        """Undo what a killed run left: its staging folder, or a half-done two-rename swap."""
        previous = sorted(parent.glob(_prefix(self.target, "previous") + "*"))
        if previous and not self.target.exists():
            # Killed between the two renames: the old results are complete; put them back.
            os.rename(previous.pop(), self.target)
        for leftover in [*previous, *parent.glob(_prefix(self.target, "staging") + "*")]:
            shutil.rmtree(leftover, ignore_errors=True)

    def _refuse_foreign(self, target: Path) -> None:
        """Only an empty folder, a folder a run wrote (manifest), or an old-style results folder is replaced."""
        if not target.is_dir():
            return
        names = {p.name for p in target.iterdir()}
        manifest = read_manifest(target)
        if manifest is not None:
            known = set(manifest.get("files") or {}) | {MANIFEST}
            self.removed_extra = sorted(
                str(p.relative_to(target))
                for p in target.rglob("*")
                if p.is_file() and str(p.relative_to(target)) not in known
            )
            return
        if names and not LEGACY_MARKS <= names:
            shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
            raise OutputError(
                f"--out {target} holds files no run wrote ({shown}); `run` replaces its output "
                "folder whole, so choose a new or empty folder"
            )

    # -- the swap ----------------------------------------------------------------------
    def commit(self, manifest_extra: dict | None = None) -> dict:
        """Write the manifest (last), then swap the staging folder into place."""
        assert self.path is not None and not self.committed
        files = {
            str(p.relative_to(self.path)): sha256(p)
            for p in sorted(self.path.rglob("*"))
            if p.is_file() and p.name != MANIFEST
        }
        manifest = {
            "complete": True,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            **(manifest_extra or {}),
            "files": files,
        }
        tmp = self.path / (MANIFEST + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path / MANIFEST)
        _fsync_dir(self.path)
        os.chmod(self.path, 0o755)  # mkdtemp makes it private; results are for reading
        with _SignalsDeferred():
            if not self.target.exists():
                os.rename(self.path, self.target)
                old = None
            elif _exchange(self.path, self.target):
                old = self.path  # now holds the previous results
            else:
                old = self.path.with_name(self.path.name.replace(".staging-", ".previous-"))
                os.rename(self.target, old)
                os.rename(self.path, self.target)
            _fsync_dir(self.target.absolute().parent)
            self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return manifest

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self.committed and self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self._release_lock()
