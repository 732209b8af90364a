"""What the binding fuzzer passes: Hypothesis strategies for arguments of every kind, wrong in one way
or another (dtype, rank, layout, byte order, read-only, huge shapes, non-arrays, ``Store`` / ``Plan`` /
``Filter`` objects that do not fit), valid arguments built from a few drawn sizes so calls reach the
kernels (codecs, their queries and list stores included), and value-level corruptions of them."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from _fuzz_signatures import F32, I64, ISAS, LAYOUTS, QUERY_KINDS, STATICS, U8, U16, U64
from qama_rs import _core

# Axis lengths: small ones shared across arguments (so shapes often agree and calls get deep), the
# table widths the kernels care about, and huge lengths used only beside a zero-length axis.
SMALL = (0, 1, 2, 3, 4, 5, 8, 16, 64, 256)
HUGE = (2**31, 2**40, 2**50)  # NumPy refuses empty shapes whose other axes overflow bytes
INTS = (-(2**70), -(2**63), -1, 0, 1, 2, 3, 4, 7, 8, 9, 16, 63, 64, 65, 256, 2**31, 2**63 - 1, 2**64, 2**100)
DTYPES = (np.uint8, np.uint16, np.uint64, np.int64, np.float32, np.float64, np.int32, np.bool_)


@st.composite
def arrays(draw, dtype, ndim):
    """An array meant to be ``dtype`` of rank ``ndim``, sometimes wrong in one way."""
    fault = draw(
        st.sampled_from(
            ["none"] * 6
            + ["dtype", "rank", "strided", "fortran", "swapped", "readonly", "huge", "list", "scalar"]
        )
    )
    rank = draw(st.integers(0, 4)) if fault == "rank" else ndim
    shape = [draw(st.sampled_from(SMALL)) for _ in range(rank)]
    if fault == "huge" and rank >= 2:
        # Near the size limits without memory: one axis huge, another empty.
        at = draw(st.integers(0, rank - 1))
        shape[at] = draw(st.sampled_from(HUGE))
        shape[(at + 1) % rank] = 0
    else:
        shape = [min(s, 64) if i < rank - 1 else s for i, s in enumerate(shape)]
    kind = draw(st.sampled_from(DTYPES)) if fault == "dtype" else dtype
    if fault == "huge" and rank >= 2:
        array = np.zeros(shape, dtype=kind)
    else:
        array = values(draw, kind, shape, draw(st.integers(0, 2**32 - 1)))
    if fault == "strided" and array.ndim and array.size:
        array = np.repeat(array, 2, axis=-1)[..., ::2]
    elif fault == "fortran" and array.ndim >= 2:
        array = np.asfortranarray(array)
    elif fault == "swapped" and array.dtype.itemsize > 1:
        array = array.astype(array.dtype.newbyteorder())
    elif fault == "readonly":
        array.flags.writeable = False
    elif fault == "list":
        return array.tolist()
    elif fault == "scalar":
        return draw(st.sampled_from([None, 3, "x", 2.5]))
    return array


def values(draw, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape)) if shape else 1
    mode = draw(st.sampled_from(["small", "full", "special"]))
    if np.issubdtype(dtype, np.floating):
        if mode == "special":
            pool = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0, -0.0, 1e-45, 1.0], dtype=dtype)
            out = rng.choice(pool, size=size)
        else:
            out = rng.normal(scale=1.0 if mode == "small" else 1e4, size=size)
        return np.asarray(out, dtype=dtype).reshape(shape)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=size).astype(bool).reshape(shape)
    info = np.iinfo(dtype)
    if mode == "small":
        out = rng.integers(0, 4, size=size)
    elif mode == "special":
        out = rng.choice(np.array([info.min, info.max, 0, 1, 2, min(255, info.max)], dtype=dtype), size=size)
    else:
        out = rng.integers(info.min, info.max, size=size, endpoint=True, dtype=dtype)
    return np.asarray(out).astype(dtype).reshape(shape)


@st.composite
def wrong_stores(draw):
    """A ``Store`` that does not fit the codec it is passed to (another element type or row width, rows
    past its arrays, more lists, or nothing at all), or not a ``Store`` at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from([None, 3, "store", np.zeros((3, 2), U8), [np.zeros(3, U8)]]))
    dtype = draw(st.sampled_from([U8, U16, U64, F32]))
    n = draw(st.integers(0, 70))
    lists = draw(st.integers(0, 3))
    units = draw(st.sampled_from([0, 1, 3, 40, 300]))
    shape = (units,) if draw(st.booleans()) else (draw(st.sampled_from([0, 1, 3, 40])), units)
    offsets = np.array([[draw(st.sampled_from([0, 1, 32, 2**40])), n, 0, 0] for _ in range(lists)], dtype=U64)
    return _core.Store([np.zeros(shape, dtype), np.zeros(0, dtype)], offsets.reshape(lists, 4))


