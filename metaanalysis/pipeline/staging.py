"""Replace the results folder whole or not at all.

A run writes everything into a staging folder beside the results folder
(`.results.staging-<pid>-<token>/`), writes `manifest.json` last (the mark of a
complete run: every file with its SHA-256), and only then swaps the staging
folder into place in one step: Linux `renameat2(RENAME_EXCHANGE)` or macOS
`renamex_np(RENAME_SWAP)`. Where the file system offers no such exchange, the
previous results are not touched at all: the complete new results are left
beside them in `<name>.new-<finished>/` and the run says so (two renames would
leave no results folder at all if a kill fell between them). Any failure or
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


class SwapUnavailable(OutputError):
    """The run is complete, but the file system cannot put it in place in one step (see `_set_aside`)."""


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
    """Swap two paths in one step; False where neither the C library nor the file system can."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    fa, fb = os.fsencode(a), os.fsencode(b)
    if hasattr(libc, "renameat2"):  # Linux (glibc >= 2.28, musl)
        at_fdcwd, rename_exchange = -100, 2
        libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        status = libc.renameat2(at_fdcwd, fa, at_fdcwd, fb, rename_exchange)
    elif hasattr(libc, "renamex_np"):  # macOS >= 10.12 (APFS, HFS+)
        rename_swap = 2
        libc.renamex_np.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        status = libc.renamex_np(fa, fb, rename_swap)
    else:
        return False
    if status == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # an old kernel, or a file system (some network mounts) without the exchange
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
    """Hold SIGINT and SIGTERM until the few system calls of the swap are done.

    The Python handlers are swapped for ones that only record the signal, and what was
    recorded is raised again once the old handlers are back. (Blocking the signals with
    pthread_sigmask would hold them for the calling thread only: the kernel may hand a
    process signal to any other thread, whose C handler still schedules the Python one in
    the main thread mid-swap.) Off the main thread nothing is changed: Python runs signal
    handlers only in the main thread, so they cannot interrupt the swap there."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.held: list[int] = []
        self.old: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.old[sig] = signal.signal(sig, lambda signum, frame: self.held.append(signum))
        return self

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        for sig in dict.fromkeys(self.held):
            signal.raise_signal(sig)  # delivered now, to the handler the program had


class StagedOutput:
    """Context manager: a staging folder for one run, swapped into `target` on `commit()`."""

    def __init__(self, target: Path):
        target = Path(target)
        # A symlinked results folder: replace the folder it points to, keep the link.
        self.target = target.resolve() if target.is_symlink() else target
        self.path: Path | None = None
        self.committed = False
        self.removed_extra: list[str] = []  # files in the old folder that no run wrote
        self.set_aside: Path | None = None  # where the new results went when no exchange was possible
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
        old: Path | None = None
        try:
            with _SignalsDeferred():  # a signal held here is raised on leaving, after the swap
                if not self.target.exists():
                    os.rename(self.path, self.target)  # one step: nothing was there to lose
                elif _exchange(self.path, self.target):
                    old = self.path  # now holds the previous results
                else:
                    self._set_aside(manifest["finished"])
                _fsync_dir(self.target.absolute().parent)
                self.committed = True
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return manifest

    def _set_aside(self, finished: str) -> None:
        """No one-step exchange here: keep the previous results whole, the new ones beside them."""
        assert self.path is not None
        stamp = re.sub(r"[^0-9TZ]", "", finished.replace("+00:00", "Z"))
        kept = self.target.with_name(f"{self.target.name}.new-{stamp}")
        n = 1
        while kept.exists():
            n += 1
            kept = self.target.with_name(f"{self.target.name}.new-{stamp}-{n}")
        os.rename(self.path, kept)
        self.path, self.set_aside = None, kept
        raise SwapUnavailable(
            f"this file system cannot swap two folders in one step, so {self.target} was left exactly "
            f"as it was; the complete new results are in {kept}: remove {self.target.name}/ and rename "
            f"that folder to {self.target.name}, or give --out a folder that does not exist yet"
        )

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self.committed and self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self._release_lock()
