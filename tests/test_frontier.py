"""Frontier codecs (PCA bit allocation, trit rotation, PCA + PQ) and the budget chooser, on generated data.

Every codec is a byte-LUT codec: its score is ``row_scale_i * Σ_b lut[b, code_ib]``. The tests check
the packing and byte counts, that the lookup tables reproduce ``prepare_query(q) · decode(codes)``
(NumPy) and that the engine's byte-table search (``TableCodec.given`` over a ``Store``) returns the NumPy
brute-force ranking and scores.
"""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qama_rs import _core
from qama_rs.errors import QamaError
from qama_rs.index import available_codecs, index_factory
from qama_rs.index.codecs.base import join_state, split_state
from qama_rs.index.registry import build_pipeline
from qama_rs.quantizers import (
    Allocated,
    AllocatedNibble,
    AllocatedNibbleScaled,
    AllocatedScaled,
    PcaProduct,
    TritRotation,
)
from qama_rs.quantizers.allocation import (
    NIBBLE_LEVEL_OPTIONS,
    allocate_levels,
    byte_layout,
    gaussian_distortion,
    levels_for_budget,
    pack_components,
)
from qama_rs.quantizers.budget import candidates, choose_codec, codec_spec
from qama_rs.quantizers.state import flatten

DIM = 40


