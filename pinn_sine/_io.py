"""One atomic write for every file the package produces (checkpoints, HDF5 references,
compare's cell results, config.json, metrics.json).

Every failure to write (a full disk, a read-only folder, a quota) is a :class:`WriteError`,
an ``OSError`` naming the target file and the OS reason, and leaves the target as it
was with no temp file beside it. Writers that can serialise to memory (HDF5, torch.save)
do so and hand the bytes to :func:`write_bytes`: libraries writing into a file of their
own can fail in ways that are no OSError (h5py raises RuntimeError on ENOSPC and then
crashes the interpreter in its cleanup; torch.save says "basic_ios::clear").
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path


class WriteError(OSError):
    """A file that could not be written: ``filename`` is the target (not the temp file),
    ``errno`` and ``strerror`` the OS's reason; ``str()`` is "cannot write PATH: REASON".
    The OSError that caused it is its ``__cause__``."""

    def __init__(self, path: str | os.PathLike, err: OSError):
        reason = err.strerror or str(err) or type(err).__name__
        super().__init__(err.errno, reason, str(path))

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"

    def __reduce__(self):  # picklable (compare's worker processes)
        return _rebuild_write_error, (self.filename, self.errno, self.strerror)


def _rebuild_write_error(path, code, reason):
    return WriteError(path, OSError(code, reason))


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temp file in the same folder,
    which then gets the mode an ordinary ``open()`` would give it (0666 less the umask;
    ``mkstemp`` makes it 0600) and is renamed over ``path``. A failure removes the temp
    file and leaves ``path`` as it was; an ``OSError`` on the way (creating the folder
    or the temp file, writing, renaming) is raised as a :class:`WriteError` naming
    ``path``, other exceptions of ``write`` as they are. The temp file is
    ``<name>.<pid>.<random>.tmp``; those of ``path`` left by a write whose process is
    gone (a killed run) are removed first, while another live process's write to the
    same path is left alone. Creates the parent folder; returns ``path``.

    ``write`` should raise OSError when the disk is full; a library writing a file of
    its own may not (see the module docstring): serialise to bytes and use
    :func:`write_bytes`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            try:
                os.remove(tmp)
            except OSError:  # gone already, or the folder refuses: the first error is the one to tell
                pass
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise WriteError(path, err) from err
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """``data`` to ``path`` by :func:`atomic_write`, with plain file I/O (which reports a
    full disk as ``OSError(ENOSPC)``) and an fsync before the rename, so the file is
    whole on disk before it replaces the old one."""
    def write(tmp: str) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, data)
            try:
                os.fsync(fd)
            except OSError as err:
                if err.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system without fsync
                    raise
        finally:
            os.close(fd)

    return atomic_write(path, write)


def _write_all(fd: int, data) -> None:
    """All of ``data`` to ``fd`` (``os.write`` may write part of it)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[_os_write(fd, view):]


_os_write = os.write  # the one low-level write (tests replace it to simulate a full disk)


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files :func:`atomic_write` made for ``path``
    (``<name>.<pid>.<8 characters>.tmp`` beside it) whose writing process no longer
    runs on this machine: left by an interrupted write. Returns the removed files."""
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)\.[A-Za-z0-9_]{8}\.tmp")
    removed = []
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file() and not _alive(int(match.group(1))):
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs here (this one included: another thread may be writing)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``text`` to ``path`` in UTF-8 by :func:`write_bytes`."""
    return write_bytes(path, text.encode("utf-8"))


def umask() -> int:
    """The process umask, read without changing it where /proc allows (no race with threads)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
