"""One atomic write for every file the package produces (checkpoints, HDF5 references,
compare's cell results)."""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temp file in the same folder,
    which then gets the mode an ordinary ``open()`` would give it (0666 less the umask;
    ``mkstemp`` makes it 0600) and is renamed over ``path``. A failure removes the temp
    file and leaves ``path`` as it was. The temp file is ``<name>.<pid>.<random>.tmp``;
    those of ``path`` left by a write whose process is gone (a killed run) are removed
    first, while another live process's write to the same path is left alone. Creates
    the parent folder; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


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
    """``text`` to ``path`` by :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


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