@st.composite
def wrong_plans(draw):
    """A ``Plan`` of other queries, of lists the store may not have, of huge or zero ``nprobe``, with or
    without biases (huge ones too), or not a ``Plan`` at all."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([None, 3, np.zeros((1, 1), I64), (np.zeros((1, 1), I64), 1)]))
    nq, width = draw(st.integers(0, 5)), draw(st.integers(0, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    first = draw(st.sampled_from([0, 0, 2, 2**40]))  # lists first..first + 7, distinct per query
    lists = np.array([rng.permutation(8)[:width] + first for _ in range(nq)], I64).reshape(nq, width)
    bias = None
    if draw(st.booleans()):
        bias = rng.normal(scale=draw(st.sampled_from([1.0, 1e30, 1e38])), size=lists.shape).astype(F32)
    return _core.Plan(np.ascontiguousarray(lists), draw(st.sampled_from([0, 1, 2, 2**63 - 1, 2**70])), bias)


@st.composite
def filters(draw):
    """A ``Filter`` (a bitmap or sorted labels), None, or not a ``Filter`` at all."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["none", "bits", "labels", "wrong"]))
    if kind == "bits":
        return _core.Filter.bits(rng.integers(0, 2**64, draw(st.sampled_from([0, 1, 3, 20])), dtype=U64))
    if kind == "labels":
        top = draw(st.sampled_from([10, 10**6, 2**64]))
        return _core.Filter.labels(np.sort(rng.integers(0, top, draw(st.integers(0, 30)), dtype=U64)))
    if kind == "wrong":
        return draw(st.sampled_from([3, "x", np.zeros(2, U64), [1, 2], _core.Plan(np.zeros((1, 1), I64), 1)]))
    return None


@st.composite
def argument(draw, kind):
    tag = kind[0]
    if tag == "array":
        return draw(arrays(kind[1], kind[2]))
    if tag == "opt_array":
        return draw(st.one_of(st.none(), arrays(kind[1], kind[2])))
    if tag in ("arrays", "opt_arrays"):
        lists = st.lists(arrays(kind[1], kind[2]), min_size=0, max_size=3)
        pool = [lists, st.sampled_from([3, "x", (np.zeros(2, kind[1]),)])]
        if tag == "opt_arrays":
            pool.append(st.none())
        return draw(st.one_of(*pool))
    if tag in ("int", "opt_int"):
        pool = [*INTS, np.int64(5), np.uint8(3), True, 2.5, "4", [1]]
        if tag == "opt_int":
            pool.append(None)
        return draw(st.sampled_from(pool))
    if tag == "opt_float":
        return draw(
            st.sampled_from([None, 0.0, 1.0, 2.5, np.float32(3.0), 7, -1.0, np.nan, np.inf, 1e308, "1"])
        )
    if tag == "bool":
        # Wrong types first: Hypothesis favours a pool's first entries.
        return draw(st.sampled_from([1, None, "yes", 2.5, 0, True, False, np.True_, np.False_]))
    if tag == "store":
        return draw(wrong_stores())
    if tag == "plan":
        return draw(wrong_plans())
    if tag == "opt_filter":
        return draw(filters())
    return draw(st.sampled_from([None, *kind[1], "avx9", "", 7, b"scalar"]))


