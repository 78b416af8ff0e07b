"""Files written safely: atomic output, temporary names that record their owner, the removal
of those a killed process left, and writer locks.

Every temporary file and folder is named ``.<name>.<host>-<pid>.<random>.tmp[<ext>]``, so a
later step can tell whose it is: one whose process has ended on this machine (killed with
-9, or by the out-of-memory killer, which leave no chance to clean up) is removed by the next
writer into its folder, with a note. A step that writes a run's file holds that file's lock
(:meth:`streid.artifacts.Run.lock`), so a second process gets one line naming the first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from .errors import UserError, note, stops_deferred


def missing(path: Path, folder: bool = False) -> str | None:
    """Why ``path`` is not the file (or ``folder``) expected: "not found", "is a folder,
    expected a file", "is a file, expected a folder"; None if it is one."""
    if path.is_dir() if folder else path.is_file():
        return None
    if not path.exists():
        return "not found"
    return "is a file, expected a folder" if folder else "is a folder, expected a file"


@contextlib.contextmanager
def locked(holder: Path, what: str):
    """An exclusive ``flock`` on the file ``holder``, which records who holds it while the
    block runs and is removed after; UserError "``what`` by <holder>: ..." if another
    process holds it."""
    while True:
        try:
            fd = os.open(holder, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise UserError(f"cannot write {holder.parent}/: {describe(err)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise UserError(
                f"{what} by {who}: wait for it to end, or give another --name"
            ) from None
        except OSError:  # a file system without locks (some network mounts): go on unlocked
            break
        # The holder before us may have removed the file between our open and our lock: ours
        # is then a lock on a file nobody else will open; take the one at the path.
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.stat(holder).st_ino:
                break
        os.close(fd)
    try:
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {_HOST} (since {started})".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(holder)  # while still held: the next process makes a file of its own
        os.close(fd)  # releases the lock


_UMASK = os.umask(0)
os.umask(_UMASK)


# A temporary name (see the module's docstring).
TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.\w+\.tmp(\.\w+)?")
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temporary_affixes(path: Path, ext: str = "") -> tuple[str, str]:
    """(prefix, suffix) of a temporary name for ``path`` (``tempfile.mkstemp``'s arguments):
    ``ext``, a file extension, ends the name (matplotlib reads the format from it)."""
    return f".{path.name}.{_HOST}-{os.getpid()}.", f".tmp{ext}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Remove the temporary files and folders in ``folder`` whose process, on this machine,
    has ended; say so in one line. Returns how many were removed."""
    folder, removed, size = Path(folder), 0, 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            found = TEMPORARY.fullmatch(entry.name)
            if not found or found["host"] != _HOST or _alive(int(found["pid"])):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    size += entry.stat(follow_symlinks=False).st_size
                    os.unlink(entry.path)
                removed += 1
    if removed:
        note(f"removed {removed} temporary file(s) of stopped runs from {folder}/ "
             f"({size / 1e9:.2f} GB)")  # fmt: skip
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Whatever stops the writing (an error, Ctrl-C, SIGTERM or SIGHUP through
    :func:`streid.cli.entry_point`) removes the temporary file; one left by a killed process
    is removed by the next writer into the folder. A write error (a full disk, a read-only
    folder) becomes a UserError naming ``path``.

    Args:
        suffix: a file extension that ends the temporary name (for writers that read it).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        prefix, suffix = temporary_affixes(path, suffix)
    except OSError as err:
        raise UserError(f"cannot write {path}: {describe(err)}") from None
    with contextlib.ExitStack() as cleanup:
        # A stop between the temporary file's creation and its cleanup left the file behind:
        # stops wait until the cleanup is in place.
        with stops_deferred():
            try:
                fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
            except OSError as err:
                raise UserError(f"cannot write {path}: {describe(err)}") from None
            cleanup.enter_context(removed_on_failure(Path(tmp), path))
            os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)


@contextlib.contextmanager
def removed_on_failure(tmp: Path, path: Path):
    """Remove the temporary file ``tmp`` of ``path`` if the block fails or is stopped; a
    write error (a full disk, a read-only folder) becomes a UserError naming ``path``."""
    try:
        yield
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise UserError(f"could not write {path}: {describe(err)}") from None
        raise


def describe(err: OSError) -> str:
    """An OSError in a user's words: "disk full" rather than a byte count."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full ({err.strerror})"
    return err.strerror or str(err)


def check_free_space(path: Path, nbytes: int, alternative: str = "") -> None:
    """UserError if the file system of ``path`` has less than ``nbytes`` free."""
    free = shutil.disk_usage(Path(path).parent).free
    if free < nbytes:
        raise UserError(
            f"{path} needs {nbytes / 1e9:.2f} GB but its file system has {free / 1e9:.2f} GB "
            f"free: free space in {Path(path).parent}/{alternative}"
        )