def _corpus(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Unit vectors with a decaying spectrum and a common mean direction, like sentence embeddings."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)) * (1.0 / np.arange(1, dim + 1) ** 0.7) + 0.3 / math.sqrt(dim)
    x = x @ np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def docs() -> np.ndarray:
    return _corpus(1500)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return _corpus(9, seed=5)


def unfitted_codec(spec: str):
    """The unfitted codec object of a codec spec, resolved by the index registry (the one registry)."""
    return build_pipeline(spec).codec.impl


def lut_search(luts, codes, k, scale=None, layout="rows", isa=None):
    """The engine's byte-table search (``TableCodec.given``) over one list of ``codes``, in ``layout``."""
    n = len(codes)
    store = _core.Store(
        [_core.to_blocks(codes) if layout == "blocks" else codes, np.zeros(0, np.uint8)],
        np.array([[0, n, 0, 0]], np.uint64),
        None,
        None if scale is None else [np.ascontiguousarray(scale, dtype=np.float32), np.zeros(0, np.float32)],
    )
    return _core.TableCodec.given(codes.shape[1], layout, isa).search(luts, store, k)


def _scores_numpy(codec, q, x):
    """Brute force: row_scale * prepare_query(q) · decode(encode(x)), dropped components excluded."""
    s = codec.prepare_query(q) @ codec.decode(codec.encode(x)).T
    if hasattr(type(codec), "row_scale"):
        s = s * codec.row_scale(x)[None, :]
    return s


# ------------------------------------------------------------------------- allocation and packing
def test_gaussian_distortion_matches_known_lloyd_max_values():
    assert gaussian_distortion(1) == 1.0
    assert gaussian_distortion(2) == pytest.approx(1 - 2 / math.pi, abs=1e-9)  # sign code: 0.3634
    assert gaussian_distortion(4) == pytest.approx(0.1175, abs=1e-4)
    assert gaussian_distortion(3) == pytest.approx(0.1902, abs=1e-4)


def test_allocation_respects_bits_and_favours_strong_components():
    w = np.array([100.0, 10.0, 1.0, 0.1, 0.01])
    for bits in (0, 1, 3.2, 7, 12):
        levels = allocate_levels(w, bits)
        assert np.log2(levels).sum() <= bits + 1e-9
        assert (np.diff(levels) <= 0).all()  # weaker components never get more levels
    assert (allocate_levels(w, 0) == 1).all()
    assert allocate_levels(w, 12)[0] > allocate_levels(w, 12)[-1]


def test_pack_components_fills_bytes_with_level_products_at_most_256():
    levels = np.array([3] * 384)
    packed = pack_components(levels)
    assert len(packed) == 77 and all(len(b) <= 5 for b in packed)  # 5 trits a byte
    mixed = np.array([64, 16, 16, 8, 6, 6, 6, 4, 3, 3, 2, 2, 2, 1, 1])
    packed = pack_components(mixed)
    assert sorted(j for b in packed for j in b) == list(range(13))  # every coded component once
    assert all(math.prod(int(mixed[j]) for j in b) <= 256 for b in packed)


@pytest.mark.parametrize("budget", [1, 3, 8, 20])
def test_levels_for_budget_packs_into_the_budget(budget):
    levels = levels_for_budget(np.linspace(1, 0.01, DIM) ** 2, budget)
    assert len(pack_components(levels)) <= budget
    assert len(pack_components(levels_for_budget(np.ones(DIM), budget))) <= budget


def test_nibble_layout_keeps_every_component_inside_one_nibble():
    levels = np.array([16, 16, 8, 8, 4, 4, 4, 2, 2, 2, 2, 2, 1])
    members, strides, shifts, masks = byte_layout(levels, "nibble")
    assert sorted(j for b in members for j in b) == list(range(12))
    for mem, st_, sh in zip(members, strides, shifts, strict=True):
        for nibble in (0, 4):
            inside = [j for j, s_ in zip(mem, sh, strict=True) if s_ == nibble]
            assert math.prod(int(levels[j]) for j in inside) <= 16
        # The largest digit value of each field stays inside its nibble.
        top = sum((int(levels[j]) - 1) * int(s) << int(h) for j, s, h in zip(mem, st_, sh, strict=True))
        assert top <= 255
    # 12 components: 16 | 16 | 8·2 | 8·2 | 4·4 | 4·2·2 | 2 → 7 nibbles, 4 bytes.
    assert len(members) == 4
    assert all((m[sh == 0] == 15).all() for m, sh in zip(masks, shifts, strict=True))


def test_wide_components_take_a_byte_and_share_its_top_bits():
    levels = np.array([64, 32, 4, 2, 2, 2, 16])
    members, strides, shifts, _ = byte_layout(levels, "nibble")
    assert members[0][0] == 0 and members[1][0] == 1  # wide components open bytes, widest first
    assert math.prod(int(levels[j]) for j in members[0]) <= 256
    assert math.prod(int(levels[j]) for j in members[1]) <= 256
    # Small components above a wide one start at bit 5 or 6, inside the high nibble.
    for st_ in strides[:2]:
        assert all(int(s) >= 16 for s in st_[1:])
    assert sorted(j for b in members for j in b) == list(range(7))
    with pytest.raises(QamaError, match="power-of-two"):
        byte_layout(np.array([48, 2]), "nibble")


def test_additive_wide_levels_are_nibble_separable_and_near_lloyd_max():
    from qama_rs.quantizers.allocation import additive_levels
    from qama_rs.quantizers.lloyd_max import gaussian_lloyd_max, lloyd_1d

    col = np.sort(np.random.default_rng(3).standard_normal(40_000))
    bounds, values, order = additive_levels(col, 4)
    assert values.shape == (64,) and sorted(order.tolist()) == list(range(64))
    coarse = values[:16] - values[0]
    for h in range(4):  # value(16 h + l) = coarse[l] + offset[h]: the same 16 values, shifted
        np.testing.assert_allclose(values[16 * h : 16 * h + 16] - values[16 * h], coarse, atol=1e-9)
    digit = order[np.searchsorted(bounds, col)]
    nearest = np.abs(col[:, None] - values[None, :]).argmin(axis=1)
    np.testing.assert_allclose(values[digit], values[nearest], atol=1e-12)
    mse = np.mean((col - values[digit]) ** 2)
    free = lloyd_1d(col, gaussian_lloyd_max(64)[1], 50, 1e-12)[1]
    free_mse = np.mean((col - free[np.abs(col[:, None] - free[None, :]).argmin(axis=1)]) ** 2)
    assert free_mse <= mse < 2.0 * free_mse, (mse, free_mse)  # measured 1.8x
    assert (
        mse
        < np.mean(
            (col - gaussian_lloyd_max(16)[1][np.abs(col[:, None] - gaussian_lloyd_max(16)[1]).argmin(axis=1)])
            ** 2
        )
        / 3
    )


@pytest.mark.parametrize("budget", [1, 3, 8, 20])
def test_nibble_allocation_fits_the_budget_with_its_level_options(budget):
    levels = levels_for_budget(np.linspace(1, 0.01, DIM) ** 2, budget, NIBBLE_LEVEL_OPTIONS, "nibble")
    assert len(byte_layout(levels, "nibble")[0]) <= budget
    assert set(np.unique(levels)) <= {1, *NIBBLE_LEVEL_OPTIONS}
    if budget >= 20:
        assert levels[0] > 16 and levels[-1] < levels[0]  # the strongest components get wide codes


@pytest.mark.parametrize(
    "codec",
    [AllocatedNibble(budget_bytes=9), AllocatedNibble(budget_bytes=30), AllocatedNibble(levels=3)],
    ids=["alloc", "wide", "trits"],
)
def test_nibble_tables_are_separable_and_the_block_kernels_equal_the_row_search(codec, docs, queries):
    codec.fit(docs)
    assert codec.nibble_tables and not Allocated(budget_bytes=9).nibble_tables
    if codec.budget_bytes == 30:
        assert codec.levels.max() > 16  # the case with additive wide components
    luts = codec.query_luts(queries).astype(np.float64)
    lo, hi = np.arange(256) & 15, np.arange(256) >> 4
    separable = luts[:, :, lo] + luts[:, :, 16 * hi] - luts[:, :, :1]
    np.testing.assert_allclose(luts, separable, atol=1e-5)
    codes = codec.encode(docs)
    tables = codec.query_luts(queries)
    want_s, want_i = lut_search(tables, codes, 10, isa="scalar")
    for isa in _core.available_isas():  # the block kernel of every level against the scalar row kernel
        for layout in ("rows", "blocks"):
            s, i = lut_search(tables, codes, 10, layout=layout, isa=isa)
            np.testing.assert_array_equal(i, want_i, err_msg=f"{layout} {isa}")
            np.testing.assert_array_equal(s.view(np.uint32), want_s.view(np.uint32), err_msg=f"{layout} {isa}")


def test_nibble_packing_costs_little_recall_against_byte_packing(docs):
    q, base = docs[:80], docs[80:]
    truth = np.argsort(-(q @ base.T), axis=1)[:, :10]

    def recall(codec):
        codec.fit(base)
        ids = lut_search(codec.query_luts(q), codec.encode(base), 10, codec.row_scale(base))[1]
        return np.mean([len(np.intersect1d(a, b)) for a, b in zip(ids, truth, strict=True)]) / 10

    byte, nibble = recall(AllocatedScaled(budget_bytes=14)), recall(AllocatedNibbleScaled(budget_bytes=14))
    assert nibble > 0.5 and nibble >= byte - 0.05, (nibble, byte)


# ------------------------------------------------------------------------------------- codecs
def _codecs():
    return [
        Allocated(budget_bytes=6),
        Allocated(budget_bytes=14, weight_power=1.0),
        AllocatedScaled(budget_bytes=12),
        TritRotation(seed=3),
        PcaProduct(m=4, dims=16, iterations=8),
        AllocatedNibble(budget_bytes=7),
        AllocatedNibbleScaled(budget_bytes=12),
        AllocatedNibbleScaled(budget_bytes=34),  # with additive 32/64-level components
        AllocatedNibble(levels=3),  # two trits a nibble (strides 1, 3 inside each nibble)
    ]


@pytest.mark.parametrize("codec", _codecs(), ids=lambda c: type(c).__name__)
def test_codes_shapes_and_honest_bytes(codec, docs):
    codec.fit(docs)
    codes = codec.encode(docs[:50])
    assert codes.dtype == np.uint8 and codes.shape == (50, codec.m)
    factor = 4 if hasattr(type(codec), "row_scale") else 0
    assert codec.bytes_per_vector == codes.shape[1] + factor
    if isinstance(codec, Allocated) and not isinstance(codec, TritRotation):
        assert codec.bytes_per_vector <= codec.budget_bytes
    luts = codec.query_luts(docs[:3])
    assert luts.shape == (3, codec.m, 256) and luts.dtype == np.float32 and luts.flags.c_contiguous


def test_trit_rotation_is_five_trits_a_byte(docs):
    codec = TritRotation().fit(docs)
    assert codec.m == math.ceil(DIM / 5) and codec.bytes_per_vector == codec.m + 4
    assert codec.encode(docs).max() < 3**5
    digits = codec._digits(codec._coordinates(docs)[0])
    assert set(np.unique(digits)) == {0, 1, 2}


_ALLOCATED = [c for c in _codecs() if isinstance(c, Allocated)]


@pytest.fixture(scope="module")
def fitted_allocated(docs):
    return [copy.deepcopy(c).fit(docs) for c in _ALLOCATED]


@given(which=st.integers(0, len(_ALLOCATED) - 1), seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 300))
def test_engine_packing_equals_the_numpy_reference(fitted_allocated, which, seed, rows):
    """`_pack` (digits by `_core.Thresholds`) is bit-identical to the component-by-component NumPy
    packing, on coordinates that hit the bounds exactly, fall between them and lie far outside."""
    codec = fitted_allocated[which]
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, codec.dim)).astype(np.float32) * rng.choice([0.01, 0.1, 1.0, 100.0])
    for j, bounds in enumerate(codec.bounds):
        if bounds.size:  # a third of the rows exactly on a bound, one more on its float neighbour
            on = rng.random(rows) < 0.33
            z[on, j] = rng.choice(bounds, on.sum())
            z[~on & (rng.random(rows) < 0.2), j] = np.nextafter(rng.choice(bounds), np.float32(np.inf))
    np.testing.assert_array_equal(codec._pack(z), codec._pack_reference(z))


