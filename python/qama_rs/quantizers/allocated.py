"""PCA + bit allocation: scalar Lloyd-Max codes with a different level count per principal
component, packed into bytes (mixed radix) and scored with per-query byte lookup tables.

Why. A unit embedding's variance is far from uniform over its principal components, so equal bits
per dimension waste bytes on weak directions. The error a scalar code adds to the score
``<q, x>`` is ``Σ_i q_i² λ_i D(L_i)`` (``λ_i`` the component's variance, ``D(L)`` the Lloyd-Max
distortion of an ``L``-level code on a unit Gaussian). Queries are taken to be spread like the
documents (``E[q_i²] ∝ λ_i``), so the allocation minimises ``Σ λ_i^2 D(L_i)`` under a byte budget:
reverse water-filling on the lower convex hull of ``(bits, D)``, solved greedily by marginal gain
(``weight_power`` = 1 gives the textbook isotropic-query version). Components given no levels are
dropped, so small budgets are PCA truncation plus the best code for the kept components.

Codes. Each component with ``L_i`` levels gets a digit ``0..L_i-1``; digits are packed into bytes
whose level counts multiply to at most 256 (first-fit decreasing: 8 one-bit digits, 5 trits,
4 two-bit digits, two 4-bit digits, a 6-bit digit with a 2-bit one, ...). Byte ``b`` of a document
is ``Σ_t digit_t · stride_t``. A query's table for byte ``b`` holds, for each of the 256 byte values,
``Σ_t q'_{d_t} · recon_{d_t}[digit_t]``, so the table codec computes exactly
``<q', x̂>``. Inside each group of components that share a level count, a seeded random rotation
spreads the variance evenly (every member then gets the Lloyd-Max table it was allocated for).

Nibble packing (:class:`AllocatedNibble`, :class:`AllocatedNibbleScaled`; ``packing="nibble"``). Every
component up to 16 levels sits inside one nibble and a 32/64-level component is an additive code
``coarse[d % 16] + offset[d // 16]`` opening a byte of its own (:func:`additive_levels`), so each byte's
table is exactly the sum of a low- and a high-nibble table. The engine's quantized block kernel
(the table codec's blocked scan: 32 rows per ``vpshufb``, integer bounds, exact re-scoring) then scans the codes
several times faster than the float byte tables, for the same top-k; the packing costs a little
density (3- and 6-level digits are not available), measured in ``results/frontier.md``.

Length correction (:class:`AllocatedScaled`, +4 bytes a vector). The centred, rotated residual
``r`` is coded by direction ``u = r / |r|``; the stored ``row_scale = |r| · <u, û> / |û|²`` is the
least-squares factor that makes ``row_scale · û`` closest to ``r``. Ranking by ``<q', r̂>`` equals
ranking by the estimate of ``<q, x>`` (the mean's share ``<q, μ>`` is the same for every document).
Levels are fitted with 1-D Lloyd iterations on the corpus values (documents only).
"""

from __future__ import annotations

import math

import numpy as np

from qama_rs import _core
from qama_rs.errors import QamaError
from qama_rs.quantizers.allocation import (
    LEVEL_OPTIONS,
    NIBBLE_LEVEL_OPTIONS,
    PACKINGS,
    additive_levels,
    byte_layout,
    levels_for_budget,
)
from qama_rs.quantizers.base import (
    check_embeddings,
    column_spans,
    one_piece,
    product_spans,
    require_rows,
    row_spans,
    warn_constant,
)
from qama_rs.quantizers.lloyd_max import gaussian_lloyd_max, lloyd_1d
from qama_rs.quantizers.state import (
    check_orthonormal,
    corrupt,
    flatten,
    ragged,
    state_array,
    state_float,
    state_int,
    state_str,
)

#: Least components of a block of coded coordinates (the fit computes them a block at a time).
_COORDINATE_MIN_COLUMNS = 32