def _distinct_rows(rng, nq, n, kc):
    rows = [rng.permutation(n)[:kc] for _ in range(nq)]
    return np.array(rows, dtype=np.int64).reshape(nq, kc)


def _thresholds(rng, levels):
    return np.concatenate([np.sort(rng.normal(size=int(count) - 1)) for count in levels]).astype(np.float32)


def list_store(rows, block_rows, sizes, rng, labelled, scale):
    """``rows`` (``(n, units)`` of the codec's element type) in lists of ``sizes``: a base segment with
    the lists one after another (block-aligned) and an empty tail, optional labels and scales."""
    units = rows.shape[1]
    parts, table, at, lab, sc = [], [], 0, [], []
    offset = 0
    for size in sizes:
        padded = -(-size // block_rows) * block_rows
        part = np.zeros((padded, units), rows.dtype)
        part[:size] = rows[at : at + size]
        parts.append(part)
        lab.append(np.concatenate([rng.permutation(10**6)[:size], np.zeros(padded - size, int)]).astype(U64))
        sc.append(
            np.concatenate([scale[at : at + size], np.ones(padded - size, F32)])
            if scale is not None
            else None
        )
        table.append([offset, size, 0, 0])
        offset += padded
        at += size
    data = np.concatenate(parts)
    if block_rows > 1:
        data = _core.to_blocks(data)
    empty = np.zeros(0, rows.dtype)
    return _core.Store(
        [np.ascontiguousarray(data), empty],
        np.array(table, dtype=U64),
        [np.concatenate(lab), np.zeros(0, U64)] if labelled else None,
        [np.concatenate(sc), np.zeros(0, F32)] if scale is not None else None,
    )


def projection(draw, rng, dims, m, min_slots=0):
    """``(basis, slot_dims, slot_values)`` of ``TableCodec.projected``: byte or nibble slots, some empty."""
    width, slots = draw(st.integers(1, 12)), draw(st.integers(min_slots, 3))
    shape = (m, 2, slots) if draw(st.booleans()) else (m, slots)
    slot_dims = rng.integers(-1, width, size=shape).astype(I64)
    values = rng.normal(size=(*shape, 16 if len(shape) == 3 else 256)).astype(F32)
    return rng.normal(size=(dims, width)).astype(F32), slot_dims, values


def codec_case(cls, draw, rng, n, nq):
    """A codec of class ``cls`` (variant, layout, isa drawn), its queries and a store of ``n`` rows."""
    isa = draw(st.sampled_from([None, *ISAS]))
    sizes = [n]
    if n > 1 and draw(st.booleans()):
        cut = int(rng.integers(0, n + 1))
        sizes = [cut, n - cut]
    labelled = draw(st.booleans())
    scale = None
    if cls == "HammingCodec":
        words = draw(st.integers(1, 3))
        nbits = draw(st.sampled_from([None, 1, 64 * words, 64 * words - 5]))
        codec = _core.HammingCodec(words, nbits, isa)
        rows = rng.integers(0, 2**63, (n, words), dtype=U64)
        queries = rng.integers(0, 2**63, (nq, words), dtype=U64)
    elif cls in ("FloatCodec", "Float16Codec"):
        d = draw(st.integers(1, 20))
        codec = getattr(_core, cls)(d, isa)
        rows = rng.normal(size=(n, d)).astype(F32)
        rows = rows.astype(np.float16).view(U16) if cls == "Float16Codec" else rows
        queries = rng.normal(size=(nq, d)).astype(F32)
    elif cls == "Affine8Codec":
        d = draw(st.integers(1, 20))
        codec = _core.Affine8Codec(rng.normal(size=d).astype(F32), rng.uniform(0, 0.1, d).astype(F32), isa)
        rows = rng.integers(0, 256, (n, d), dtype=U8)
        queries = rng.normal(size=(nq, d)).astype(F32)
    else:
        layout = draw(st.sampled_from(LAYOUTS))
        tables = draw(st.sampled_from(["recon", "given", "projected"]))
        if tables == "recon":
            bits, d = (
                draw(st.sampled_from([1, 2, 4] if layout == "blocks" else [1, 2, 4, 8])),
                draw(st.integers(1, 20)),
            )
            codec = _core.TableCodec.recon(rng.normal(size=(d, 1 << bits)).astype(F32), layout, isa)
            rows = _core.pack_codes(rng.integers(0, 1 << bits, (n, d), dtype=U8), bits)
            queries = rng.normal(size=(nq, d)).astype(F32)
        else:
            m, d = draw(st.integers(1, 10)), draw(st.integers(1, 20))
            if tables == "given":
                codec = _core.TableCodec.given(m, layout, isa)
                queries = rng.normal(size=(nq, m, 256)).astype(F32)
            else:
                # At least one slot a byte: no slots at all is the panic of
                # test_table_codec_tables.py::test_projected_slots_of_no_dimension_give_zero_tables.
                codec = _core.TableCodec.projected(*projection(draw, rng, d, m, 1), layout, isa)
                queries = rng.normal(size=(nq, d)).astype(F32)
            rows = rng.integers(0, 256, (n, m), dtype=U8)
        scale = None if draw(st.booleans()) else rng.uniform(-2, 2, n).astype(F32)
    store = list_store(rows, codec.block_rows, sizes, rng, labelled, scale)
    return codec, queries, store, len(sizes)


def valid_args(name, draw):
    """Arguments the call accepts, from a few drawn sizes (so the fuzzer reaches the kernels), and the
    codec of a method call (else None); ``test_fuzz`` then breaks one argument, or none."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, nq, d = draw(st.integers(1, 40)), draw(st.integers(0, 4)), draw(st.integers(1, 20))
    bits = draw(st.sampled_from([1, 2, 4, 8]))
    k = draw(st.sampled_from([1, 2, 5, 40, 2**31, 2**63 - 1, 2**70]))
    words = draw(st.integers(1, 3))
    kc = draw(st.integers(0, n))
    levels = rng.integers(2, 6, d).astype(np.uint16)
    codes = (rng.integers(0, 1 << 16, (n, d)) % levels).astype(np.uint8)
    packed = _core.pack_codes(rng.integers(0, 1 << bits, (n, d), dtype=np.uint8), bits)
    words_q = rng.integers(0, 2**63, (nq, words), dtype=np.uint64)
    words_db = rng.integers(0, 2**63, (n, words), dtype=np.uint64)
    nbits = draw(st.sampled_from([None, 1, 64 * words, 64 * words - 5]))
    isa = draw(st.sampled_from([None, *ISAS]))
    nbits_raw = draw(st.integers(1, 130))
    # None (the exact assignment) or leading axes as a shortlist's orthonormal directions (drawn only for
    # k-means: an extra draw would change every other call's derandomized examples).
    axes = np.eye(d, dtype=np.float32)[: max(1, d // 2)]
    shortlist_basis = draw(st.sampled_from([None, axes])) if name.startswith("kmeans") else None
    if "." in name and name.split(".")[0] in QUERY_KINDS and name not in STATICS:
        cls, method = name.split(".")
        codec, queries, store, lists = codec_case(cls, draw, rng, n, nq)
        cands = _distinct_rows(rng, nq, n, kc)
        allowed = draw(st.sampled_from(["none", "bits", "labels", "resolved"]))
        bitmap = rng.integers(0, 2**63, draw(st.integers(0, 3)), dtype=np.uint64)
        labels = np.sort(rng.integers(0, 10**6, draw(st.integers(0, 20)))).astype(np.uint64)
        only = {
            "none": None,
            "bits": _core.Filter.bits(bitmap),
            "labels": _core.Filter.labels(labels),
            "resolved": _core.Filter.bits(bitmap).admitting(store),  # resolved to this store's rows
        }[allowed]
        width = draw(st.integers(1, lists))
        order = np.array([rng.permutation(lists)[:width] for _ in range(nq)], np.int64).reshape(nq, width)
        # Hamming distances take no bias (a biased plan is refused, naming the bias).
        biased = draw(st.integers(0, 4)) == 0 if cls == "HammingCodec" else draw(st.booleans())
        bias = rng.normal(size=(nq, width)).astype(np.float32) if biased else None
        plan = _core.Plan(order, draw(st.integers(0, 3)), bias)
        args = {
            "search": (queries, store, k, only),
            "search_lists": (queries, store, k, plan, only),
            "score": (queries, store, cands),
            "rescore": (queries, store, cands, k, only),
        }[method]
        return args, codec
    if name == "Filter.admitting":
        _, _, store, _ = codec_case(draw(st.sampled_from(sorted(QUERY_KINDS))), draw, rng, n, nq)
        return (store,), _core.Filter.bits(rng.integers(0, 2**63, draw(st.integers(0, 3)), dtype=np.uint64))
    if name in ("Thresholds.quantize", "Thresholds.encode"):
        thresholds = _core.Thresholds(_thresholds(rng, levels), levels)
        return (rng.normal(size=(n, d)).astype(np.float32),), thresholds
    if name in ("Coarse.plan", "Plan.arrays", "Coarse.centroids"):
        nlist, width = draw(st.integers(1, 6)), draw(st.integers(0, 7))
        if name == "Plan.arrays":
            order = [rng.permutation(nlist)[: min(width, nlist)] for _ in range(nq)]
            order = np.array(order, np.int64).reshape(nq, min(width, nlist))
            bias = rng.normal(size=order.shape).astype(np.float32) if draw(st.booleans()) else None
            return (), _core.Plan(order, draw(st.integers(0, 3)), bias)
        radius = draw(st.sampled_from([None, 1.0, 3.0]))
        coarse = _core.Coarse(rng.normal(size=(nlist, d)).astype(np.float32), isa, radius)
        if name == "Coarse.centroids":
            return (), coarse
        queries = rng.normal(size=(nq, d)).astype(np.float32)
        return (queries, draw(st.integers(0, 7)), width, draw(st.booleans())), coarse
    blocks = _core.to_blocks(packed)
    scale = rng.normal(size=n).astype(np.float32) if draw(st.booleans()) else None
    m, slots_of = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    return {
        "quantize": (rng.normal(size=(n, d)).astype(np.float32), _thresholds(rng, levels), levels),
        "encode": (rng.normal(size=(n, d)).astype(np.float32), _thresholds(rng, levels), levels),
        "Thresholds": (_thresholds(rng, levels), levels),
        "expand": (codes, levels),
        "collapse": (_core.expand(codes, levels), levels),
        "pack_bits": (rng.integers(0, 2, (n, nbits_raw), dtype=np.uint8),),
        "unpack_bits": (rng.integers(0, 2**63, (n, -(-nbits_raw // 64)), dtype=np.uint64), nbits_raw),
        "hamming_distances": (words_q, words_db, nbits, isa),
        "pack_codes": (rng.integers(0, 1 << bits, (n, d), dtype=np.uint8), bits),
        "unpack_codes": (packed, d, bits),
        "to_blocks": (packed,),
        "from_blocks": (blocks, n, packed.shape[1]),
        "write_block_rows": (blocks.copy(), int(rng.integers(0, n + 1)) // 2, packed[: n // 2].copy()),
        "keep_block_rows": (blocks.copy(), packed.shape[1], rng.random(n) < 0.5),
        "kmeans_iterate": (
            rng.normal(size=(n, d)).astype(np.float32),
            rng.normal(size=(min(n, 4), d)).astype(np.float32),
            shortlist_basis,
            int(rng.integers(1, 6)),
        ),
        "kmeans_assign": (
            rng.normal(size=(n, d)).astype(np.float32),
            rng.normal(size=(min(n, 4), d)).astype(np.float32),
            shortlist_basis,
            int(rng.integers(1, 6)),
        ),
        "Store": (
            [words_db, np.zeros(0, np.uint64)],
            np.array([[0, n, 0, 0]], dtype=np.uint64),
            [np.arange(n, dtype=np.uint64), np.zeros(0, np.uint64)] if draw(st.booleans()) else None,
            None if scale is None else [scale, np.zeros(0, np.float32)],
            None if scale is None or draw(st.booleans()) else float(np.abs(scale).max()) * 2,
        ),
        "Filter.bits": (rng.integers(0, 2**64, draw(st.integers(0, 4)), dtype=np.uint64),),
        "Filter.labels": (np.sort(rng.integers(0, 2**64, draw(st.integers(0, 20)), dtype=np.uint64)),),
        "Plan": (
            np.array([rng.permutation(8)[: d % 5] for _ in range(nq)], np.int64).reshape(nq, d % 5),
            draw(st.integers(0, 5)),
            rng.normal(size=(nq, d % 5)).astype(np.float32) if draw(st.booleans()) else None,
        ),
        "Coarse": (
            rng.normal(size=(slots_of, d)).astype(np.float32),
            isa,
            draw(st.sampled_from([None, 1.0, float(rng.uniform(0.1, 10))])),
        ),
        "HammingCodec": (words, nbits, isa),
        "TableCodec.recon": (
            rng.normal(size=(d, 1 << bits)).astype(np.float32),
            draw(st.sampled_from([None, "rows", *(["blocks"] if bits <= 4 else [])])),
            isa,
        ),
        "TableCodec.given": (d, draw(st.sampled_from([None, *LAYOUTS])), isa),
        "TableCodec.projected": (*projection(draw, rng, d, m), draw(st.sampled_from([None, *LAYOUTS])), isa),
        "FloatCodec": (d, isa),
        "Float16Codec": (d, isa),
        "Affine8Codec": (rng.normal(size=d).astype(np.float32), rng.uniform(0, 0.1, d).astype(np.float32), isa),
        "peak_abs": (rng.normal(size=(n, d)).astype(np.float32),),
        "available_isas": (),
        "best_isa": (),
        "cpu_features": (),
        "num_threads": (),
        "_gil_checks": (),
    }[name], None


def corrupt(draw, value):
    """A value-level fault in an argument of the right type: NaN / inf / huge floats, out-of-range
    integers, a non-contiguous or read-only view (of one array of a list)."""
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        at = draw(st.integers(0, len(value) - 1))
        return [corrupt(draw, v) if i == at else v for i, v in enumerate(value)]
    if not isinstance(value, np.ndarray) or value.size == 0:
        return value
    array = value.copy()
    flat = array.reshape(-1)
    at = draw(st.integers(0, flat.size - 1))
    how = draw(st.sampled_from(["special", "strided", "readonly"]))
    if how == "special":
        if array.dtype.kind == "f":
            flat[at] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -3e38]))
        elif array.dtype.kind == "b":
            flat[at] = not flat[at]
        else:
            flat[at] = draw(
                st.sampled_from(
                    [
                        np.iinfo(array.dtype).max,
                        np.iinfo(array.dtype).min,
                        2,
                        255 % (np.iinfo(array.dtype).max + 1),
                    ]
                )
            )
        return array
    if how == "strided" and array.ndim:
        return np.repeat(array, 2, axis=-1)[..., ::2]
    array.flags.writeable = False
    return array
