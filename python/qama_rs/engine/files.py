"""Writing files so that nothing is lost or left half-written: the one atomic writer every layer uses."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from qama_rs.errors import QamaError

__all__ = ["atomic_write"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Deletes temporary files an earlier save to ``path`` left when its process died mid-write
    (``.name.<pid>.<random>.tmp`` whose process no longer exists)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp$")
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.match(entry.name)
            if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Writes a file through ``write(f)`` into a temporary file beside ``path``, then renames it over
    ``path``: a failure at any point leaves an existing file untouched and no temporary behind (and a
    temporary left by a process killed mid-save is removed by the next save to the same path)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise QamaError(f"{os.fspath(path)}: folder {os.fspath(path.parent) or '.'} does not exist")
    _remove_stale(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
