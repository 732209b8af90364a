"""``FloatCodec``: float rows scored by inner product, bit for bit the NumPy reference's summation
order on every instruction-set level; ``Float16Codec`` rows (float16 stored as ``uint16`` bits) score
exactly like float32 rows of the rounded vectors (search, candidates, lists); ``Coarse.plan`` ranks
lists by the same inner products; ``Flat16`` indexes equal ``Flat`` indexes of the rounded vectors;
input errors name the argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
from _strategies import list_sizes, sizes_and_seed
from qama_rs import _core
from qama_rs.index.codecs.table import affine_of

ISAS = _core.available_isas()


def bits_equal(a, b):
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def store(rows, labels=None, lists=None):
    """``rows`` (float32, or uint16 float16 bits) as consecutive lists of the given sizes (one list by
    default) in a base segment, with an empty tail segment."""
    sizes = [len(rows)] if lists is None else lists
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.uint64)
    table = np.stack(
        [starts, np.asarray(sizes, np.uint64), np.zeros_like(starts), np.zeros_like(starts)], axis=1
    )
    return _core.Store(
        [np.ascontiguousarray(rows), np.zeros(0, dtype=rows.dtype)],
        np.ascontiguousarray(table, dtype=np.uint64),
        None if labels is None else [np.asarray(labels, np.uint64), np.zeros(0, np.uint64)],
    )


def half_bits(x):
    return x.astype(np.float16).view(np.uint16)


def rows_and_queries(rng, n, nq, dims, distinct=None):
    """``n`` normal float32 rows (copies of only ``distinct`` of them when given, so scores tie) and
    ``nq`` normal float32 queries."""
    rows = rng.normal(size=(n, dims)).astype(np.float32)
    if distinct is not None:
        rows = rows[rng.integers(0, distinct, n)]
    return rows, rng.normal(size=(nq, dims)).astype(np.float32)


@given(**sizes_and_seed(n=200, dims=40, nq=20, k=60), ties=st.booleans())
def test_every_isa_equals_the_reference_bit_for_bit(n, dims, nq, k, ties, seed):
    rng = np.random.default_rng(seed)
    # With ties, repeated rows: equal scores, lower row first.
    vectors, queries = rows_and_queries(rng, n, nq, dims, max(1, n // 4) if ties else None)
    full = ref.float_scores(queries, vectors)
    want = ref.top_scores_canonical(full, k)
    cands = np.stack([rng.permutation(n)[: max(1, n // 3)] for _ in range(nq)]).astype(np.int64)
    want_r = ref.top_labelled(np.take_along_axis(full, cands, axis=1), cands, k)
    rows = store(vectors)
    for isa in ISAS:
        codec = _core.FloatCodec(dims, isa=isa)
        assert (codec.isa, codec.row_units, codec.block_rows) == (isa, dims, 1)
        s, i = codec.search(queries, rows, k)
        assert bits_equal(s, want[0]), isa
        np.testing.assert_array_equal(i, want[1], err_msg=isa)
        assert bits_equal(codec.score(queries, rows, cands), np.take_along_axis(full, cands, axis=1)), isa
        s, i = codec.rescore(queries, rows, cands, k)
        assert bits_equal(s, want_r[0]), isa
        np.testing.assert_array_equal(i, want_r[1], err_msg=isa)


def test_scores_are_inner_products_and_the_reference_order_is_the_engines():
    """Against float64 NumPy (rounding aside), and the 8-lane order matters: a plain float32 sum over
    the dimensions differs in the last bits somewhere, the engine never differs from the reference."""
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(300, 37)).astype(np.float32)
    queries = rng.normal(size=(3, 37)).astype(np.float32)
    cands = np.stack([rng.permutation(300)[:40] for _ in range(3)]).astype(np.int64)
    codec = _core.FloatCodec(37)
    s, i = codec.rescore(queries, store(vectors), cands, 5)
    dots = np.einsum("qd,qkd->qk", queries.astype(np.float64), vectors[cands].astype(np.float64))
    np.testing.assert_array_equal(i, np.take_along_axis(cands, np.argsort(-dots, axis=1)[:, :5], axis=1))
    np.testing.assert_allclose(s, -np.sort(-dots, axis=1)[:, :5], atol=1e-5)
    naive = np.zeros((3, 300), dtype=np.float32)
    for j in range(37):
        naive += queries[:, j, None] * vectors[None, :, j]
    engine = codec.score(queries, store(vectors), np.arange(300, dtype=np.int64))
    assert bits_equal(engine, ref.float_scores(queries, vectors))
    assert not bits_equal(engine, naive)


@given(**sizes_and_seed(n=200, dims=40, nq=20, k=60))
def test_float16_rows_score_like_float32_rows_of_the_rounded_vectors(n, dims, nq, k, seed):
    """``Float16Codec`` over ``uint16`` float16 bits: every score bit for bit the float32 score of the
    rounded vector, on every isa (search, score, rescore)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(scale=3.0, size=(n, dims)).astype(np.float32)
    queries = rng.normal(size=(nq, dims)).astype(np.float32)
    rounded = vectors.astype(np.float16).astype(np.float32)
    halves, floats = store(half_bits(vectors)), store(rounded)
    full = ref.float_scores(queries, rounded)
    cands = rng.permutation(n)[: max(1, n // 2)].astype(np.int64)
    for isa in ISAS:
        half, full_codec = _core.Float16Codec(dims, isa=isa), _core.FloatCodec(dims, isa=isa)
        assert (half.isa, half.row_units, half.block_rows) == (isa, dims, 1)
        s, i = half.search(queries, halves, k)
        s32, i32 = full_codec.search(queries, floats, k)
        assert bits_equal(s, s32) and np.array_equal(i, i32), isa
        assert bits_equal(s, ref.top_scores_canonical(full, k)[0]), isa
        assert bits_equal(half.score(queries, halves, cands), full[:, cands]), isa
        s, i = half.rescore(queries, halves, cands, k)
        s32, i32 = full_codec.rescore(queries, floats, cands, k)
        assert bits_equal(s, s32) and np.array_equal(i, i32), isa


def test_float16_extremes_widen_exactly():
    """Subnormal, huge, signed-zero float16 values: the widening is exact, so the scores are those of
    the float32 rows holding the same values."""
    values = np.array([0.0, -0.0, 6.1e-5, 5.96e-8, -5.96e-8, 65504.0, -65504.0, 1.0, 0.333], dtype=np.float16)
    rows = np.stack([np.roll(values, r) for r in range(len(values))])
    queries = np.stack([np.eye(len(values), dtype=np.float32)[j] for j in range(len(values))])
    for isa in ISAS:
        s = _core.Float16Codec(len(values), isa=isa).score(
            queries, store(rows.view(np.uint16)), np.arange(len(rows), dtype=np.int64)
        )
        np.testing.assert_array_equal(s, rows.astype(np.float32).T)


@given(sizes=list_sizes(40, 5), **sizes_and_seed(k=40, nprobe=(0, 6)), half=st.booleans())
def test_search_lists_matches_the_reference(sizes, k, nprobe, half, seed):
    rng = np.random.default_rng(seed)
    n, dims, nq = sum(sizes), 9, 4
    vectors = rng.normal(size=(n, dims)).astype(np.float32)
    if half:
        vectors = vectors.astype(np.float16).astype(np.float32)
    queries = rng.normal(size=(nq, dims)).astype(np.float32)
    labels = rng.permutation(4 * n)[:n].astype(np.uint64)
    width = int(rng.integers(1, len(sizes) + 1))
    order = np.stack([rng.permutation(len(sizes))[:width] for _ in range(nq)]).astype(np.int64)
    bias = rng.normal(size=(nq, width)).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    lists = [np.arange(starts[i], starts[i + 1]) for i in range(len(sizes))]
    want = ref.search_lists(ref.float_scores(queries, vectors), lists, order, nprobe, k, labels, bias)
    rows = store(half_bits(vectors) if half else vectors, labels, sizes)
    plan = _core.Plan(order, nprobe, bias)
    for isa in ISAS:
        codec = (_core.Float16Codec if half else _core.FloatCodec)(dims, isa)
        s, i = codec.search_lists(queries, rows, k, plan)
        assert bits_equal(s, want[0]), isa
        np.testing.assert_array_equal(i, want[1], err_msg=isa)


def cell_keys(products, queries, centroids, radius):
    """The ranking key of each (query, list): the product itself without a radius, else
    ``fl32(<q, c> - fl32(|q| / (2 radius) * fl32(|c|^2)))`` (norms in float64)."""
    if radius is None:
        return products
    squares = (np.sqrt((centroids.astype(np.float64) ** 2).sum(1)) ** 2).astype(np.float32)
    t = np.sqrt((queries.astype(np.float64) ** 2).sum(1)) * (0.5 / radius)
    return products - (t[:, None] * squares[None, :].astype(np.float64)).astype(np.float32)


@given(
    **sizes_and_seed(nlist=40, dims=20, nq=6, nprobe=(0, 14), width=(0, 14)),
    residual=st.booleans(),
    ties=st.booleans(),
    radius=st.sampled_from([None, 0.5, 3.0, 20.0]),
)
def test_coarse_plan_ranks_lists_by_the_reference_keys(
    nlist, dims, nq, nprobe, width, residual, ties, radius, seed
):
    """``Coarse(centroids, radius=).plan``: each query's ``max(width, nprobe)`` best lists (at most
    ``nlist``) by their key (:func:`cell_keys`: ``<q, c>`` in the float codecs' summation order, less the
    cell ranking's offset with a radius), descending, ties by the lower list; with ``residual`` each list's
    product ``<q, c>`` is its bias, else the biases are 0. On every isa (on avx512 the int8 shortlist ranks
    narrow widths: one query alone, and blocks of queries at widths up to nlist / 16)."""
    rng = np.random.default_rng(seed)
    # With ties, repeated centroids: equal products, lower list first.
    centroids, queries = rows_and_queries(rng, nlist, nq, dims, max(1, nlist // 3) if ties else None)
    # Float16 values are held as float16 (the partition rounds its centroids so): the same scores.
    for values in (centroids, centroids.astype(np.float16).astype(np.float32)):
        products = ref.float_scores(queries, values)
        best = min(max(width, nprobe), nlist)
        want = np.argsort(-cell_keys(products, queries, values, radius), axis=1, kind="stable")[:, :best]
        for isa in ISAS:
            coarse = _core.Coarse(values, isa, radius)
            assert coarse.nlist == nlist and coarse.is_half == (values is not centroids)
            assert coarse.radius == radius
            lists, bias = coarse.plan(queries, nprobe, width, residual).arrays()
            assert lists.dtype == np.int64 and bias.dtype == np.float32
            np.testing.assert_array_equal(lists, want, err_msg=isa)
            want_bias = np.take_along_axis(products, want, axis=1) if residual else np.zeros(want.shape)
            assert bits_equal(bias, want_bias), isa


def test_the_cell_ranking_puts_the_query_s_own_cell_first_and_ignores_its_scale():
    """Unit-norm rows (as sentence embeddings are) and centroids of norms 0.3 to 1 in neighbouring
    directions (as means of such rows are): with the rows' norm as radius a query's first list is its
    nearest centroid (the cell it falls in), where ranking by ``<q, c>`` picks a longer centroid for some;
    and a query's lists do not change when it is scaled."""
    rng = np.random.default_rng(3)
    dims, nlist = 16, 12
    directions = rng.normal(size=dims) + 0.5 * rng.normal(size=(nlist, dims))  # neighbouring directions
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    centroids = (directions * rng.uniform(0.3, 1.0, size=(nlist, 1))).astype(np.float32)
    queries = directions[rng.integers(0, nlist, 40)] + 0.2 * rng.normal(size=(40, dims))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    radius = 1.0
    nearest = np.argmin(((queries[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    for isa in ISAS:
        plain = _core.Coarse(centroids, isa).plan(queries, 1, 1, False).arrays()[0][:, 0]
        cells = _core.Coarse(centroids, isa, radius)
        first = cells.plan(queries, 1, 1, False).arrays()[0][:, 0]
        np.testing.assert_array_equal(first, nearest, err_msg=isa)
        assert (plain != nearest).any(), isa  # the plain ranking misplaces some: the test can tell
        for scale in (0.01, 7.0):
            got = cells.plan(queries * np.float32(scale), 4, 4, False).arrays()[0]
            np.testing.assert_array_equal(got, cells.plan(queries, 4, 4, False).arrays()[0], err_msg=isa)


def test_search_lists_over_a_coarse_plan_of_residuals_scores_the_vectors():
    """The partitioned index's arithmetic: rows hold residuals ``x - c`` of their list's centroid, the
    plan's bias is ``<q, c>``, so a row's score is ``fl(<q, r> + <q, c>)``; with every list probed the
    ids are the float search's (scores within rounding), with fewer the probed lists' best."""
    rng = np.random.default_rng(12)
    nlist, dims, n = 6, 16, 600
    centroids = rng.normal(scale=3.0, size=(nlist, dims)).astype(np.float32)
    assign = rng.integers(0, nlist, n)
    vectors = (centroids[assign] + rng.normal(size=(n, dims))).astype(np.float32)
    order = np.argsort(assign, kind="stable")
    sizes = np.bincount(assign, minlength=nlist).tolist()
    residuals = (vectors[order] - centroids[assign[order]]).astype(np.float32)
    rows = store(residuals, order.astype(np.uint64), sizes)
    queries = rng.normal(size=(4, dims)).astype(np.float32)
    coarse = _core.Coarse(centroids)
    exact = queries.astype(np.float64) @ vectors.astype(np.float64).T
    codec = _core.FloatCodec(dims)
    s, i = codec.search_lists(queries, rows, 10, coarse.plan(queries, nlist, nlist, True))
    np.testing.assert_array_equal(i, np.argsort(-exact, axis=1, kind="stable")[:, :10])
    np.testing.assert_allclose(s, np.take_along_axis(exact, i, axis=1), atol=1e-3)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    lists = [np.arange(starts[j], starts[j + 1]) for j in range(nlist)]
    plan = coarse.plan(queries, 2, 4, True)
    scores = ref.float_scores(queries, residuals)
    want = ref.search_lists(scores, lists, plan.arrays()[0], 2, 10, order, plan.arrays()[1])
    s, i = codec.search_lists(queries, rows, 10, plan)
    assert bits_equal(s, want[0])
    np.testing.assert_array_equal(i, want[1])


def test_coarse_errors_name_the_argument():
    centroids = np.eye(3, dtype=np.float32)
    coarse = _core.Coarse(centroids)
    q = np.ones((2, 3), np.float32)
    with pytest.raises(qama_rs.QamaTypeError, match="centroids must have dtype float32"):
        _core.Coarse(centroids.astype(np.float64))
    with pytest.raises(qama_rs.QamaError, match="centroids must be a 2-D array"):
        _core.Coarse(centroids.reshape(-1))
    for empty in (np.zeros((0, 3), np.float32), np.zeros((3, 0), np.float32)):
        with pytest.raises(qama_rs.QamaError, match="centroids have 0 values"):
            _core.Coarse(empty)
    with pytest.raises(qama_rs.QamaError, match=r"centroids\[1, 2\] is not finite"):
        _core.Coarse(np.array([[0, 0, 0], [0, 0, np.nan]], np.float32))
    with pytest.raises(qama_rs.QamaError, match="isa"):
        _core.Coarse(centroids, "avx9")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(qama_rs.QamaError, match=r"radius = .* must be positive and finite"):
            _core.Coarse(centroids, None, bad)
    with pytest.raises(qama_rs.QamaTypeError, match="radius must be a float"):
        _core.Coarse(centroids, None, "1")
    with pytest.raises(qama_rs.QamaError, match="queries has 4 columns; the centroids have 3"):
        coarse.plan(np.ones((2, 4), np.float32), 1, 1, True)
    with pytest.raises(qama_rs.QamaTypeError, match="queries must have dtype float32"):
        coarse.plan(q.astype(np.float64), 1, 1, True)
    with pytest.raises(qama_rs.QamaError, match="nprobe = -1"):
        coarse.plan(q, -1, 1, True)
    with pytest.raises(qama_rs.QamaError, match="width = -2"):
        coarse.plan(q, 1, -2, True)
    with pytest.raises(qama_rs.QamaTypeError, match="width must be an int"):
        coarse.plan(q, 1, "2", True)


def test_coarse_plan_refuses_non_finite_queries_and_non_bool_residual():
    """A NaN or infinite query has no ranking of lists (and would put a non-finite bias in the plan);
    ``residual`` is a bool, refused like every other argument of the wrong type."""
    coarse = _core.Coarse(np.eye(3, dtype=np.float32))
    for bad in (np.nan, np.inf):
        q = np.ones((2, 3), np.float32)
        q[1, 2] = bad
        with pytest.raises(qama_rs.QamaError, match=r"queries\[1, 2\] = (NaN|inf) is not finite"):
            coarse.plan(q, 1, 2, True)
    for wrong in (1, None, "yes"):
        with pytest.raises(qama_rs.QamaTypeError, match=r"\bresidual\b"):
            coarse.plan(np.ones((2, 3), np.float32), 1, 2, wrong)


def test_flat16_index_equals_flat_of_the_rounded_vectors():
    rng = np.random.default_rng(9)
    docs = rng.normal(size=(700, 48)).astype(np.float32)
    queries = rng.normal(size=(6, 48)).astype(np.float32)
    half, full = qama_rs.index_factory(48, "Flat16"), qama_rs.index_factory(48, "Flat")
    half.add(docs)
    full.add(docs.astype(np.float16).astype(np.float32))
    assert (half.bytes_per_vector, full.bytes_per_vector) == (96, 192)
    D, I = half.search(queries, 10)  # noqa: E741
    D32, I32 = full.search(queries, 10)
    assert bits_equal(D, D32)
    np.testing.assert_array_equal(I, I32)
    np.testing.assert_array_equal(half.search(queries, 10, dims=20)[1], full.search(queries, 10, dims=20)[1])


@given(**sizes_and_seed(n=200, dims=40, nq=20, k=60))
def test_affine_byte_rows_score_like_float32_rows_of_their_decoded_values(n, dims, nq, k, seed):
    """``Affine8Codec`` over ``uint8`` codes: every score bit for bit the float32 score of the decoded rows
    ``base + step * code`` (float32, the product rounded first), on every isa (search, score, rescore)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, dims), dtype=np.uint8)
    base = rng.normal(size=dims).astype(np.float32)
    step = (rng.uniform(0.0, 0.02, size=dims)).astype(np.float32)
    decoded = base[None, :] + step[None, :] * codes.astype(np.float32)
    queries = rng.normal(size=(nq, dims)).astype(np.float32)
    full = ref.float_scores(queries, decoded)
    cands = rng.permutation(n)[: max(1, n // 2)].astype(np.int64)
    for isa in ISAS:
        affine = _core.Affine8Codec(base, step, isa=isa)
        assert (affine.isa, affine.row_units, affine.block_rows) == (isa, dims, 1)
        s, i = affine.search(queries, store(codes), k)
        assert bits_equal(s, ref.top_scores_canonical(full, k)[0]), isa
        np.testing.assert_array_equal(i, ref.top_scores_canonical(full, k)[1], err_msg=isa)
        assert bits_equal(affine.score(queries, store(codes), cands), full[:, cands]), isa
        s, i = affine.rescore(queries, store(codes), cands, k)
        want = ref.top_labelled(full[:, cands], cands, k)
        assert bits_equal(s, want[0]) and np.array_equal(i, want[1]), isa


def test_int8_index_equals_flat_of_its_reconstruction():
    """``Int8`` levels are float32 ``base + step * code`` (``affine_of`` recovers them), so its engine scores
    a decoded tile as float rows: the ``Flat`` results over the reconstructed vectors, bit for bit, with no
    byte tables. A table that is not affine to the last bit keeps the byte-table engine."""
    rng = np.random.default_rng(10)
    docs = rng.normal(scale=0.05, size=(3000, 96)).astype(np.float32)
    queries = rng.normal(size=(8, 96)).astype(np.float32)
    int8 = qama_rs.index_factory(96, "Int8")
    int8.train(docs)
    int8.add(docs)
    assert isinstance(int8.codec.engine(None), _core.Affine8Codec)
    flat = qama_rs.index_factory(96, "Flat")
    flat.add(int8.codec.impl.reconstruct(int8.codec.impl.encode(docs)))
    D, I = int8.search(queries, 10)  # noqa: E741
    D32, I32 = flat.search(queries, 10)
    assert bits_equal(D, D32)
    np.testing.assert_array_equal(I, I32)
    base, step = affine_of(int8.codec.recon)
    np.testing.assert_array_equal(base[:, None] + step[:, None] * np.arange(256, dtype=np.float32), int8.codec.recon)
    nudged = int8.codec.recon.copy()
    nudged[5, 17] = np.nextafter(nudged[5, 17], np.float32(1))
    assert affine_of(nudged) is None
    assert affine_of(int8.codec.recon[:, :16]) is None  # 4-bit tables stay on the block kernel
    constant = np.repeat(np.float32([[0.25]]), 256, axis=1)  # a dimension of zero spread: step 0
    assert affine_of(constant) is not None and affine_of(constant)[1][0] == 0.0


def test_errors_name_the_argument():
    rows = store(np.zeros((3, 4), np.float32))
    codec = _core.FloatCodec(4)
    q = np.zeros((1, 4), np.float32)
    with pytest.raises(qama_rs.QamaError, match="dims = 0"):
        _core.FloatCodec(0)
    with pytest.raises(qama_rs.QamaError, match="dims = -2"):
        _core.FloatCodec(-2)
    with pytest.raises(qama_rs.QamaError, match="isa"):
        _core.FloatCodec(4, isa="avx9")
    with pytest.raises(qama_rs.QamaError, match="queries has 5 columns; the codec has 4 dimensions"):
        codec.search(np.zeros((1, 5), np.float32), rows, 1)
    with pytest.raises(qama_rs.QamaError, match=r"queries\[0, 2\] = inf is not finite"):
        codec.search(np.array([[0, 0, np.inf, 0]], np.float32), rows, 1)
    with pytest.raises(qama_rs.QamaTypeError, match="queries must have dtype float32"):
        codec.search(q.astype(np.float16), rows, 1)
    with pytest.raises(qama_rs.QamaError, match="k = 0"):
        codec.rescore(q, rows, np.zeros(1, np.int64), 0)
    with pytest.raises(qama_rs.QamaError, match=r"candidates\[0, 0\] = 3 is not a row"):
        codec.score(q, rows, np.array([[3]], np.int64))
    with pytest.raises(qama_rs.QamaError, match="store holds float32 rows; this codec reads uint16"):
        _core.Float16Codec(4).search(q, rows, 1)
    with pytest.raises(qama_rs.QamaError, match="the store's rows have 4 values; this codec reads rows of 3"):
        _core.FloatCodec(3).search(q[:, :3], rows, 1)
    with pytest.raises(qama_rs.QamaError, match="the store's rows have 4 values; this codec reads rows of 5"):
        _core.Float16Codec(5).score(np.zeros((1, 5), np.float32), store(np.zeros((3, 4), np.uint16)), [0])
    with pytest.raises(qama_rs.QamaError, match="dims = 0"):
        _core.Float16Codec(0)
    with pytest.raises(TypeError):
        _core.FloatCodec(4, half=True)  # float16 rows are Float16Codec's
    with pytest.raises(
        qama_rs.QamaError, match=r"store holds uint16 \(float16 bits\) rows; this codec reads float32"
    ):
        codec.search(q, store(np.zeros((3, 4), np.uint16)), 1)
    with pytest.raises(qama_rs.QamaError, match="segment 0"):
        codec.search(q, _core.Store([np.zeros(11, np.float32)], np.array([[0, 3]], np.uint64)), 1)


def test_a_row_scale_is_refused():
    """Float rows carry no per-row factor: a store with scales is refused by every call, naming
    row_scale (not silently scored without them)."""
    vectors = np.arange(12, dtype=np.float32).reshape(6, 2)
    scale = [np.array([1, 1, 1, 1, 1, -1], np.float32), np.zeros(0, np.float32)]
    table = np.array([[0, 6, 0, 0]], np.uint64)
    q = np.ones((1, 2), np.float32)
    plan = _core.Plan(np.zeros((1, 1), np.int64), 1)
    for codec, rows in (
        (_core.FloatCodec(2), _core.Store([vectors, np.zeros(0, np.float32)], table, None, scale)),
        (
            _core.Float16Codec(2),
            _core.Store([half_bits(vectors), np.zeros(0, np.uint16)], table, None, scale),
        ),
    ):
        for call in (
            lambda c=codec, r=rows: c.search(q, r, 2),
            lambda c=codec, r=rows: c.score(q, r, np.arange(6, dtype=np.int64)),
            lambda c=codec, r=rows: c.rescore(q, r, np.arange(6, dtype=np.int64), 2),
            lambda c=codec, r=rows: c.search_lists(q, r, 2, plan),
        ):
            with pytest.raises(qama_rs.QamaError, match="row_scale: float rows carry no per-row factor"):
                call()
