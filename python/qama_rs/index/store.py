"""Row storage shared by every codec: a 2-D array with spare capacity, or a read-only (memory-mapped)
view that becomes a private copy only when rows are added or removed."""

from __future__ import annotations

import numpy as np

__all__ = ["Rows"]


class Rows:
    """Rows ``[:n]`` of a buffer of ``(capacity, *shape)`` ``dtype``; ``view`` never copies."""

    def __init__(self, dtype, shape: tuple[int, ...] = ()) -> None:
        self._buf = np.zeros((0, *shape), dtype=dtype)
        self._n = 0

    @property
    def n(self) -> int:
        return self._n

    def __len__(self) -> int:
        return self._n

    @property
    def view(self) -> np.ndarray:
        """The live rows, read-only, without a copy (C-contiguous: rows are a leading slice)."""
        out = self._buf[: self._n]
        out.flags.writeable = False
        return out

    def append(self, rows: np.ndarray) -> None:
        m = len(rows)
        if not m:
            return
        if self._n + m > len(self._buf) or not self._buf.flags.writeable:
            # A mapped (read-only) buffer is copied once here: additions never write to the file.
            grown = np.zeros(
                (max(self._n + m, 2 * len(self._buf), 1024), *self._buf.shape[1:]), self._buf.dtype
            )
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : self._n + m] = rows
        self._n += m

    def keep(self, mask: np.ndarray) -> None:
        """Drops the rows where ``mask`` is False (a new private buffer)."""
        self._buf = np.ascontiguousarray(self._buf[: self._n][mask])
        self._n = len(self._buf)

    def attach(self, array: np.ndarray) -> None:
        """Serves ``array`` (e.g. a memory-mapped section) as the rows, without copying it."""
        self._buf = array
        self._n = len(array)