def test_engine_packing_places_non_finite_coordinates_as_the_numpy_reference(fitted_allocated):
    """Rows near float32's limit project to +-inf or NaN coordinates: packed like searchsorted places them."""
    for codec in fitted_allocated:
        z = np.zeros((4, codec.dim), dtype=np.float32)
        z[0], z[1], z[2, ::2], z[3, 1::2] = np.inf, -np.inf, np.nan, np.inf
        np.testing.assert_array_equal(codec._pack(z), codec._pack_reference(z))


def test_encoding_projects_on_the_coded_components_only(fitted_allocated, docs):
    """Encoding computes only the kept components' coordinates (and a scaled codec's lengths before the
    rotation): the codes of the full rotation, and row scales equal to its own up to float32 rounding."""
    dropping = 0  # scaled codecs with components dropped: lengths from fewer coordinates would differ
    for codec in fitted_allocated:
        z, length = codec._coordinates(docs)
        full = codec._pack(z)
        if not codec.factor_bytes:
            np.testing.assert_array_equal(codec.encode(docs), full)
            continue
        codes, scale = codec.encode_with_scale(docs)
        np.testing.assert_array_equal(codes, full)
        np.testing.assert_array_equal(codec.encode(docs), full)
        u_hat = codec.decode(full).astype(np.float64)
        expected = length * np.sum(z * u_hat, axis=1) / np.sum(u_hat**2, axis=1)
        np.testing.assert_allclose(scale, expected, rtol=2e-6)
        dropping += len(codec._kept) < codec.dim
    assert dropping >= 2


