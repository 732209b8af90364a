"""Stored rows of one codec, in the layout its kernel scans, grouped in lists (a flat index has one list,
a partitioned index one per partition).

Rows live in two segments: a *base* (what a file held: possibly memory-mapped, read in place) and an
in-memory *tail* where additions go. Each list owns at most one extent in each: ``table[l] = (base
offset, base rows, tail offset, tail rows)``. A tail extent has spare capacity and is moved (grown by an
eighth) to the end of the tail arena when it fills, so an append writes only the new rows — into the 32-row
block layout in place for table codecs (``_core.write_block_rows``), never rebuilding what is stored; a
bulk add that knows every row's list first packs the arena once with each list's room (:meth:`reserve`).
Removal compacts each list in place (``_core.keep_block_rows``), moving a mapped list's survivors into the
tail, and can be undone (:meth:`ListStore.undo`). Saving writes every list contiguously into one base:
that same layout is what a mapped load scans.

Optional per-row ``labels`` (uint64, what searches return: the partitioned index's ids) and ``scale``
(float32 per-row factors) follow the rows everywhere. Without labels a search returns positions:
lists in order, each list's base rows then its tail rows (for one list: insertion order).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.errors import QamaError

__all__ = ["ListStore"]

BLOCK = 32


def _round(rows: int, block_rows: int) -> int:
    return -(-rows // block_rows) * block_rows


class ListStore:
    """Rows of ``row_units`` elements of ``dtype``, in blocks of ``block_rows`` rows (1: row-major)."""

    def __init__(
        self,
        dtype: Any,
        row_units: int,
        block_rows: int = 1,
        lists: int = 1,
        labelled: bool = False,
        scaled: bool = False,
    ) -> None:
        self.dtype = np.dtype(dtype)
        self.row_units = int(row_units)
        self.block_rows = int(block_rows)
        self.labelled, self.scaled = labelled, scaled
        self._base = np.zeros(0, dtype=self.dtype)
        self._base_labels = np.zeros(0, dtype=np.uint64)
        self._base_scale = np.zeros(0, dtype=np.float32)
        self._tail = np.zeros(0, dtype=self.dtype)
        self._tail_labels = np.zeros(0, dtype=np.uint64)
        self._tail_scale = np.zeros(0, dtype=np.float32)
        self._table = np.zeros((lists, 4), dtype=np.int64)  # base off, base rows, tail off, tail rows
        self._cap = np.zeros(lists, dtype=np.int64)  # tail capacity (rows) per list
        self._end = 0  # first free row of the tail arena
        self._garbage = 0  # rows of the tail arena no list uses any more
        self._max_scale = 0.0  # an upper bound of |scale| (the engine's overflow check; never lowered)
        self._core: Any = None
        self._rows: int | None = None

    # ------------------------------------------------------------------------------ description
    @property
    def lists(self) -> int:
        return len(self._table)

    @property
    def rows(self) -> int:
        if self._rows is None:
            self._rows = int(self._table[:, 1].sum() + self._table[:, 3].sum())
        return self._rows

    def counts(self) -> np.ndarray:
        """Rows per list."""
        return self._table[:, 1] + self._table[:, 3]

    @property
    def nbytes(self) -> int:
        """Bytes held: both segments (capacity included) and their labels and scales."""
        return sum(a.nbytes for a in self._arrays())

    def _arrays(self) -> list[np.ndarray]:
        out = [self._base, self._tail]
        if self.labelled:
            out += [self._base_labels, self._tail_labels]
        if self.scaled:
            out += [self._base_scale, self._tail_scale]
        return out

    def core(self) -> Any:
        """The engine's view of the rows (``_core.Store``), rebuilt after a change."""
        if self._core is None:
            table = self._table.astype(np.uint64)
            self._core = _core.Store(
                [self._base, self._tail],
                table,
                [self._base_labels, self._tail_labels] if self.labelled else None,
                [self._base_scale, self._tail_scale] if self.scaled else None,
                self._max_scale if self.scaled else None,
            )
        return self._core

    # ---------------------------------------------------------------------------------- writing
    def _changed(self) -> None:
        """After the table or an array changed: the engine's view and the row count are rebuilt."""
        self._core = None
        self._rows = None

    def _units(self, rows: int) -> int:
        return _round(rows, self.block_rows) * self.row_units

    def _grown(self, rows: int) -> int:
        """A capacity for ``rows`` rows with room to grow: 1/8 more (so appends cost amortized O(1) while
        the spare memory stays small next to the rows), at least 1024 rows, block-aligned."""
        return _round(rows + max(rows // 8, 1024), self.block_rows)

    def _ensure_arena(self, rows: int) -> None:
        """Tail arena capacity for ``rows`` rows (copies the used part when it moves)."""
        need = self._units(rows)
        if need <= len(self._tail):
            return
        units = self._units(self._grown(rows))
        grown = np.zeros(units, dtype=self.dtype)
        used = self._units(self._end)
        grown[:used] = self._tail[:used]
        rows_cap = units // self.row_units
        labels = _grow_to(self._tail_labels, self._end, rows_cap) if self.labelled else self._tail_labels
        scale = _grow_to(self._tail_scale, self._end, rows_cap) if self.scaled else self._tail_scale
        # All three replaced together: a failure above (out of memory) leaves the arena as it was.
        self._tail, self._tail_labels, self._tail_scale = grown, labels, scale

    def _reserve(self, lst: int, extra: int) -> None:
        """Room for ``extra`` more rows in list ``lst``'s tail extent: grown where it ends the arena, else
        moved to the arena's end (the old place becomes garbage, dropped by :meth:`_compact_arena`)."""
        off, n, cap = int(self._table[lst, 2]), int(self._table[lst, 3]), int(self._cap[lst])
        if n + extra <= cap:
            return
        # One list: the arena's growth rule. Many lists (a partition): 1/8 more than needed, so the spare
        # rows stay a small fraction of the stored ones while appends still cost amortized O(1).
        grown = n + extra + (n + extra) // 8
        new_cap = self._grown(n + extra) if self.lists == 1 else _round(max(grown, 8), self.block_rows)
        if cap and off + cap == self._end:  # the last extent grows in place
            self._ensure_arena(off + new_cap)
            self._cap[lst], self._end = new_cap, off + new_cap
            return
        if self._garbage > max(self._end // 8, 4096):
            self._compact_arena()
            off = int(self._table[lst, 2])
        start = _round(self._end, self.block_rows)
        self._ensure_arena(start + new_cap)
        if n:
            src, dst = self._units(off), self._units(start)
            span = self._units(n)
            self._tail[dst : dst + span] = self._tail[src : src + span]
            if self.labelled:
                self._tail_labels[start : start + n] = self._tail_labels[off : off + n]
            if self.scaled:
                self._tail_scale[start : start + n] = self._tail_scale[off : off + n]
        self._garbage += cap
        self._table[lst, 2], self._cap[lst] = start, new_cap
        self._end = start + new_cap

    def mark(self) -> np.ndarray:
        """The tail rows of every list now: :meth:`rollback` drops whatever is appended after it."""
        return self._table[:, 3].copy()

    def rollback(self, mark: np.ndarray) -> None:
        """Forgets the rows appended since :meth:`mark` (an add that failed part way). Appends only add
        rows after a list's tail rows, and moving or packing a list keeps its rows in order, so the first
        ``mark[l]`` tail rows of list ``l`` are still the ones it had."""
        self._table[:, 3] = mark
        self._changed()

    def reserve(self, extra: np.ndarray) -> None:
        """Room for ``extra[l]`` more rows in each list ``l`` before a bulk append: when some list lacks it,
        the tail arena is rebuilt once with each extent sized to its rows plus its extra (block-aligned).
        Appending the rows chunk by chunk instead moves every list that fills, again for each chunk: adding
        10M rows to 4,096 lists in 50 calls copied each row ~200 times (62 s measured)."""
        need = self._table[:, 3] + np.asarray(extra, dtype=np.int64)
        if (need > self._cap).any():
            self._compact_arena(need)
            self._changed()

    def trim(self) -> None:
        """After a bulk append: packs the tail arena when garbage and spare capacity exceed 1/8 of the rows
        (so a partition's memory is its rows plus block padding; the next append grows lists again)."""
        live = int(self._table[:, 3].sum())
        if self.lists > 1 and self._end - live > max(live // 8, 4096):
            self._compact_arena()
            self._changed()

    def _compact_arena(self, rows: np.ndarray | None = None) -> None:
        """Rewrites the tail arena with every list's extent packed (drops the garbage), each with room for
        ``rows[l]`` rows (default: its rows)."""
        old = (self._tail, self._tail_labels, self._tail_scale)
        offs = self._table[:, 2]
        caps = [_round(int(n), self.block_rows) for n in (self._table[:, 3] if rows is None else rows)]
        total = int(sum(caps))
        # Built aside and swapped in by one assignment: a failure part way (out of memory, an interrupt)
        # leaves the arena, the table and the capacities as they were.
        tail = np.zeros(self._units(max(total, 1)), dtype=self.dtype)
        rows_cap = len(tail) // self.row_units
        labels = np.zeros(rows_cap if self.labelled else 0, dtype=np.uint64)
        scale = np.zeros(rows_cap if self.scaled else 0, dtype=np.float32)
        table, cap_of = self._table.copy(), self._cap.copy()
        at = 0
        for lst, cap in enumerate(caps):
            n = int(self._table[lst, 3])
            if n:
                src, span = self._units(int(offs[lst])), self._units(n)
                tail[self._units(at) : self._units(at) + span] = old[0][src : src + span]
                if self.labelled:
                    labels[at : at + n] = old[1][offs[lst] : offs[lst] + n]
                if self.scaled:
                    scale[at : at + n] = old[2][offs[lst] : offs[lst] + n]
            table[lst, 2], cap_of[lst] = at, cap
            at += cap
        self._tail, self._tail_labels, self._tail_scale, self._table, self._cap, self._end, self._garbage = (
            tail, labels, scale, table, cap_of, at, 0
        )

    def _write(self, at: int, rows: np.ndarray) -> None:
        if self.block_rows > 1:
            _core.write_block_rows(self._tail, at, rows)
        else:
            self._tail[at * self.row_units : (at + len(rows)) * self.row_units] = rows.reshape(-1)

    def append(
        self,
        rows: np.ndarray,
        lists: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        scale: np.ndarray | None = None,
    ) -> None:
        """Appends ``rows`` (``(m, row_units)``) to their lists (``lists`` (m,); default list 0)."""
        m = len(rows)
        if not m:
            return
        rows = np.ascontiguousarray(rows, dtype=self.dtype).reshape(m, self.row_units)
        if self.scaled:
            if scale is None or scale.shape != (m,) or not np.isfinite(scale).all():
                raise QamaError(f"row scales must be {m} finite float32 values")
            self._max_scale = max(self._max_scale, float(np.max(np.abs(scale))))
        if lists is None or self.lists == 1:
            groups = [(0, np.arange(m))]
        else:
            order = np.argsort(lists, kind="stable")
            bounds = np.searchsorted(lists[order], np.arange(self.lists + 1))
            groups = [(lst, order[a:b]) for lst, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)) if b > a]
        for lst, take in groups:
            self._reserve(lst, len(take))
            at = int(self._table[lst, 2] + self._table[lst, 3])
            part = rows if len(take) == m else rows[take]
            self._write(at, part)
            if self.labelled:
                self._tail_labels[at : at + len(take)] = labels[take]
            if self.scaled:
                self._tail_scale[at : at + len(take)] = scale[take]
            self._table[lst, 3] += len(take)
        self._changed()

    # ---------------------------------------------------------------------------------- reading
    def _extent_rows(self, segment: np.ndarray, off: int, n: int) -> np.ndarray:
        """Row-major ``(n, row_units)`` copy of an extent."""
        data = segment[self._units(off) : self._units(off) + self._units(n)]
        if self.block_rows > 1:
            return _core.from_blocks(np.ascontiguousarray(data), n, self.row_units)
        return data.reshape(n, self.row_units).copy()

    def list_rows(self, lst: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(rows, labels, scale)`` of list ``lst``, row-major, base rows then tail rows."""
        b_off, b_n, t_off, t_n = (int(v) for v in self._table[lst])
        rows = np.concatenate(
            [self._extent_rows(self._base, b_off, b_n), self._extent_rows(self._tail, t_off, t_n)]
        )
        labels = (
            np.concatenate([self._base_labels[b_off : b_off + b_n], self._tail_labels[t_off : t_off + t_n]])
            if self.labelled
            else None
        )
        scale = (
            np.concatenate([self._base_scale[b_off : b_off + b_n], self._tail_scale[t_off : t_off + t_n]])
            if self.scaled
            else None
        )
        return rows, labels, scale

    def labels_of_list(self, lst: int) -> np.ndarray:
        b_off, b_n, t_off, t_n = (int(v) for v in self._table[lst])
        return np.concatenate([self._base_labels[b_off : b_off + b_n], self._tail_labels[t_off : t_off + t_n]])

    # ---------------------------------------------------------------------------------- removal
    def keep(self, masks: list[np.ndarray] | np.ndarray) -> Any:
        """Keeps, in each list, the rows whose mask entry is True (one boolean array per list over its
        rows, base then tail; or one array over all positions). Survivors keep their order. Returns an undo
        record for :meth:`undo`; a failure part way (out of memory, an interrupt) undoes itself."""
        if isinstance(masks, np.ndarray):
            counts = self.counts()
            masks = np.split(masks, np.cumsum(counts)[:-1])
        undo = _Undo(self)
        try:
            for lst, mask in enumerate(masks):
                if mask.all():
                    continue
                b_off, b_n, t_off, t_n = (int(v) for v in self._table[lst])
                base_keep, tail_keep = mask[:b_n], mask[b_n:]
                if b_n and not base_keep.all():
                    if self._base.flags.writeable:
                        undo.save(self._base, b_off, b_n, base_keep, self._base_labels, self._base_scale)
                        kept = self._keep_in(self._base, b_off, b_n, base_keep, self._base_labels, self._base_scale)
                        self._table[lst, 1] = kept
                    else:
                        # A mapped base is never written: the list's survivors move to the tail (appended
                        # after every tail row in use, so nothing there is overwritten).
                        rows, labels, scale = self.list_rows(lst)
                        self._table[lst] = (0, 0, t_off, 0)
                        self._garbage += int(self._cap[lst])  # the old tail extent is left as it is
                        self._cap[lst] = 0
                        self.append_list(lst, rows[mask], labels[mask] if self.labelled else None, scale[mask] if self.scaled else None)
                        continue
                if t_n and not tail_keep.all():
                    undo.save(self._tail, t_off, t_n, tail_keep, self._tail_labels, self._tail_scale)
                    self._table[lst, 3] = self._keep_in(self._tail, t_off, t_n, tail_keep, self._tail_labels, self._tail_scale)
        except BaseException:
            self.undo(undo)
            raise
        self._changed()
        return undo

    def undo(self, record: Any) -> None:
        """Puts back what :meth:`keep` changed (the rows it compacted in place, the list table, the arena)."""
        record.restore()
        self._changed()

    def append_list(self, lst: int, rows: np.ndarray, labels: np.ndarray | None, scale: np.ndarray | None) -> None:
        self.append(rows, np.full(len(rows), lst, dtype=np.int64), labels, scale)

    def _keep_in(
        self, segment: np.ndarray, off: int, n: int, keep: np.ndarray, labels: np.ndarray, scale: np.ndarray
    ) -> int:
        if self.block_rows > 1:
            view = segment[self._units(off) : self._units(off) + self._units(n)]
            kept = _core.keep_block_rows(view, self.row_units, np.ascontiguousarray(keep, dtype=bool))
        else:
            rows = segment[off * self.row_units : (off + n) * self.row_units].reshape(n, self.row_units)
            kept = int(keep.sum())
            rows[:kept] = rows[keep]
        if self.labelled:
            labels[off : off + kept] = labels[off : off + n][keep]
        if self.scaled:
            scale[off : off + kept] = scale[off : off + n][keep]
        return int(kept)

    # ------------------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        """Arrays for a file: ``data`` (every list contiguous, block-aligned), ``lists`` (offset, rows per
        list), and ``labels`` / ``scale`` when kept."""
        counts = self.counts()
        offsets = np.concatenate([[0], np.cumsum([_round(int(c), self.block_rows) for c in counts])]).astype(np.int64)
        if not (self._table[:, 3] == 0).all() or not np.array_equal(self._table[:, 0], offsets[:-1]):
            data = np.zeros(self._units(int(offsets[-1])), dtype=self.dtype)
            labels = np.zeros(int(offsets[-1]), dtype=np.uint64) if self.labelled else None
            scale = np.zeros(int(offsets[-1]), dtype=np.float32) if self.scaled else None
            for lst in range(self.lists):
                rows, lab, sc = self.list_rows(lst)
                at, n = int(offsets[lst]), int(counts[lst])
                if n:
                    if self.block_rows > 1:
                        block = _core.to_blocks(np.ascontiguousarray(rows))
                        data[self._units(at) : self._units(at) + len(block)] = block
                    else:
                        data[at * self.row_units : (at + n) * self.row_units] = rows.reshape(-1)
                    if labels is not None:
                        labels[at : at + n] = lab
                    if scale is not None:
                        scale[at : at + n] = sc
        else:
            data = self._base[: self._units(int(offsets[-1]))]
            labels = self._base_labels[: int(offsets[-1])] if self.labelled else None
            scale = self._base_scale[: int(offsets[-1])] if self.scaled else None
        out = {"data": data, "lists": np.stack([offsets[:-1], counts]).T.astype(np.int64).copy()}
        if labels is not None:
            out["labels"] = labels
        if scale is not None:
            out["scale"] = scale
            out["scale_max"] = np.array([self._max_scale], dtype=np.float64)
        return out

    def restore(self, arrays: dict[str, np.ndarray], name: str) -> None:
        """Serves a file's arrays (read-only views, possibly mapped) as the base, without copying."""
        data, lists = arrays.get("data"), arrays.get("lists")
        if data is None or lists is None or lists.ndim != 2 or lists.shape[1] != 2 or lists.dtype != np.int64:
            raise QamaError(f"{name}: corrupt qama-rs index (stored rows)")
        if data.dtype != self.dtype or data.ndim != 1:
            raise QamaError(f"{name}: corrupt qama-rs index (rows are {data.dtype}, the codec reads {self.dtype})")
        offs, counts = lists[:, 0], lists[:, 1]
        rows_cap = len(data) // max(self.row_units, 1)
        if (
            len(lists) != self.lists
            or (counts < 0).any()
            or (offs % self.block_rows).any()
            or (len(data) % max(self.row_units, 1))
            or any(int(o) + _round(int(c), self.block_rows) > rows_cap for o, c in zip(offs, counts, strict=True))
        ):
            raise QamaError(f"{name}: corrupt qama-rs index (list table does not fit the stored rows)")
        self._base = data
        if self.labelled:
            self._base_labels = arrays.get("labels", np.zeros(0, np.uint64))
            if self._base_labels.dtype != np.uint64 or len(self._base_labels) < rows_cap:
                raise QamaError(f"{name}: corrupt qama-rs index (labels)")
        if self.scaled:
            self._base_scale = arrays.get("scale", np.zeros(0, np.float32))
            if self._base_scale.dtype != np.float32 or len(self._base_scale) < rows_cap:
                raise QamaError(f"{name}: corrupt qama-rs index (row scales)")
            bound = arrays.get("scale_max")
            # Older files carry no bound: read it from the scales once.
            self._max_scale = float(bound[0]) if bound is not None and bound.shape == (1,) else (
                float(np.max(np.abs(self._base_scale), initial=0.0))
            )
        self._table[:, 0], self._table[:, 1] = offs, counts
        self._table[:, 2:] = 0
        self._cap[:] = 0
        self._changed()


class _Undo:
    """What :meth:`ListStore.keep` changes, to put back: copies of the parts of extents it compacts in place
    (before it writes them: from the block of the first dropped row on, as the rows before it stay), and
    the list table, capacities and arena as they were. Appends during a keep (a mapped list's survivors)
    only write past the arena's end, or into a grown copy of the arena. The copies live until the remove
    returns: at most the compacted lists' rows once more."""

    def __init__(self, store: ListStore) -> None:
        self.store = store
        self.state = (
            store._table.copy(), store._cap.copy(), store._end, store._garbage,
            store._tail, store._tail_labels, store._tail_scale,
        )  # fmt: skip
        self.extents: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, int, np.ndarray, np.ndarray | None, np.ndarray | None]] = []

    def save(
        self, segment: np.ndarray, off: int, n: int, keep: np.ndarray, labels: np.ndarray, scale: np.ndarray
    ) -> None:
        st = self.store
        first = int(np.argmin(keep))  # the first dropped row (keep has one)
        skip = first - first % st.block_rows  # whole blocks before it are not written
        lo, hi = st._units(off) + st._units(skip), st._units(off) + st._units(n)
        at, rows = off + first, n - first
        self.extents.append((
            segment, lo, segment[lo:hi].copy(), labels, at,
            labels[at : at + rows].copy() if st.labelled else None,
            scale[at : at + rows].copy() if st.scaled else None, scale,
        ))  # fmt: skip

    def restore(self) -> None:
        st = self.store
        for segment, lo, data, labels, off, saved_labels, saved_scale, scale in reversed(self.extents):
            segment[lo : lo + len(data)] = data
            if saved_labels is not None:
                labels[off : off + len(saved_labels)] = saved_labels
            if saved_scale is not None:
                scale[off : off + len(saved_scale)] = saved_scale
        (st._table, st._cap, st._end, st._garbage, st._tail, st._tail_labels, st._tail_scale) = self.state
        self.extents = []


def _grow_to(array: np.ndarray, live: int, size: int) -> np.ndarray:
    grown = np.zeros(size, dtype=array.dtype)
    grown[:live] = array[:live]
    return grown
