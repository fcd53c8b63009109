"""Rules that keep inputs safe and outputs whole: no output over an input, a writable folder, one writer."""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Callable, Iterator, List, Mapping, Optional, Tuple

import rasterio

from ..errors import StfError

ON_WINDOWS = sys.platform == "win32"
"""Where os.kill(pid, 0) asks nothing, and a file another program has open can be neither replaced nor removed."""
UNREADABLE_LOCK_SECONDS = 60
"""A lock file still empty after this long was left by a run that died while creating it."""


def refuse_overwrite(outputs: Mapping[str, str], inputs: Mapping[str, Optional[str]]) -> None:
    """StfError when an output (what it is → path) is the same file as an input or as a file one of them reads
    (a VRT's sources, a mask): compared as files on disk, so links and other spellings of a path count too."""
    existing = {identity: (what, path) for what, path in outputs.items()
                if (identity := file_identity(path)) is not None}
    if not existing:  # an output that does not exist yet is no input
        return
    for label, path in inputs.items():
        for file in files_read(path) if path else ():
            if (identity := file_identity(file)) in existing:
                what, output = existing[identity]
                raise StfError(f"the {what} would overwrite the {label}: {output}; choose another path")


def file_identity(path: str) -> Optional[Tuple[int, int]]:
    """(device, inode) of an existing file, None when there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def file_key(path: str) -> object:
    """What tells files apart: (device, inode) of an existing one, so links and other spellings of a path are one
    file; its real path when there is none."""
    return file_identity(path) or os.path.realpath(path)


def files_read(path: str) -> List[str]:
    """`path` and, when it opens as a raster, every file GDAL reads for it (a VRT's sources, a .msk mask)."""
    try:
        with rasterio.open(path) as dataset:
            return [path, *dataset.files]
    except (rasterio.errors.RasterioError, OSError):
        return [path]


def check_writable_file(path: str, what: str = "output") -> None:
    """StfError unless a file can be created at `path`: not a folder, in a folder that exists or can be made
    and that accepts new files (tried for real, so read-only mounts count too)."""
    if os.path.isdir(path):
        raise StfError(f"the {what} {path} is an existing folder; give a file name inside it")
    check_writable_folder(os.path.dirname(os.path.abspath(path)), what)


def check_writable_folder(folder: str, what: str = "output") -> None:
    existing, _ = _nearest_existing(folder, what)
    if not os.path.isdir(existing):
        raise StfError(f"the {what} folder {folder} cannot be created: {existing} is a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=".stf-write-test-", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        if existing != os.path.abspath(folder):  # the folder is yet to be made, in `existing`
            raise StfError(f"cannot make the {what} folder {folder} in {existing}: {_reason(exc, existing)}") from None
        raise StfError(f"cannot write the {what} into {folder}: {_reason(exc)}") from None


def _nearest_existing(folder: str, what: str = "output") -> Tuple[str, List[str]]:
    """The nearest of `folder` and the folders above it that exists, and those missing on the way (deepest first).
    StfError when not even the root exists: a drive or network share that is not connected (Windows)."""
    path, missing = os.path.abspath(folder), []
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            raise StfError(f"the {what} folder {folder} cannot be made: {path} is not there (a drive or network share "
                           f"that is not connected?); connect it or choose another folder")
        missing.append(path)
        path = parent
    return path, missing


def lock_path(output: str) -> str:
    folder, name = os.path.split(os.path.abspath(output))
    return os.path.join(folder, f".{name}.lock")


@contextmanager
def output_lock(output: str) -> Iterator[str]:
    """Hold `.<name>.lock` beside the output for the run; a second run on the same output (in this process or
    another) is refused while the first holds it. A lock left by a process that no longer exists (killed
    outright) is taken over."""
    path = lock_path(output)
    mine = f"{os.getpid()} {secrets.token_hex(8)}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            holder = _holder(path)
            if holder is None and time.time() - os.path.getmtime(path) > UNREADABLE_LOCK_SECONDS:
                holder = "0 unreadable"
            if holder is None or _alive(int(holder.split()[0])):
                pid = holder.split()[0] if holder else "unknown"
                raise StfError(
                    f"another STF run (process {pid}) is writing {output}; wait for it or choose another output "
                    f"(if no STF run is going, delete its lock {path})"
                ) from None
            os.remove(path)  # stale: its process is gone
    else:
        raise StfError(f"cannot lock {output}: {path} keeps reappearing")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(mine)
        yield path
    finally:
        if _holder(path) == mine:
            os.remove(path)


def _holder(path: str) -> Optional[str]:
    """'pid token' of the run holding the lock; None when it cannot be read (being written: treated as held)."""
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return text if text and text.split()[0].isdigit() else None


def _alive(pid: int) -> bool:
    """Whether process `pid` runs, asked without touching it."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if ON_WINDOWS:  # there os.kill(pid, 0) sends a console Ctrl+C, or fails in QGIS (no console)
        return _windows_process_runs(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _windows_process_runs(pid: int) -> bool:
    """Whether `pid` names a running Windows process: one that cannot be opened for lack of rights runs; one that
    opens runs until it has an exit code."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = ctypes.c_void_p
    handle = kernel32.OpenProcess(WINDOWS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return ctypes.get_last_error() == WINDOWS_ACCESS_DENIED
    try:
        code = ctypes.c_ulong()
        return not kernel32.GetExitCodeProcess(ctypes.c_void_p(handle), ctypes.byref(code)) \
            or code.value == WINDOWS_STILL_ACTIVE
    finally:
        kernel32.CloseHandle(ctypes.c_void_p(handle))


WINDOWS_QUERY_LIMITED_INFORMATION, WINDOWS_ACCESS_DENIED, WINDOWS_STILL_ACTIVE = 0x1000, 5, 259
"""PROCESS_QUERY_LIMITED_INFORMATION, ERROR_ACCESS_DENIED and STILL_ACTIVE of the Windows API."""
WINDOWS_SHARING_VIOLATION = 32
"""ERROR_SHARING_VIOLATION: another process has the file open without letting others rename or remove it."""


@contextmanager
def made_folder(folder: str) -> Iterator[None]:
    """`folder` (and its missing parents) made for a run's outputs; a run that fails or is stopped removes those it
    made and left empty, so an error or a cancel leaves no trace in the file system."""
    _, made = _nearest_existing(folder)
    os.makedirs(folder, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in made:
            try:
                os.rmdir(path)
            except OSError:  # something was written there: it stays, and so do its parents
                break
        raise


@contextmanager
def staged_folder(folder: str, what: str) -> Iterator[str]:
    """A hidden staging folder beside `folder` to write into; its files move into `folder` only when the block
    succeeds, and it is removed on every exit. A write error becomes an StfError naming the folder."""
    target = os.path.abspath(folder)
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".partial", dir=parent)
    except OSError as exc:
        raise StfError(f"cannot write the {what} into {folder}: {_reason(exc)}") from None
    try:
        yield staging
        os.makedirs(target, exist_ok=True)
        for name in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, name), os.path.join(target, name))
    except OSError as exc:
        raise StfError(f"cannot write the {what} into {folder}: {_reason(exc)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_output(path: str, what: str = "output") -> None:
    """Remove an earlier run's output; StfError naming it when that fails (on Windows: another program has it open;
    tried again for a moment, as `replace_output` does)."""
    try:
        _retried_on_windows(lambda: os.remove(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StfError(f"cannot remove the {what} {path}: {_reason(exc, path)}") from None


def _retried_on_windows(step: Callable[[], None]) -> None:
    """`step()`; on Windows a PermissionError is tried again a few times before it is raised."""
    deadline = time.monotonic() + (WINDOWS_RETRY_SECONDS if ON_WINDOWS else 0.0)
    while True:
        try:
            return step()
        except PermissionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


WINDOWS_RETRY_SECONDS = 1.0
"""How long a file Windows refuses to rename is tried again: a scanner's hold on a new file lasts moments."""


def _reason(exc: OSError, path: Optional[str] = None) -> str:
    """Why writing `path` (else the file the error names) failed, in words."""
    path = path or exc.filename or "."
    if getattr(exc, "winerror", None) == WINDOWS_SHARING_VIOLATION:
        return f"it is {HELD}; close it there"
    return why_write_failed(exc.strerror or str(exc), path, exc.errno)


HELD = "open in another program (a QGIS layer showing it, a spreadsheet)"
"""Why Windows refuses to replace or remove a file that is there and writable."""


def why_write_failed(message: str, folder: str, number: Optional[int] = None) -> str:
    """'no space left on the device' for a full disk (by errno or message; by the folder's free space only when
    the failure carries no errno, as GDAL's do), 'it is not writable' for permissions and read-only mounts, else the
    message itself. Read-only mounts and system folders (/proc, /sys) report no free space, so that alone is no
    proof of a full disk."""
    if number == errno.ENOSPC or "No space left" in message:
        return "no space left on the device"
    if number in (errno.EACCES, errno.EPERM, errno.EROFS) or "Permission denied" in message or "Read-only" in message:
        return "it is not writable"
    if number is None and _free_bytes(folder) == 0:
        return "no space left on the device"
    return message


def _free_bytes(path: str) -> Optional[int]:
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def replace_output(source: str, target: str, output: Optional[str] = None) -> None:
    """Rename `source` to `target`: a finished partial file onto its output, or an `output` already there out of the
    way. StfError naming the output when that fails; on Windows it does while another program holds the output open
    (a QGIS layer showing it), and for a moment after a file is written, while a virus scanner or an indexer reads
    it: there a refusal is tried again for up to WINDOWS_RETRY_SECONDS."""
    output = output or target
    try:
        _retried_on_windows(lambda: os.replace(source, target))
    except OSError as exc:
        reason = _reason(exc, output)
        maybe_held = (f"; if it is {HELD}, close it there" if ON_WINDOWS and HELD not in reason
                      and isinstance(exc, PermissionError) else "")
        raise StfError(f"cannot replace {output}: {reason}{maybe_held}; or choose another output") from None