def test_fitted_allocated_codecs_pickle_and_encode_the_same(fitted_allocated, docs):
    """The engine object that packs the codes is remade after unpickling, never pickled."""
    for codec in fitted_allocated:
        codes = codec.encode(docs[:100])  # the engine object exists now
        again = pickle.loads(pickle.dumps(codec))
        np.testing.assert_array_equal(again.encode(docs[:100]), codes)
        np.testing.assert_array_equal(copy.deepcopy(codec).encode(docs[:100]), codes)


@pytest.mark.parametrize("codec", _codecs(), ids=lambda c: type(c).__name__)
def test_luts_reproduce_decoded_inner_products(codec, docs, queries):
    codec.fit(docs)
    codes = codec.encode(docs[:200])
    luts = codec.query_luts(queries).astype(np.float64)
    from_luts = np.stack([luts[:, b, codes[:, b]] for b in range(codec.m)]).sum(axis=0)
    expected = codec.prepare_query(queries).astype(np.float64) @ codec.decode(codes).astype(np.float64).T
    np.testing.assert_allclose(from_luts, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("codec", _codecs(), ids=lambda c: type(c).__name__)
def test_engine_lut_search_matches_numpy_brute_force(codec, docs, queries):
    codec.fit(docs)
    codes = codec.encode(docs)
    scale = codec.row_scale(docs) if hasattr(type(codec), "row_scale") else None
    scores, ids = lut_search(codec.query_luts(queries), codes, 10, scale)
    brute = _scores_numpy(codec, queries, docs)
    # The engine's ids are a top-10 of the brute-force scores, and its scores are those documents' scores.
    np.testing.assert_allclose(scores, np.take_along_axis(brute, ids, 1), rtol=1e-4, atol=1e-5)
    tenth = np.sort(brute, axis=1)[:, -10]
    assert (scores[:, -1] >= tenth - 1e-4).all()


def test_row_scale_is_the_least_squares_length(docs):
    codec = AllocatedScaled(budget_bytes=12).fit(docs)
    x = docs[:40]
    residual = (x - codec.mean.astype(np.float32)) @ codec.basis
    u_hat = codec.decode(codec.encode(x)).astype(np.float64)
    scale = codec.row_scale(x)
    for i in range(len(x)):
        best = np.linalg.lstsq(u_hat[i][:, None], residual[i].astype(np.float64), rcond=None)[0][0]
        assert scale[i] == pytest.approx(best, rel=1e-4)


def test_length_correction_improves_the_estimate_of_the_inner_product(docs, queries):
    plain = Allocated(budget_bytes=12).fit(docs)
    scaled = AllocatedScaled(budget_bytes=16).fit(docs)  # same 12 code bytes + the factor
    assert scaled.m == plain.m
    truth = queries @ (docs - plain.mean.astype(np.float32)).T
    err_scaled = np.abs(_scores_numpy(scaled, queries, docs) - truth).mean()
    # The same code bytes without the factor (the residual is coded as is, not by direction).
    err_plain = np.abs(_scores_numpy(plain, queries, docs) - truth).mean()
    assert err_scaled < err_plain


def test_product_codebooks_fit_a_sample_of_rows_a_centroid_where_there_are_more(docs, monkeypatch):
    """faiss's rule for PQ training: at most ``SAMPLE_PER_CENTROID`` rows a centroid fit the codebooks (the
    PCA sees every row); with no more rows than that, every row, as before."""
    from qama_rs.quantizers import product

    seen: list[int] = []
    real = product.kmeans
    monkeypatch.setattr(product, "kmeans", lambda x, k, it, rng: seen.append(len(x)) or real(x, k, it, rng))
    full = PcaProduct(m=4, dims=16, iterations=8).fit(docs)
    assert set(seen) == {len(docs)}
    seen.clear()
    monkeypatch.setattr(product, "SAMPLE_PER_CENTROID", 4)  # 4 x 256 centroids = 1,024 of the 1,500 rows
    sampled = PcaProduct(m=4, dims=16, iterations=8).fit(docs)
    assert set(seen) == {1024}
    np.testing.assert_array_equal(sampled.basis, full.basis)
    np.testing.assert_array_equal(sampled.mean, full.mean)
    coords = (docs - full.mean) @ full.basis

    def error(codec) -> float:
        return float(np.mean((codec.decode(codec.encode(docs)) - coords) ** 2))

    # Four rows a centroid is a harsh sample (the real rule keeps 256): it still codes every row nearly as well.
    assert error(sampled) < 1.3 * error(full)


def test_more_bytes_give_better_recall(docs):
    q, base = docs[:60], docs[60:]
    truth = np.argsort(-(q @ base.T), axis=1)[:, :10]

    def recall(codec):
        codec.fit(base)
        scale = codec.row_scale(base) if hasattr(type(codec), "row_scale") else None
        ids = lut_search(codec.query_luts(q), codec.encode(base), 10, scale)[1]
        return np.mean([len(np.intersect1d(a, b)) for a, b in zip(ids, truth, strict=True)]) / 10

    r = [recall(Allocated(budget_bytes=b)) for b in (2, 6, 20)]
    assert r[0] < r[1] < r[2]
    assert recall(PcaProduct(m=2, dims=8, iterations=8)) < recall(PcaProduct(m=8, dims=32, iterations=8))


@pytest.mark.parametrize("codec", _codecs(), ids=lambda c: type(c).__name__)
def test_state_round_trip_keeps_codes_and_tables(codec, docs, queries):
    import json

    codec.fit(docs)
    # Directly, and as an index file keeps it: the scalars through JSON, the arrays as sections.
    meta, arrays = split_state(codec.to_state(), "object.")
    for state in (codec.to_state(), join_state(json.loads(json.dumps(meta)), arrays, "object.")):
        again = type(codec).from_state(state)
        np.testing.assert_array_equal(again.encode(docs[:100]), codec.encode(docs[:100]))
        np.testing.assert_allclose(again.query_luts(queries), codec.query_luts(queries), rtol=1e-6, atol=1e-7)
        assert again.bytes_per_vector == codec.bytes_per_vector


def test_bad_input_names_the_argument(docs):
    with pytest.raises(QamaError, match="fit"):
        Allocated(8).encode(docs)
    codec = Allocated(8).fit(docs)
    bad = docs[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="x has a non-finite"):
        codec.encode(bad)
    with pytest.raises(ValueError, match="xq has 7 dimensions"):
        codec.query_luts(np.ones((2, 7), np.float32))
    with pytest.raises(QamaError, match="codes must have shape"):
        codec.decode(np.zeros((2, codec.m + 1), np.uint8))
    with pytest.raises(QamaError, match="budget_bytes"):
        AllocatedScaled(budget_bytes=4)
    with pytest.raises(QamaError, match="transform"):
        Allocated(8, transform="dct")
    with pytest.raises(QamaError, match="dims"):
        PcaProduct(m=8, dims=DIM + 1).fit(docs)
    with pytest.raises(QamaError, match="corrupt"):
        Allocated.from_state({"budget_bytes": 3})


def test_corrupt_nibble_state_is_refused(docs):
    state = AllocatedNibble(budget_bytes=30).fit(docs).to_state()
    assert len(state["orders"]) > 0  # additive wide components carry an order
    no_orders = np.zeros(len(state["orders_offsets"]), np.int64)
    broken = {**state, "orders": np.zeros(0, np.int64), "orders_offsets": no_orders}  # values not ascending
    with pytest.raises(QamaError, match="corrupt"):
        AllocatedNibble.from_state(broken)
    offsets = state["bounds_offsets"]
    bounds = [state["bounds"][a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    flat, flat_offsets = flatten([b[:-1] if len(b) else b for b in bounds], np.float32)  # one bound short
    short = {**state, "bounds": flat, "bounds_offsets": flat_offsets}
    with pytest.raises(QamaError, match="corrupt"):
        AllocatedNibble.from_state(short)
    with pytest.raises(QamaError, match="power-of-two"):
        byte_layout(np.array([512, 2]), "nibble")
    assert codec_spec(AllocatedNibble.from_state(state)) == "pca_nibble(budget_bytes=30)"


def test_codec_names_resolve_in_the_index_registry_and_specs_round_trip():
    classes = (Allocated, AllocatedScaled, AllocatedNibble, AllocatedNibbleScaled, TritRotation, PcaProduct)
    names = {cls.name for cls in classes}
    assert names == {"pca_alloc", "pca_alloc_scaled", "pca_nibble", "pca_nibble_scaled", "trit_rotation", "pca_pq"}
    assert names <= set(available_codecs())
    for cls in classes:
        assert type(unfitted_codec(cls.name)) is cls
    for codec in candidates(24, 384):
        assert codec_spec(unfitted_codec(codec_spec(codec))) == codec_spec(codec)
    with pytest.raises(QamaError, match=r"spec stage 'pca_alloc\(budget_bytes=big\)'.*budget_bytes"):
        unfitted_codec("pca_alloc(budget_bytes=big)")
    with pytest.raises(QamaError, match="unknown codec 'nope'"):
        unfitted_codec("nope")


# -------------------------------------------------------------------------------------- chooser
def test_candidates_fit_the_budget():
    for budget in (6, 12, 48, 81, 200):
        for codec in candidates(budget, 384):
            if not isinstance(codec, PcaProduct):  # a product code's bytes are m, known unfitted
                codec.fit(_corpus(300, 384))
            assert codec.bytes_per_vector <= budget, (budget, codec)


def test_chooser_picks_the_best_fitting_candidate_on_a_constructed_case(docs):
    # A deliberately weak candidate (2 bytes), a strong one (16 bytes) and one over the budget.
    weak, strong, too_big = Allocated(budget_bytes=2), Allocated(budget_bytes=16), Allocated(budget_bytes=30)
    spec, table = choose_codec(docs, 20, n_queries=50, codecs=[weak, strong, too_big])
    rows = {r["spec"]: r for r in table}
    assert spec == "pca_alloc(budget_bytes=16)"
    assert rows["pca_alloc(budget_bytes=2)"]["recall10"] < rows[spec]["recall10"]
    assert not rows["pca_alloc(budget_bytes=30)"]["fits"]
    assert rows["pca_alloc(budget_bytes=30)"]["recall10"] >= rows[spec]["recall10"]  # better but over budget
    assert [r["bytes"] for r in table] == sorted(r["bytes"] for r in table)


def test_chooser_default_candidates_and_errors(docs):
    spec, table = choose_codec(docs[:400], 8, n_queries=40)
    assert unfitted_codec(spec).fit(docs[:400]).bytes_per_vector <= 8
    assert spec == max((r for r in table if r["fits"]), key=lambda r: r["recall10"])["spec"]
    with pytest.raises(QamaError, match="n_queries"):
        choose_codec(docs[:30], 8, n_queries=40)
    with pytest.raises(QamaError, match="no candidate"):
        choose_codec(docs, 3, n_queries=20, codecs=[Allocated(budget_bytes=8)])


# ------------------------------------------------------------------------------ factory and CLI
@pytest.mark.parametrize(
    "spec",
    [
        "pca_alloc_scaled(budget_bytes=12)",
        "pca_nibble_scaled(budget_bytes=12)",
        "pca_pq(m=4,dims=16)",
        "trit_rotation",
    ],
)
def test_factory_index_equals_the_codec_scored_by_the_engine(spec, docs, queries):
    index = index_factory(DIM, spec)
    index.train(docs)
    index.add(docs)
    scores, ids = index.search(queries, 7)
    codec = unfitted_codec(spec).fit(docs)
    scale = codec.row_scale(docs) if hasattr(type(codec), "row_scale") else None
    want_scores, want_ids = lut_search(codec.query_luts(queries), codec.encode(docs), 7, scale)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    assert index.bytes_per_vector == codec.bytes_per_vector


def test_frontier_command_prints_the_table_and_the_choice(capsys):
    from qama_rs.cli.main import main

    assert main(["frontier", "--dataset", "scifact", "--budget", "8", "--queries", "50"]) == 0
    out, err = capsys.readouterr()
    assert "pseudo-query recall@10" not in err and ": " in err  # per-candidate progress on stderr
    assert "chosen for 8 B: " in out and "pseudo-query recall@10" in out
    chosen = out.rsplit("chosen for 8 B: ", 1)[1].strip()
    assert f"`{chosen}` **chosen**" in out
    assert unfitted_codec(chosen).fit(_corpus(400, 384)).bytes_per_vector <= 8
