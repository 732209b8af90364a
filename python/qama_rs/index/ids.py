"""The ids of stored vectors: int64 ids by slot (insertion position), optional document names, and the
way back from ids and names to slots.

A slot is a row's position in insertion order, which every store of the index (codes, refinement codes)
shares. Ids default to consecutive numbers from 0; while every id equals its slot (no explicit ids, no
removal) neither the ids nor a lookup table are stored at all (0 bytes a vector). Otherwise ids are found through a sorted run plus a small
unsorted run of recent additions, merged when the recent run grows past ``sqrt(n)`` (amortised
O(log n) per id, so adding one vector at a time stays fast at any size). Names (string ids) are kept
as one UTF-8 blob with offsets (how the file stores them: a memory-mapped index decodes a name only
when asked) plus the strings added since, and a name -> slot dictionary built on first use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from qama_rs.errors import QamaError, QamaTypeError

__all__ = ["IdMap"]

_INT64_MAX = np.iinfo(np.int64).max


def _grow(array: np.ndarray, live: int, needed: int) -> np.ndarray:
    if needed <= len(array):
        return array
    grown = np.empty(max(needed, 2 * len(array), 1024), dtype=array.dtype)
    grown[:live] = array[:live]
    return grown


class IdMap:
    """Ids (and names) of the stored rows, by slot."""

    def __init__(self) -> None:
        self._ids = np.zeros(0, dtype=np.int64)
        self._n = 0
        self.next_id = 0
        self._identity = True  # ids[slot] == slot for every slot
        # Lookup (when not identity): a sorted run (ids, slots) and recent (ids, slots) unsorted.
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._recent: list[tuple[np.ndarray, np.ndarray]] = []
        self._recent_n = 0
        # Names: a blob of UTF-8 with offsets (slots [:blob_n]), then Python strings (slots after).
        self._names_blob: tuple[np.ndarray, np.ndarray] | None = None
        self._names_tail: list[str] | None = None
        self._name_slot: dict[str, int] | None = None

    # ------------------------------------------------------------------------------------- size
    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> np.ndarray:
        """Read-only ``int64 (n,)`` ids in slot order."""
        view = np.arange(self._n, dtype=np.int64) if self._identity else self._ids[: self._n]
        view.flags.writeable = False
        return view

    @property
    def nbytes(self) -> int:
        """Bytes the ids and their lookup hold (0 while every id is its slot)."""
        if self._identity:
            return 0
        lookup = 0 if self._sorted is None else self._sorted[0].nbytes + self._sorted[1].nbytes
        return self._n * 8 + lookup

    @property
    def named(self) -> bool:
        return self._names_tail is not None

    # ------------------------------------------------------------------------------------ names
    def name_of_slots(self, slots: np.ndarray) -> np.ndarray:
        """Object array of the names at ``slots`` (any shape; ``""`` where a slot is -1)."""
        flat = np.asarray(slots, dtype=np.int64).ravel()
        out = np.empty(flat.shape, dtype=object)
        blob_n = 0 if self._names_blob is None else len(self._names_blob[0]) - 1
        for i, s in enumerate(flat.tolist()):
            out[i] = "" if s < 0 else self._name(s, blob_n)
        return out.reshape(np.shape(slots))

    def _name(self, slot: int, blob_n: int) -> str:
        if slot < blob_n:
            offsets, data = self._names_blob  # type: ignore[misc]
            return bytes(data[offsets[slot] : offsets[slot + 1]]).decode("utf-8")
        return self._names_tail[slot - blob_n]  # type: ignore[index]

    @property
    def names(self) -> list[str] | None:
        if not self.named:
            return None
        return list(self.name_of_slots(np.arange(self._n)))

    def _name_index(self) -> dict[str, int]:
        if self._name_slot is None:
            self._name_slot = {name: slot for slot, name in enumerate(self.names or [])}
        return self._name_slot

    def slots_of_names(self, names: Sequence[str]) -> np.ndarray:
        """Slots of ``names`` (-1 for an unknown name)."""
        index = self._name_index()
        return np.array([index.get(n, -1) for n in names], dtype=np.int64)

    # -------------------------------------------------------------------------------------- add
    def check_new(self, ids: Any, m: int) -> tuple[np.ndarray, list[str] | None]:
        """The int64 ids (and names) of ``m`` rows about to be added: consecutive numbers when ``ids`` is
        None, else ``ids`` validated (integers: non-negative, unique, not stored yet; or strings: non-empty,
        unique, not stored yet, for an index that names its documents from the start)."""
        if ids is None:
            if self.named and m:
                raise QamaError("ids: this index names its documents; give one string id per row")
            if self.next_id + m - 1 > _INT64_MAX:
                raise QamaError(f"ids: {m} more consecutive ids would pass the int64 range")
            return np.arange(self.next_id, self.next_id + m, dtype=np.int64), None
        if isinstance(ids, str | bytes):
            raise QamaTypeError("ids must be a sequence (one id per row), not a single string")
        array = ids if isinstance(ids, np.ndarray) else None
        if array is None:
            try:
                values = list(ids)
            except TypeError:
                raise QamaTypeError(f"ids must be a sequence of ints or strings, got {type(ids).__name__}") from None
            if values and all(isinstance(v, str) for v in values):
                return self._check_names(values, m)
            if not values:
                array = np.zeros(0, dtype=np.int64)
            else:
                array = np.asarray(values)
        if array.dtype.kind in "US" or (array.dtype == object and all(isinstance(v, str) for v in array.tolist())):
            return self._check_names([str(v) for v in array.tolist()], m)
        if array.size == 0 and m == 0:
            return np.zeros(0, dtype=np.int64), None
        if array.dtype.kind not in "iu" or array.dtype == np.bool_:
            raise QamaTypeError(f"ids must be integers or strings, got dtype {array.dtype}")
        if array.shape != (m,):
            raise QamaError(f"ids must have shape ({m},) (one per row of x), got {array.shape}")
        if self.named:
            raise QamaError("ids: this index names its documents; give string ids")
        if array.dtype.kind == "u" and m and int(array.max()) > _INT64_MAX:
            raise QamaError("ids must fit in int64")
        array = array.astype(np.int64)
        if m and int(array.min()) < 0:
            raise QamaError(f"ids must be non-negative (-1 marks a missing result), got {int(array.min())}")
        if len(np.unique(array)) != m:
            raise QamaError("ids contains duplicates")
        slots, found = self.slots_of(array)
        if found.any():
            raise QamaError(f"ids: id {int(array[np.argmax(found)])} is already in the index")
        return array, None

    def _check_names(self, names: list[str], m: int) -> tuple[np.ndarray, list[str]]:
        if len(names) != m:
            raise QamaError(f"ids has {len(names)} entries for {m} rows")
        if self._n and not self.named:
            raise QamaError("ids: this index holds unnamed vectors; string ids must be given from the start")
        if any(not n for n in names):
            raise QamaError(f"ids: document id {names.index('')} is the empty string; names must be non-empty")
        known = self._name_index() if self.named else {}
        seen: set[str] = set()
        for n in names:
            if n in known or n in seen:
                raise QamaError(f"ids: document id {n!r} appears twice")
            seen.add(n)
        if self.next_id + m - 1 > _INT64_MAX:
            raise QamaError(f"ids: {m} more consecutive ids would pass the int64 range")
        return np.arange(self.next_id, self.next_id + m, dtype=np.int64), names

    def append(self, ids: np.ndarray, names: list[str] | None) -> None:
        """Stores ``ids`` (checked by :meth:`check_new`) at the next slots."""
        m = len(ids)
        if not m:
            return
        first = self._n
        if self._identity and not np.array_equal(ids, np.arange(first, first + m)):
            self._identity = False
            self._ids, self._sorted = np.arange(first, dtype=np.int64), None
        if not self._identity:
            self._ids = _grow(self._ids, first, first + m)
            self._ids[first : first + m] = ids
        self._n += m
        self.next_id = max(self.next_id, int(ids.max()) + 1)
        if not self._identity:
            self._add_recent(ids, np.arange(first, first + m, dtype=np.int64))
        if names is not None:
            if self._names_tail is None:
                self._names_tail = []
            self._names_tail.extend(names)
            if self._name_slot is not None:
                self._name_slot.update({n: first + i for i, n in enumerate(names)})

    def _add_recent(self, ids: np.ndarray, slots: np.ndarray) -> None:
        if self._sorted is None and not self._recent:
            self._build_sorted()
            return
        self._recent.append((ids.copy(), slots))
        self._recent_n += len(ids)
        if self._recent_n > max(1024, int(math.sqrt(self._n))):
            self._build_sorted()

    def _build_sorted(self) -> None:
        ids = self._ids[: self._n]
        order = np.argsort(ids, kind="stable")
        self._sorted = (ids[order], order.astype(np.int64))
        self._recent, self._recent_n = [], 0

    # ---------------------------------------------------------------------------------- lookups
    def slots_of(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(slots, found)`` of int ids (any shape): the slot of each id, and whether it is stored (a
        slot of -1 where not)."""
        array = np.asarray(ids, dtype=np.int64)
        if self._identity:
            found = (array >= 0) & (array < self._n)
            return np.where(found, array, -1), found
        if self._sorted is None:
            self._build_sorted()
        keys, slots = self._sorted  # type: ignore[misc]
        at = np.searchsorted(keys, array).clip(0, max(len(keys) - 1, 0))
        found = keys[at] == array if len(keys) else np.zeros(array.shape, dtype=bool)
        out = np.where(found, slots[at] if len(keys) else -1, -1)
        for rid, rslot in self._recent:
            hit = ~found & np.isin(array, rid)
            if hit.any():
                order = np.argsort(rid)
                pos = np.searchsorted(rid[order], array[hit])
                out[hit] = rslot[order][pos]
                found = found | hit
        return out, found

    def ids_of(self, slots: np.ndarray) -> np.ndarray:
        """Ids of slots (any shape; -1 stays -1)."""
        slots = np.asarray(slots, dtype=np.int64)
        if self._identity or not self._n:
            return np.where(slots < 0, -1, slots)
        return np.where(slots < 0, -1, self._ids[np.clip(slots, 0, None)])

    # ----------------------------------------------------------------------------------- remove
    def keep(self, mask: np.ndarray) -> None:
        """Drops the slots where ``mask`` is False; the others move down in order."""
        names = None
        if self.named:
            names = [n for n, k in zip(self.names or [], mask.tolist(), strict=True) if k]
        ids = np.ascontiguousarray(self.ids[mask])
        identity = bool(np.array_equal(ids, np.arange(len(ids))))
        # Everything computed first, then set together: a failure above leaves the map as it was.
        self._ids, self._n, self._identity = (np.zeros(0, dtype=np.int64) if identity else ids), len(ids), identity
        self._sorted, self._recent, self._recent_n = None, [], 0
        if names is not None:
            self._names_blob, self._names_tail, self._name_slot = None, names, None

    # ------------------------------------------------------------------------------ persistence
    @property
    def identity(self) -> bool:
        """Whether every id equals its slot (saved in the header, so a mapped load need not read ids)."""
        return self._identity

    def state(self) -> dict[str, np.ndarray]:
        """The arrays the file stores: ``ids`` (none while every id is its slot) and, for a named index,
        ``names.offsets`` / ``names.bytes``."""
        out = {} if self._identity else {"ids": self.ids}
        if self.named:
            blob_n = 0 if self._names_blob is None else len(self._names_blob[0]) - 1
            tail = [n.encode("utf-8") for n in self._names_tail or []]
            if self._names_blob is not None:
                offsets, data = self._names_blob
                base = int(offsets[-1])
                head = bytes(data[:base])
            else:
                offsets, base, head = np.zeros(1, dtype=np.int64), 0, b""
            lengths = np.array([len(b) for b in tail], dtype=np.int64)
            out["names.offsets"] = np.concatenate(
                [offsets[: blob_n + 1].astype(np.int64), base + np.cumsum(lengths)]
            ).astype(np.int64)
            out["names.bytes"] = np.frombuffer(head + b"".join(tail), dtype=np.uint8)
        return out

    @classmethod
    def restore(cls, arrays: dict[str, np.ndarray], n: int, next_id: int, identity: bool, name: str) -> IdMap:
        """The map of a file's arrays (``ids`` may be memory-mapped and is not read here; names are decoded
        on demand). ``identity``: the header's word that every id equals its slot."""
        out = cls()
        out._n, out.next_id, out._identity = n, int(next_id), bool(identity)
        if not identity:
            ids = arrays.get("ids")
            if ids is None or ids.dtype != np.int64 or ids.shape != (n,):
                raise QamaError(f"{name}: corrupt qama-rs index (ids section, {n} rows)")
            out._ids = ids
        if "names.offsets" in arrays:
            offsets, data = arrays["names.offsets"], arrays["names.bytes"]
            if offsets.shape != (n + 1,) or int(offsets[-1]) != len(data) or np.any(np.diff(offsets) < 1):
                raise QamaError(f"{name}: corrupt qama-rs index (names section)")
            out._names_blob, out._names_tail = (offsets, data), []
        return out

    def own(self) -> None:
        """Copies a memory-mapped ids array into memory (before the first change)."""
        if not self._identity and not self._ids.flags.writeable:
            self._ids = np.array(self._ids[: self._n])
