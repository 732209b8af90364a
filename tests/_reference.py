"""Pure-NumPy reference of the Rust engine, written for clarity, not speed.

The parity tests compare every `qama_rs._core` operation (the thermometer functions, and the codecs
``HammingCodec``, ``TableCodec``, ``FloatCodec``, ``Float16Codec`` over a ``Store``) with these
functions. Bit order of thermometer codes (the one contract): dimension ``j`` with ``L_j`` levels owns
``L_j - 1`` consecutive stream bits; stream bit ``p`` of that group is set iff the code is ``> p``;
stream bit ``b`` is bit ``b % 64`` of word ``b // 64``, i.e. ``np.packbits(bits, bitorder="little")``
read as little-endian uint64.
"""

from __future__ import annotations

import numpy as np


def _offsets(levels: np.ndarray) -> np.ndarray:
    """First stream bit of each dimension, plus the total at the end."""
    return np.concatenate([[0], np.cumsum(np.asarray(levels, dtype=np.int64) - 1)])


def _dim_of_bit(levels: np.ndarray) -> np.ndarray:
    """For each stream bit (= each threshold), the dimension that owns it."""
    levels = np.asarray(levels, dtype=np.int64)
    return np.repeat(np.arange(len(levels)), levels - 1)


def quantize(x: np.ndarray, thresholds: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Codes ``uint8 (n, d)``: how many of its dimension's thresholds each value strictly exceeds."""
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("x contains a non-finite value")
    above = x[:, _dim_of_bit(levels)] > np.asarray(thresholds, dtype=np.float32)[None, :]
    return np.add.reduceat(above.astype(np.int64), _offsets(levels)[:-1], axis=1).astype(np.uint8)


def thermometer_bits(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """0/1 stream bits ``uint8 (n, sum(levels - 1))`` of codes ``(n, d)``."""
    dim_of_bit = _dim_of_bit(levels)
    position = np.arange(len(dim_of_bit)) - _offsets(levels)[dim_of_bit]
    return (np.asarray(codes)[:, dim_of_bit] > position[None, :]).astype(np.uint8)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Packs 0/1 bytes ``(n, nbits)`` into ``uint64 (n, ceil(nbits / 64))``, zero-padded."""
    bits = np.asarray(bits, dtype=np.uint8)
    n, nbits = bits.shape
    words = -(-nbits // 64)
    packed = np.packbits(bits, axis=1, bitorder="little")
    padded = np.zeros((n, words * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view("<u8").astype(np.uint64)


def unpack_bits(words: np.ndarray, nbits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``(n, words)`` to 0/1 bytes ``(n, nbits)``."""
    as_bytes = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, count=nbits, bitorder="little")


def expand(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Thermometer-expands and packs codes ``(n, d)`` into ``uint64 (n, words)``."""
    return pack_bits(thermometer_bits(codes, levels))


def collapse(packed: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Levels ``uint8 (n, d)`` of packed thermometer codes (assumed well formed)."""
    bits = unpack_bits(packed, int(_offsets(levels)[-1])).astype(np.int64)
    return np.add.reduceat(bits, _offsets(levels)[:-1], axis=1).astype(np.uint8)


def encode(x: np.ndarray, thresholds: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``quantize`` then ``expand``."""
    return expand(quantize(x, thresholds, levels), levels)


def prefix_mask(words: int, nbits: int) -> np.ndarray:
    """``uint64 (words,)`` with the first ``nbits`` stream bits set."""
    return pack_bits(np.arange(words * 64)[None, :] < nbits)[0]


def hamming_distances(queries: np.ndarray, database: np.ndarray, nbits: int | None = None) -> np.ndarray:
    """All-pairs Hamming distances ``int32 (q, n)`` over the first ``nbits`` bits (default all)."""
    words = queries.shape[1]
    mask = prefix_mask(words, words * 64 if nbits is None else nbits)
    out = np.empty((len(queries), len(database)), dtype=np.int32)
    for i, query in enumerate(queries):
        out[i] = np.bitwise_count((database ^ query) & mask).sum(axis=1, dtype=np.int64)
    return out


def search(
    queries: np.ndarray, database: np.ndarray, k: int, nbits: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k: ``(distances int32, ids int64)`` of shape ``(q, min(k, n))``, ascending by
    distance, ties by lower row number (a stable sort keeps row order among equal distances)."""
    distances = hamming_distances(queries, database, nbits)
    kk = min(k, len(database))
    order = np.argsort(distances, axis=1, kind="stable")[:, :kk]
    return np.take_along_axis(distances, order, axis=1), order.astype(np.int64)


# ------------------------------------------------------------------ table scoring (TableCodec)
# Compact codes (`pack_codes`): field j (the code of dimension j, `bits` bits) at bit j * bits of the row's
# little-endian byte stream, rows zero-padded to whole bytes. Scores: per query one float32 table
# per code byte, T[i][v] = sum over the dimensions j of byte i, ascending, of q_j * recon[j][field_j(v)]
# (from 0.0), then score = sum over bytes i = 0, 1, ... of T[i][byte_i] (from 0.0), all in float32:
# the engine computes exactly these sums in exactly this order, so the comparison is bit for bit.
# (`TableCodec.recon` builds these tables; `TableCodec.given` takes them from the caller: `lut_scores`.)


def _bits_of(recon: np.ndarray) -> int:
    levels = recon.shape[1]
    bits = {2: 1, 4: 2, 16: 4, 256: 8}.get(levels)
    if bits is None:
        raise ValueError(f"recon must have 2, 4, 16 or 256 columns, got {levels}")
    return bits


def asym_row_bytes(dims: int, bits: int) -> int:
    """Bytes per packed row: ``ceil(dims * bits / 8)``."""
    return -(-dims * bits // 8)


def asym_pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Packs ``uint8 (n, dims)`` codes (each ``< 2^bits``) into ``uint8 (n, row_bytes)``."""
    codes = np.asarray(codes, dtype=np.uint8)
    n, dims = codes.shape
    per_byte = 8 // bits
    padded = np.zeros((n, asym_row_bytes(dims, bits) * per_byte), dtype=np.uint16)
    padded[:, :dims] = codes
    shifts = (np.arange(per_byte) * bits).astype(np.uint16)
    fields = padded.reshape(n, asym_row_bytes(dims, bits), per_byte) << shifts
    return np.bitwise_or.reduce(fields, axis=2).astype(np.uint8)


def asym_unpack(packed: np.ndarray, dims: int, bits: int) -> np.ndarray:
    """Inverse of :func:`asym_pack`: ``uint8 (n, row_bytes)`` back to ``uint8 (n, dims)``."""
    packed = np.asarray(packed, dtype=np.uint8)
    per_byte = 8 // bits
    shifts = (np.arange(per_byte) * bits).astype(np.uint8)
    fields = (packed[:, :, None] >> shifts) & np.uint8((1 << bits) - 1)
    return fields.reshape(len(packed), packed.shape[1] * per_byte)[:, :dims]


def asym_byte_luts(query: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """The float32 tables ``(row_bytes, 256)`` of one query (``recon`` is ``(dims, 2^bits)``)."""
    query = np.asarray(query, dtype=np.float32)
    recon = np.asarray(recon, dtype=np.float32)
    bits = _bits_of(recon)
    dims, levels = recon.shape
    per_byte = 8 // bits
    row_bytes = asym_row_bytes(dims, bits)
    values = np.arange(256)
    tables = np.zeros((row_bytes, 256), dtype=np.float32)
    for f in range(per_byte):
        j = np.arange(row_bytes) * per_byte + f
        valid = j < dims
        field = (values >> (f * bits)) & (levels - 1)
        tables[valid] += query[j[valid], None] * recon[j[valid]][:, field]
    return tables


def asym_scores(queries: np.ndarray, recon: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """All asymmetric scores ``float32 (q, n)`` of packed rows, in the engine's summation order."""
    packed = np.asarray(packed, dtype=np.uint8)
    out = np.empty((len(queries), len(packed)), dtype=np.float32)
    for i, query in enumerate(np.asarray(queries, dtype=np.float32)):
        tables = asym_byte_luts(query, recon)
        scores = np.zeros(len(packed), dtype=np.float32)
        for byte, table in enumerate(tables):
            scores += table[packed[:, byte]]
        out[i] = scores
    return out


def asym_reconstruct(codes: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Float32 vectors ``(n, dims)`` the codes ``(n, dims)`` stand for: ``recon[j, codes[:, j]]``."""
    codes = np.asarray(codes)
    return np.asarray(recon, dtype=np.float32)[np.arange(codes.shape[1]), codes]


def top_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of a score matrix ``(q, n)``: scores descending, ties by lower column (stable sort)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]
    return np.take_along_axis(scores, order, axis=1), order.astype(np.int64)


def asym_search(
    queries: np.ndarray, recon: np.ndarray, packed: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact asymmetric top-k: ``(scores float32, ids int64)``, both ``(q, min(k, n))``."""
    return top_scores(asym_scores(queries, recon, packed), k)


def asym_to_blocks(packed: np.ndarray) -> np.ndarray:
    """Block layout (1-D): blocks of 32 rows, byte ``i`` of row ``r`` at ``i * 32 + r``."""
    packed = np.asarray(packed, dtype=np.uint8)
    n, row_bytes = packed.shape
    blocks = -(-n // 32)
    padded = np.zeros((blocks * 32, row_bytes), dtype=np.uint8)
    padded[:n] = packed
    return padded.reshape(blocks, 32, row_bytes).transpose(0, 2, 1).reshape(-1)


def canonical_zero(scores: np.ndarray) -> np.ndarray:
    """``-0.0`` as ``+0.0`` (the engine's selection ties them and returns ``+0.0``)."""
    return np.asarray(scores, dtype=np.float32) + np.float32(0.0)


def asym_scores_scaled(
    queries: np.ndarray, recon: np.ndarray, packed: np.ndarray, row_scale: np.ndarray | None
) -> np.ndarray:
    """:func:`asym_scores` times ``row_scale`` per row: one float32 product, like the engine."""
    scores = asym_scores(queries, recon, packed)
    if row_scale is None:
        return scores
    return scores * np.asarray(row_scale, dtype=np.float32)[None, :]


def lut_scores(luts: np.ndarray, codes: np.ndarray, row_scale: np.ndarray | None = None) -> np.ndarray:
    """Byte-LUT scores ``float32 (nq, n)``: ``Σ_b luts[q, b, codes[i, b]]`` summed over ``b`` in order
    from 0.0 in float32, times ``row_scale[i]`` when given (the engine's order, bit for bit)."""
    luts = np.asarray(luts, dtype=np.float32)
    codes = np.asarray(codes, dtype=np.uint8)
    out = np.zeros((luts.shape[0], codes.shape[0]), dtype=np.float32)
    for b in range(codes.shape[1]):
        out += luts[:, b, :][:, codes[:, b]]
    if row_scale is not None:
        out *= np.asarray(row_scale, dtype=np.float32)[None, :]
    return out


def projected_tables(
    queries: np.ndarray, basis: np.ndarray, slot_dims: np.ndarray, slot_values: np.ndarray
) -> np.ndarray:
    """The byte tables ``float32 (nq, m, 256)`` ``TableCodec.projected`` builds, in its order: ``q' = q
    basis`` summed over ``q``'s values in order (from 0.0); byte slots ``slot_values (m, T, 256)``: table
    ``b`` is the sum over slots ``t`` in order of ``q'[slot_dims[b, t]] * slot_values[b, t]`` (from 0.0,
    ``-1`` an empty slot); nibble slots ``(m, 2, T, 16)``: halves ``A`` (low nibble) and ``B`` (high
    nibble) summed that way, then ``table[v] = A[v & 15] + B[v >> 4]`` (one float32 add)."""
    queries = np.asarray(queries, dtype=np.float32)
    basis = np.asarray(basis, dtype=np.float32)
    slot_values = np.asarray(slot_values, dtype=np.float32)
    split = slot_values.ndim == 4
    m = slot_values.shape[0]
    out = np.zeros((len(queries), m, 256), dtype=np.float32)

    def summed(qp, dims, values):
        acc = np.zeros(values.shape[-1], dtype=np.float32)
        for d, v in zip(dims.tolist(), values, strict=True):
            if d >= 0:
                acc += qp[d] * v  # float32 scalar x float32 row: one rounded product, one rounded add
        return acc

    for i, q in enumerate(queries):
        qp = np.zeros(basis.shape[1], dtype=np.float32)
        for qj, row in zip(q, basis, strict=True):
            qp += qj * row
        for b in range(m):
            if split:
                low = summed(qp, slot_dims[b, 0], slot_values[b, 0])
                high = summed(qp, slot_dims[b, 1], slot_values[b, 1])
                out[i, b] = (high[:, None] + low[None, :]).reshape(256)  # entry hi * 16 + lo
            else:
                out[i, b] = summed(qp, slot_dims[b], slot_values[b])
    return out


def top_scores_canonical(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_scores` after :func:`canonical_zero` (``-0.0`` and ``+0.0`` tie, lower id first)."""
    return top_scores(canonical_zero(scores), k)


# ----------------------------------------------------------- float scoring (FloatCodec, Float16Codec)
def float_scores(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Inner products ``float32 (q, n)`` in the engine's order: eight float32 partial sums over the
    dimensions ``j ≡ l (mod 8)`` of the whole chunks of 8, combined as ``((a0 + a4) + (a2 + a6)) +
    ((a1 + a5) + (a3 + a7))``, then the tail dimensions added one by one; bit for bit."""
    queries = np.asarray(queries, dtype=np.float32)
    vectors = np.asarray(vectors, dtype=np.float32)
    d = vectors.shape[1]
    whole = d // 8 * 8
    out = np.empty((len(queries), len(vectors)), dtype=np.float32)
    for i, query in enumerate(queries):
        acc = np.zeros((len(vectors), 8), dtype=np.float32)
        for c in range(0, whole, 8):
            acc += vectors[:, c : c + 8] * query[c : c + 8]
        s = ((acc[:, 0] + acc[:, 4]) + (acc[:, 2] + acc[:, 6])) + (
            (acc[:, 1] + acc[:, 5]) + (acc[:, 3] + acc[:, 7])
        )
        for j in range(whole, d):
            s += vectors[:, j] * query[j]
        out[i] = s
    return out


# ----------------------------------------------------------------- selection with labels and filters
def top_labelled(
    scores: np.ndarray,
    labels: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    width: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The codecs' selection: per query the best ``k`` of its candidates ``scores (q, m)`` (labels
    ``(m,)`` or ``(q, m)``), by descending score (``-0.0`` ties ``+0.0``), ties by the lower label,
    only labels in ``allowed`` (sorted labels, None: all); ``(scores float32, labels int64)`` of
    ``width`` columns (default ``min(k, m)``), ``-inf`` / ``-1`` past the results found."""
    scores = canonical_zero(np.atleast_2d(scores))
    nq, m = scores.shape
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), (nq, m))
    width = min(k, m) if width is None else width
    out_s = np.full((nq, width), -np.inf, dtype=np.float32)
    out_i = np.full((nq, width), -1, dtype=np.int64)
    for i in range(nq):
        keep = np.ones(m, dtype=bool) if allowed is None else np.isin(labels[i], allowed)
        s, lab = scores[i][keep], labels[i][keep]
        order = np.lexsort((lab, -s))[: min(k, width)]
        out_s[i, : len(order)], out_i[i, : len(order)] = s[order], lab[order]
    return out_s, out_i


def search_lists(
    scores: np.ndarray,
    lists: list[np.ndarray],
    order: np.ndarray,
    nprobe: int,
    k: int,
    labels: np.ndarray,
    bias: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``search_lists`` of the codecs: ``scores (q, n)`` of every stored row, ``lists[l]`` the rows of
    list ``l``, ``order (q, w)`` each query's lists; a query scans its first ``nprobe`` lists, then
    more while fewer than ``min(k, n)`` allowed rows were found; a row of the ``j``-th list scores
    ``fl(score + bias[q, j])``; the best ``min(k, n)`` as :func:`top_labelled`."""
    scores = np.asarray(scores, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    nq, n = scores.shape
    width = min(k, n)
    out_s = np.full((nq, width), -np.inf, dtype=np.float32)
    out_i = np.full((nq, width), -1, dtype=np.int64)
    for i in range(nq):
        rows, got, found = [], [], 0
        for j, lst in enumerate(order[i]):
            if j >= nprobe and found >= width:
                break
            part = scores[i, lists[lst]]
            if bias is not None and bias[i, j] != 0:
                part = part + np.float32(bias[i, j])
            rows.append(lists[lst])
            got.append(part)
            found += len(lists[lst]) if allowed is None else int(np.isin(labels[lists[lst]], allowed).sum())
        if rows:
            r = np.concatenate(rows)
            s, ids = top_labelled(np.concatenate(got)[None], labels[r], k, allowed, width)
            out_s[i], out_i[i] = s[0], ids[0]
    return out_s, out_i