def _centred(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Float64 ``x - mean`` (the same values as ``x.astype(float64) - mean``, one array fewer)."""
    c = x.astype(np.float64)
    c -= mean
    return c


def _covariance(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``c.T @ c / n`` of the centred float64 corpus ``c = x - mean``.

    Up to ``base.EXACT_ROWS`` rows: one product over the whole centred corpus, as the published numbers
    were computed (BLAS splits a product among threads and kernels by its shape, so no blocking of it
    is bit-identical); its float64 copy, twice the input's size, lives for that product only. Larger
    corpora: a sum over blocks of rows, a few MiB at a time (float rounding may differ).
    """
    n, d = x.shape
    if one_piece(n):
        c = _centred(x, mean)
        return c.T @ c / n
    cov = np.zeros((d, d), dtype=np.float64)
    for rows in product_spans(n, d, d, 8):
        c = _centred(x[rows], mean)
        cov += c.T @ c
    cov /= n
    return cov


def _orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))[None, :]


def _check_int(value, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise QamaError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        raise QamaError(f"{name} = {value}; must be in {low}..{high if high is not None else 'inf'}")
    return int(value)


class PcaTables:
    """What the PCA byte-table codecs (:class:`Allocated`, :class:`~qama_rs.quantizers.product.PcaProduct`)
    share: queries projected on the fitted ``basis``, and ``m`` code bytes plus ``factor_bytes`` a vector."""

    name: str
    #: Bytes of per-vector factors on top of the code bytes.
    factor_bytes = 0
    dim: int | None
    basis: np.ndarray

    @property
    def m(self) -> int:
        """Code bytes per vector."""
        raise NotImplementedError

    @property
    def bytes_per_vector(self) -> int:
        """Stored bytes per vector: code bytes plus per-vector factors."""
        return self.m + self.factor_bytes

    def _require_fitted(self) -> None:
        if self.dim is None:
            raise QamaError(f"{self.name}: call fit(x) before using the codec")

    def prepare_query(self, xq) -> np.ndarray:
        """Queries in the coded coordinates: ``q' = q · basis`` (the mean's share is a per-query constant)."""
        self._require_fitted()
        return check_embeddings(xq, "xq", self.dim) @ self.basis


class Allocated(PcaTables):
    """``pca_alloc``: protocol (B) byte-LUT codec, ``budget_bytes`` code bytes a vector, no factor.

    ``transform``: ``"pca"`` (principal components of the corpus, bits allocated by variance) or
    ``"rotation"`` (a seeded random rotation; every dimension then has the same variance, so the
    allocation is uniform). ``levels``: a fixed level count for every dimension (e.g. 3 for a 1.6-bit
    trit code packed 5 per byte) instead of the allocation; ``budget_bytes`` is then ignored.
    ``weight_power``: allocation weight ``λ^p`` (2: queries spread like the documents; 1: isotropic).
    ``packing``: ``"byte"`` (mixed radix over whole bytes, the densest) or ``"nibble"`` (components of
    up to 16 levels inside one nibble, 32/64-level ones as additive codes over a byte: the tables are
    nibble-separable, so the engine scans the codes with its quantized block kernel, several times
    faster; see ``nibble_tables``).
    """

    name = "pca_alloc"

    def __init__(
        self,
        budget_bytes: int = 48,
        transform: str = "pca",
        levels: int | None = None,
        weight_power: float = 2.0,
        seed: int = 0,
        packing: str = "byte",
    ) -> None:
        self.budget_bytes = _check_int(budget_bytes, "budget_bytes", self.factor_bytes + 1)
        if packing not in PACKINGS:
            raise QamaError(f"packing must be one of {PACKINGS}, got {packing!r}")
        self.packing = packing
        if transform not in ("pca", "rotation"):
            raise QamaError(f"transform must be 'pca' or 'rotation', got {transform!r}")
        self.transform = transform
        self.fixed_levels = (
            None if levels is None else _check_int(levels, "levels", 2, 256 if packing == "byte" else 16)
        )
        self.weight_power = float(weight_power)
        if not math.isfinite(self.weight_power) or self.weight_power < 0:
            raise QamaError(f"weight_power must be a finite number >= 0, got {weight_power!r}")
        self.seed = _check_int(seed, "seed", 0)
        self.dim: int | None = None

    # ------------------------------------------------------------------------------- fitting
    def fit(self, x) -> Allocated:
        """Fits the transform, the allocation and each kept component's levels on documents ``x``.

        Needs at least 2 documents; warns (``QamaWarning``) when a coded component has zero spread.
        Memory: statistics a block of columns at a time. Up to ``base.EXACT_ROWS`` documents the
        covariance and the coordinates are one product each, exactly as before (bit-identical tables;
        a float64 copy of the corpus for the covariance's duration). Larger corpora: the covariance
        summed over blocks of rows and the coordinates a few dozen components at a time, a small
        fraction of the input's size (tables may differ from a one-piece computation in float
        rounding only).
        """
        x = check_embeddings(x, "x")
        require_rows(x, 2, "x", self.name)
        n, d = x.shape
        mean = np.concatenate([x[:, cols].astype(np.float64).mean(axis=0) for cols in column_spans(n, d)])
        rng = np.random.default_rng(self.seed)
        if self.transform == "pca":
            variance, vectors = np.linalg.eigh(_covariance(x, mean))
            order = np.argsort(-variance, kind="stable")
            basis, variance = vectors[:, order], np.maximum(variance[order], 0.0)
        else:
            basis = _orthogonal(d, rng)
            squares = np.empty(n, dtype=np.float64)
            for rows in row_spans(n, d, 8):  # row by row sums: any block reproduces them
                squares[rows] = np.sum((x[rows].astype(np.float64) - mean) ** 2, axis=1)
            variance = np.full(d, float(np.mean(squares)) / d)
        if self.fixed_levels is not None:
            levels = np.full(d, self.fixed_levels, dtype=np.int64)
        else:
            options = LEVEL_OPTIONS if self.packing == "byte" else NIBBLE_LEVEL_OPTIONS
            levels = levels_for_budget(
                variance**self.weight_power, self.budget_bytes - self.factor_bytes, options, self.packing
            )
        # Equalise variance inside each group of equal level count (rotation within the group).
        for L in np.unique(levels):
            group = np.flatnonzero(levels == L)
            if L > 1 and len(group) > 1:
                basis[:, group] = basis[:, group] @ _orthogonal(len(group), rng)
        self.dim = d
        self.levels = levels
        # The float32 mean and basis are what encoding computes with, and what to_state() saves. The
        # basis keeps the memory layout eigh/QR gave it (column-major for PCA): a product's rounding
        # depends on it, and every published number was computed with it.
        self.mean = mean.astype(np.float32)
        self.basis = basis.astype(np.float32)
        self.bounds: list[np.ndarray] = [np.zeros(0, np.float32)] * d
        self.values: list[np.ndarray] = [np.zeros(1, np.float32)] * d
        # Digit of the p-th smallest value, for the additive wide codes of nibble packing (None: the
        # values ascend with the digit).
        self.orders: list[np.ndarray | None] = [None] * d
        constant = np.zeros(d, dtype=bool)
        for cols, z in self._kept_coordinates(x):
            for t, j in enumerate(range(cols.start, cols.stop)):
                L = int(levels[j])
                if L <= 1:
                    continue
                col = np.sort(z[:, t].astype(np.float64))
                constant[j] = col[0] == col[-1]
                if self.packing == "nibble" and L > 16:
                    b, v, self.orders[j] = additive_levels(col, L // 16)  # nibble-separable wide code
                else:
                    _, g = gaussian_lloyd_max(L)
                    b, v = lloyd_1d(col, col.mean() + col.std() * g, 50, 1e-9 * max(col.std(), 1e-30))
                self.bounds[j] = b.astype(np.float32)
                self.values[j] = v.astype(np.float32)
            del z  # before the next block is computed
        warn_constant(constant, self.name, "coded component")
        self._build_layout()
        return self

    def _kept_coordinates(self, x: np.ndarray):
        """``(cols, z)`` for blocks of components with some kept (``levels > 1``): ``z`` the float32
        coordinates of every document on components ``cols``, as :meth:`_coordinates` codes them (for a
        scaled codec divided by the residual's full length, measured in a first pass). Up to
        ``base.EXACT_ROWS`` documents, all components in one product."""
        n, d = x.shape
        if one_piece(n):  # one product, as the published numbers were computed (see base.EXACT_ROWS)
            yield slice(0, d), self._coordinates(x)[0]
            return
        length = None
        if self.factor_bytes:
            length = np.empty(n, dtype=np.float32)
            for rows in product_spans(n, d, d):
                length[rows] = self._coordinates(x[rows])[1]
        for cols in column_spans(n, d, 4, blocks=2, least=_COORDINATE_MIN_COLUMNS):
            if not np.any(self.levels[cols] > 1):
                continue
            basis = self.basis[:, cols]
            z = np.empty((n, cols.stop - cols.start), dtype=np.float32)
            for rows in product_spans(n, d, cols.stop - cols.start):
                r = (x[rows] - self.mean) @ basis
                z[rows] = r if length is None else r / np.maximum(length[rows], 1e-30)[:, None]
            yield cols, z

    def _build_layout(self) -> None:
        """Byte layout: members, strides and the ``(m, T, 256)`` table of decoded values."""
        self.bytes_members, strides, shifts, masks = byte_layout(self.levels, self.packing)
        # Encoding: byte = digits @ stride << shift; decoding reads each field back.
        self._strides = [st << sh for st, sh in zip(strides, shifts, strict=True)]
        m = len(self.bytes_members)
        width = max((len(b) for b in self.bytes_members), default=1)
        self._slot_dims = np.zeros((m, width), dtype=np.int64)
        self._slot_values = np.zeros((m, width, 256), dtype=np.float32)
        codes = np.arange(256)
        for b, members in enumerate(self.bytes_members):
            for t, j in enumerate(members):
                digit = (((codes >> shifts[b][t]) & masks[b][t]) // strides[b][t]) % int(self.levels[j])
                self._slot_dims[b, t] = j
                self._slot_values[b, t] = self.values[j][digit]
        # Packing in the engine: the kept components' digits by `_core.Thresholds` (a digit = the bounds
        # strictly below the value, as `np.searchsorted(side="left")`), then each byte's weighted sum.
        kept = np.flatnonzero(self.levels > 1)
        self._kept = kept
        self._thresholds = None  # the engine's object, made at the first encoding (never pickled)
        column = np.full(self.dim, 0, dtype=np.int64)
        column[kept] = np.arange(len(kept))
        self._pack_columns = np.zeros((m, width), dtype=np.int64)  # padding: column 0 with stride 0
        self._pack_strides = np.zeros((m, width), dtype=np.int32)
        for b, members in enumerate(self.bytes_members):
            self._pack_columns[b, : len(members)] = column[members]
            self._pack_strides[b, : len(members)] = np.where(self.levels[members] > 1, self._strides[b], 0)
        self._pack_orders = [(int(column[j]), o.astype(np.uint8)) for j, o in enumerate(self.orders) if o is not None]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_thresholds": None}  # engine objects are remade, not pickled

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.dim is not None and "_pack_columns" not in state:  # pickled before the engine packed codes
            self._build_layout()

    @property
    def nibble_tables(self) -> bool:
        """Whether every query table is nibble-separable (``packing="nibble"``): the index then scans
        the codes with the quantized block kernel (exact results either way)."""
        return self.packing == "nibble"

    def _coordinates(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rotated centred residuals as coded (unit length for a scaled codec) and their lengths."""
        r = (x - self.mean) @ self.basis
        length = np.linalg.norm(r, axis=1)
        if self.factor_bytes:
            r /= np.maximum(length, 1e-30)[:, None]
        return r, length

    def _kept_columns(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """What encoding needs of :meth:`_coordinates`: the coded components only (``(n, kept)``, the
        same values: the product's columns are computed alike), and for a scaled codec the lengths,
        measured before the rotation (the basis is square and orthonormal: the same length up to float32
        rounding, at a fraction of the product's cost when most components are dropped)."""
        centred = x - self.mean
        z = centred @ self.basis[:, self._kept]
        if not self.factor_bytes:
            return z, None
        length = np.sqrt(np.einsum("ij,ij->i", centred, centred))
        z /= np.maximum(length, 1e-30)[:, None]
        return z, length

    # ------------------------------------------------------------------------------ encoding
    @property
    def m(self) -> int:
        """Code bytes per vector."""
        self._require_fitted()
        return len(self.bytes_members)

    def _digit(self, j: int, column: np.ndarray) -> np.ndarray:
        """Digits of component ``j`` (``int64``) for its coded coordinates ``column``."""
        digit = np.searchsorted(self.bounds[j], column, side="left")
        return digit if self.orders[j] is None else self.orders[j][digit]

    def _digits(self, z: np.ndarray) -> np.ndarray:
        """Digits of every component, ``uint8 (n, dim)`` (0 for a dropped component)."""
        digits = np.zeros(z.shape, dtype=np.uint8)
        for j, b in enumerate(self.bounds):
            if b.size:
                digits[:, j] = self._digit(j, z[:, j])
        return digits

    def _pack(self, z: np.ndarray) -> np.ndarray:
        """Coded coordinates → ``uint8 (n, m)``: byte ``b`` is ``Σ_t digit_t · stride_t`` over its members
        (the digits from the engine's threshold quantizer; :meth:`_pack_reference` is its NumPy twin)."""
        return self._pack_kept(z[:, self._kept])

    def _pack_kept(self, kept: np.ndarray) -> np.ndarray:
        """:meth:`_pack` of the coded components' coordinates only (``(n, kept)``)."""
        if not len(self._kept):
            return np.zeros((len(kept), self.m), dtype=np.uint8)
        if self._thresholds is None:
            bounds = np.concatenate([self.bounds[j] for j in self._kept]).astype(np.float32)
            self._thresholds = _core.Thresholds(bounds, self.levels[self._kept].astype(np.uint16))
        kept = np.ascontiguousarray(kept, dtype=np.float32)
        if not np.isfinite(kept).all():  # coordinates of rows near float32's limit: as searchsorted places them
            top = np.finfo(np.float32).max
            np.nan_to_num(kept, copy=False, nan=top, posinf=top, neginf=-top)
        digits = self._thresholds.quantize(kept)
        for c, order in self._pack_orders:  # additive wide codes: the digit of the p-th smallest value
            digits[:, c] = order[digits[:, c]]
        weighted = digits[:, self._pack_columns].astype(np.int32) * self._pack_strides
        return weighted.sum(axis=2, dtype=np.int32).astype(np.uint8)

    def _pack_reference(self, z: np.ndarray) -> np.ndarray:
        """:meth:`_pack` in NumPy, one component at a time (the parity tests' reference)."""
        out = np.empty((len(z), self.m), dtype=np.uint8)
        for b, members in enumerate(self.bytes_members):
            byte = np.zeros(len(z), dtype=np.int64)
            for j, stride in zip(members, self._strides[b].tolist(), strict=True):
                byte += self._digit(j, z[:, j]) * stride
            out[:, b] = byte
        return out

    def encode(self, x) -> np.ndarray:
        """``(n, dim)`` floats → ``uint8 (n, m)`` packed codes (a block of rows at a time)."""
        self._require_fitted()
        x = check_embeddings(x, "x", self.dim)
        out = np.empty((len(x), self.m), dtype=np.uint8)
        for rows in product_spans(len(x), self.dim, self.dim):  # one piece up to EXACT_ROWS
            z = self._kept_columns(x[rows])[0]
            for sub in row_spans(len(z), self.dim):  # digits row by row: any block is exact
                out[rows][sub] = self._pack_kept(z[sub])
        return out

    def decode(self, codes) -> np.ndarray:
        """Packed codes → float32 ``(n, dim)`` coded coordinates ``û`` (zero on dropped components)."""
        self._require_fitted()
        codes = _check_codes(codes, self.m)
        out = np.zeros((len(codes), self.dim), dtype=np.float32)
        for b in range(self.m):
            members = self.bytes_members[b]
            out[:, self._slot_dims[b, : len(members)]] = self._slot_values[b, : len(members)][
                :, codes[:, b]
            ].T
        return out

    def query_luts(self, xq) -> np.ndarray:
        """Float32 ``(nq, m, 256)``: ``lut[q, b, c] = Σ_t q'[d_t] · value_t(c)`` over byte ``b``'s members."""
        q = self.prepare_query(xq)
        luts = np.einsum("qmt,mtc->qmc", q[:, self._slot_dims], self._slot_values, optimize=True)
        return np.ascontiguousarray(luts, dtype=np.float32)

    def projection(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The query tables as the engine builds them (``_core.TableCodec.projected``): ``(basis, slot_dims,
        slot_values)`` with ``basis`` float32 ``(d, w)`` the kept components' columns, and byte ``b``'s
        table ``Σ_t (q · basis)[slot_dims[b, t]] · slot_values[b, t]`` (``-1``: an empty slot). Byte
        packing gives 256-entry slots ``(m, T, 256)``; nibble packing 16-entry slots per half of the byte
        ``(m, 2, T, 16)`` (low nibble, high nibble), the byte's table the sum of its two halves. A wide
        additive component (more than 16 levels) is split into its coarse (low) and offset (high) parts."""
        self._require_fitted()
        kept = np.flatnonzero(self.levels > 1)
        column = np.full(self.dim, -1, dtype=np.int64)
        column[kept] = np.arange(len(kept))
        basis = np.ascontiguousarray(self.basis[:, kept], dtype=np.float32)
        members = [[column[j] for j in b] for b in self.bytes_members]
        if self.packing == "byte":
            width = max((len(b) for b in members), default=1)
            dims = np.full((self.m, width), -1, dtype=np.int64)
            values = np.zeros((self.m, width, 256), dtype=np.float32)
            for b, cols in enumerate(members):
                dims[b, : len(cols)] = cols
                values[b, : len(cols)] = self._slot_values[b, : len(cols)]
            return basis, dims, values
        halves: list[tuple[list, list]] = []  # per byte: (low slots, high slots) of (column, 16 values)
        for b, cols in enumerate(members):
            low, high = [], []
            for t, col in enumerate(cols):
                table = self._slot_values[b, t]
                if np.array_equal(table, np.tile(table[:16], 16)):  # a function of the low nibble
                    low.append((col, table[:16]))
                elif np.array_equal(table, np.repeat(table[::16], 16)):  # of the high nibble
                    high.append((col, table[::16]))
                else:  # additive wide code: coarse[v & 15] + offset[v >> 4]
                    low.append((col, table[:16]))
                    high.append((col, table[::16] - table[0]))
            halves.append((low, high))
        width = max((max(len(lo), len(hi)) for lo, hi in halves), default=1)
        dims = np.full((self.m, 2, width), -1, dtype=np.int64)
        values = np.zeros((self.m, 2, width, 16), dtype=np.float32)
        for b, pair in enumerate(halves):
            for h, slots in enumerate(pair):
                for t, (col, table) in enumerate(slots):
                    dims[b, h, t], values[b, h, t] = col, table
        return basis, dims, values

    # ----------------------------------------------------------------------------- persistence
    def to_state(self) -> dict:
        """The fitted codec (see :mod:`qama_rs.quantizers.state`): parameters as JSON-ready scalars,
        tables as arrays of the dtypes encoding computes with — ``mean`` float32 ``(d,)``, ``basis``
        float32 (``basis_transposed``: the array is ``basis.T``, kept so because the codec's basis is
        column-major), ``levels`` int64 ``(d,)``, and ``bounds`` / ``values`` (float32) and ``orders``
        (int64; empty for a component whose values ascend) flat with ``*_offsets``."""
        self._require_fitted()
        transposed = not self.basis.flags.c_contiguous
        bounds, bounds_offsets = flatten(self.bounds, np.float32)
        values, values_offsets = flatten(self.values, np.float32)
        orders, orders_offsets = flatten([np.zeros(0) if o is None else o for o in self.orders], np.int64)
        return {
            "class": type(self).__name__,
            "budget_bytes": self.budget_bytes,
            "transform": self.transform,
            "fixed_levels": self.fixed_levels,
            "weight_power": self.weight_power,
            "seed": self.seed,
            "packing": self.packing,
            "mean": np.ascontiguousarray(self.mean, dtype=np.float32),
            "basis": np.ascontiguousarray(self.basis.T if transposed else self.basis, dtype=np.float32),
            "basis_transposed": transposed,
            "levels": np.ascontiguousarray(self.levels, dtype=np.int64),
            "bounds": bounds,
            "bounds_offsets": bounds_offsets,
            "values": values,
            "values_offsets": values_offsets,
            "orders": orders,
            "orders_offsets": orders_offsets,
        }

    @classmethod
    def from_state(cls, state: dict):
        """The codec of :meth:`to_state` (or of a state saved before arrays, with nested lists). Keeps
        read-only views of the arrays; a bad state raises ``QamaError`` ("corrupt saved state")."""
        owner = cls.__name__
        if not isinstance(state, dict):
            raise corrupt(owner, f"a {type(state).__name__}, expected a dict")
        if state.get("class", owner) != owner:
            raise corrupt(owner, f"it holds a {state.get('class')!r}")
        codec = cls.__new__(cls)
        codec.budget_bytes = state_int(state, "budget_bytes", owner, cls.factor_bytes + 1)
        codec.transform = state_str(state, "transform", owner, ("pca", "rotation"))
        codec.fixed_levels = state_int(state, "fixed_levels", owner, 2, 256, optional=True)
        codec.weight_power = state_float(state, "weight_power", owner, 0.0)
        codec.seed = state_int(state, "seed", owner)
        codec.packing = state_str(state, "packing", owner, PACKINGS, "byte")
        codec.mean = state_array(state, "mean", owner, np.float32, ndim=1)
        d = codec.mean.shape[0]
        if d < 1:
            raise corrupt(owner, "empty mean")
        basis = state_array(state, "basis", owner, np.float32, shape=(d, d))
        if state.get("basis_transposed", False) not in (True, False):
            raise corrupt(owner, f"basis_transposed = {state.get('basis_transposed')!r}")
        codec.basis = basis.T if state.get("basis_transposed", False) else basis
        check_orthonormal(codec.basis, owner)
        codec.levels = state_array(state, "levels", owner, np.int64, shape=(d,))
        codec.bounds = ragged(state, "bounds", owner, np.float32, d)
        codec.values = ragged(state, "values", owner, np.float32, d)
        orders = ragged(state, "orders", owner, np.int64, d, optional=True)
        codec.orders = [o if len(o) else None for o in orders]
        for j in range(d):
            if not _consistent_levels(codec, j):
                raise corrupt(owner, f"the tables of component {j} do not match its {codec.levels[j]} levels")
            order = codec.orders[j]
            if order is not None and not np.array_equal(np.sort(order), np.arange(len(codec.values[j]))):
                raise corrupt(owner, f"the order of component {j} is not a permutation of its values")
        codec.dim = d
        try:
            codec._build_layout()
        except QamaError as err:
            raise corrupt(owner, str(err)) from None
        return codec

    def __repr__(self) -> str:
        if self.dim is None:
            return f"{type(self).__name__}(budget_bytes={self.budget_bytes}, unfitted)"
        counts = {int(L): int((self.levels == L).sum()) for L in np.unique(self.levels)}
        packing = ", packing='nibble'" if self.packing == "nibble" else ""
        return f"{type(self).__name__}(bytes={self.bytes_per_vector}, levels={counts}{packing})"


class AllocatedScaled(Allocated):
    """``pca_alloc_scaled``: :class:`Allocated` coding each residual's direction, plus a float32
    least-squares length factor ``row_scale`` (4 bytes, counted in ``budget_bytes``)."""

    name = "pca_alloc_scaled"
    factor_bytes = 4

    def row_scale(self, x) -> np.ndarray:
        """Float32 ``(n,)``: ``|r| · <u, û> / |û|²`` (0 for a vector whose code decodes to zero)."""
        return self.encode_with_scale(x)[1]

    def encode_with_scale(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(encode(x), row_scale(x))`` in one pass over ``x`` (each block of rows coded once)."""
        self._require_fitted()
        x = check_embeddings(x, "x", self.dim)
        codes = np.empty((len(x), self.m), dtype=np.uint8)
        scale = np.empty(len(x), dtype=np.float32)
        for rows in product_spans(len(x), self.dim, self.dim):  # one piece up to EXACT_ROWS
            coordinates, lengths = self._kept_columns(x[rows])
            # The rest is row by row arithmetic: any block of rows is exact, so small ones bound memory.
            for sub in row_spans(len(coordinates), self.dim, 16):
                u, length, block = coordinates[sub], lengths[sub], codes[rows][sub]
                block[:] = self._pack_kept(u)
                u_hat = self.decode(block)[:, self._kept]  # zero on the dropped components
                energy = np.sum(u_hat.astype(np.float64) ** 2, axis=1)
                dot = np.sum(u.astype(np.float64) * u_hat, axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    scale[rows][sub] = np.where(energy > 0, length * dot / energy, 0.0)
        return codes, scale


class AllocatedNibble(Allocated):
    """``pca_nibble``: :class:`Allocated` with nibble packing (up to 16 levels a component inside one
    nibble, 32/64 levels as additive codes), searched by the engine's quantized block kernel."""

    name = "pca_nibble"

    def __init__(
        self,
        budget_bytes: int = 48,
        transform: str = "pca",
        levels: int | None = None,
        weight_power: float = 2.0,
        seed: int = 0,
    ) -> None:
        super().__init__(budget_bytes, transform, levels, weight_power, seed, packing="nibble")


class AllocatedNibbleScaled(AllocatedNibble, AllocatedScaled):
    """``pca_nibble_scaled``: :class:`AllocatedNibble` plus the length factor of :class:`AllocatedScaled`
    (4 bytes, ``row_scale``)."""

    name = "pca_nibble_scaled"


class TritRotation(AllocatedScaled):
    """``trit_rotation``: 1.6-bit asymmetric code: random rotation, 3 Lloyd-Max levels on every
    dimension packed 5 trits per byte (77 bytes at 384 d) and the length factor (4 bytes)."""

    name = "trit_rotation"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(budget_bytes=5, transform="rotation", levels=3, seed=seed)


def _consistent_levels(codec: Allocated, j: int) -> bool:
    """A saved component's tables agree: ``levels`` values (one for a dropped component), one bound fewer,
    ascending bounds, values ascending unless an ``order`` permutation (additive codes) says otherwise."""
    L, bounds, values, order = int(codec.levels[j]), codec.bounds[j], codec.values[j], codec.orders[j]
    if L < 1 or L > 256 or len(values) != max(L, 1) or len(bounds) != (L - 1 if L > 1 else 0):
        return False
    if np.any(np.diff(bounds) < 0):
        return False
    return order is not None or not np.any(np.diff(values) < 0)


def _check_codes(codes, m: int) -> np.ndarray:
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
        raise QamaError("codes must be a uint8 numpy array from encode()")
    if codes.ndim != 2 or codes.shape[1] != m:
        raise QamaError(f"codes must have shape (n, {m}), got {codes.shape}")
    return codes
