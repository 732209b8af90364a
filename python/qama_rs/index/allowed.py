"""A filter prepared once for many searches: ``allowed = Allowed(ids)``, then
``index.search(xq, k, allowed=allowed)`` as often as needed (faiss's ``IDSelector``, Qdrant's prepared filter).

``search(allowed=ids)`` checks and sorts the ids and builds the engine's filter over them on every call (a 1 %
filter of 200k rows: ~18 µs, a third of a one-query search). An :class:`Allowed` checks and sorts them once, and
keeps what each index derived from them (the stored rows among them, the engine's filter, and from the second
search on which stored rows it admits, so a scan skips the blocks of codes it admits none of) for the index's
state it was derived under: an ``add`` or ``remove`` makes the next search derive it again, so it is never stale.
A search with one also skips the argument checks a plain search skips (its ids were checked when it was made)."""

from __future__ import annotations

from typing import Any

import numpy as np

from qama_rs.errors import QamaError, QamaTypeError

__all__ = ["Allowed"]

#: Indexes whose derived rows one Allowed keeps at a time (more: it starts over).
KEPT_INDEXES = 16


class Allowed:
    """The int ids a search may return, prepared for reuse: ids (any order; repeats, negative and unknown ids
    ignored, as in ``search(allowed=ids)``) or a boolean bitmap indexed by id. String ids (names) are not
    taken here: pass them to ``search(allowed=...)``, or their int ids."""

    __slots__ = ("_derived", "_ids")

    def __init__(self, ids: Any) -> None:
        if isinstance(ids, np.ndarray):
            array = ids
        else:
            try:
                array = np.asarray(list(ids))
            except TypeError:
                raise QamaTypeError(
                    f"Allowed(ids): ids must be a sequence of int ids or a boolean bitmap, got {type(ids).__name__}"
                ) from None
        if array.ndim > 1:
            raise QamaError(f"Allowed(ids): ids must be 1-D (ids, or a bitmap indexed by id), got shape {array.shape}")
        if array.dtype == np.bool_:
            array = np.flatnonzero(array)
        elif array.size and array.dtype.kind not in "iu":
            raise QamaTypeError(
                f"Allowed(ids): ids must be int ids or a boolean bitmap, got dtype {array.dtype} "
                "(string ids: pass them to search(allowed=...) directly)"
            )
        array = array.astype(np.int64).ravel()
        array = np.unique(array[array >= 0])  # negative ids are never stored
        array.flags.writeable = False
        self._ids = array
        # Per index (its serial number): (its version, what it derived then).
        self._derived: dict[int, tuple[int, Any]] = {}

    @property
    def ids(self) -> np.ndarray:
        """The allowed ids: sorted, distinct, non-negative (read-only)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"Allowed({len(self._ids)} ids)"

    def __reduce__(self) -> tuple[type[Allowed], tuple[np.ndarray]]:
        # What indexes derived stays behind: index serial numbers mean nothing in another process.
        return (Allowed, (self._ids,))

    def derived(self, serial: int, version: int) -> Any:
        """What the index numbered ``serial`` derived at ``version``, or None."""
        held = self._derived.get(serial)
        return held[1] if held is not None and held[0] == version else None

    def keep(self, serial: int, version: int, value: Any) -> None:
        """Keeps what the index numbered ``serial`` derived at ``version``."""
        if len(self._derived) >= KEPT_INDEXES and serial not in self._derived:
            self._derived = {}  # replaced whole: a reader in another thread sees the old dict or the new
        self._derived[serial] = (version, value)
