"""Robustness of the training-free codecs (``qama_rs.quantizers``) and of ``Quantizer.fit``.

Each group of tests reproduces a defect (it failed before the fix):

1. memory: fits and encodes copied the whole corpus, as float64 and more than once (a 293 MiB input
   cost 0.6 to 2 GiB more); now their own peak stays below the input's size. Published numbers do not
   move: statistics are chunked exactly, and up to ``EXACT_ROWS`` (65,536) documents every matrix
   product is still computed in one piece (a blocked BLAS product can round differently);
2. degenerate training: a one-row fit was accepted and scored every document the same, and constant
   columns passed without a word; now the first is a ``QamaError`` naming the argument and the second
   a ``QamaWarning``;
3. saved state: ``to_state()`` was nested JSON lists, and a reloaded ``pca_*`` codec scored differently
   (column- vs row-major basis, float64 mean); now large tables are arrays of the dtypes the codec
   computes with, and ``from_state`` on read-only arrays reproduces the codec bit for bit.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

import qama_rs.engine.quantizer as engine_quantizer
import qama_rs.quantizers.base as quantizer_base
from _quantizers import PER_DIM
from qama_rs import Index, QamaError, index_factory
from qama_rs.engine.quantizer import Quantizer
from qama_rs.errors import QamaWarning
from qama_rs.quantizers import (
    AdaptiveBits,
    Allocated,
    AllocatedNibble,
    AllocatedNibbleScaled,
    AllocatedScaled,
    CalibrationFree2Bit,
    Int8,
    LloydMaxEmpirical,
    LloydMaxGauss,
    MedianBinary,
    PcaProduct,
    RandomizedHadamard,
    RandomOrthogonal,
    SignBinary,
    TritRotation,
)

DIM = 384
#: The byte-table codecs; with the per-dimension training-free quantizers (``PER_DIM``), keyed below by
#: their ``name``.
BYTE_TABLE = (Allocated, AllocatedScaled, AllocatedNibble, AllocatedNibbleScaled, TritRotation, PcaProduct)
#: Rotations in front of a quantizer: the index's transform stages (an index fitted and searched whole).
ROTATED = ("Hadamard(1),LloydMax2", "Orthogonal(1),Int8")


def _embeddings(n: int, d: int = DIM, seed: int = 0) -> np.ndarray:
    """Unit vectors with a decaying spectrum, like sentence embeddings."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) * np.exp(-np.arange(d) / 60.0)[:, None]
    x = rng.standard_normal((n, d)) @ mix
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def docs() -> np.ndarray:
    return _embeddings(5000)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return _embeddings(40, seed=1)


# ------------------------------------------------------------------------------------------ memory


def _thermo(scheme):
    return lambda x: Quantizer.fit(x, scheme).encode(x)


def _per_dim(cls):
    return lambda x: cls().fit(x).encode(x)


def _lut(make):
    def run(x):
        codec = make().fit(x)
        codec.encode(x)
        if hasattr(codec, "row_scale"):
            codec.row_scale(x)

    return run


#: The codec's own work behind each index spec of the memory bar (benches/bench_memory.py measures the
#: whole index); pca_pq runs 2 k-means iterations instead of 20 (the memory does not depend on them).
#: The corpus has more than EXACT_ROWS rows, where the PCA codecs compute their products in blocks too
#: (up to 65,536 rows they hold a float64 copy of the corpus for the covariance, as before, to keep
#: their tables bit-identical).
MEMORY_FAMILIES = {
    "Thermo1": _thermo("1bit"),
    "Thermo2": _thermo("2bit"),
    "Hybrid": _thermo("hybrid"),
    "LloydMax2": _per_dim(LloydMaxGauss),
    "Binary": _per_dim(SignBinary),
    "Int8": _per_dim(Int8),
    "pca_alloc_scaled(budget_bytes=48)": _lut(lambda: AllocatedScaled(budget_bytes=48)),
    "pca_nibble_scaled(budget_bytes=48)": _lut(lambda: AllocatedNibbleScaled(budget_bytes=48)),
    "pca_pq(m=24)": _lut(lambda: PcaProduct(m=24, iterations=2)),
}


@pytest.fixture(scope="module")
def corpus_70k() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((70_000, DIM), dtype=np.float32)
    x *= np.linspace(1.5, 0.05, DIM, dtype=np.float32)
    return x


@pytest.mark.parametrize("family", MEMORY_FAMILIES)
def test_fit_and_encode_take_less_memory_than_the_input(family, corpus_70k):
    # Before: float64 copies of the whole corpus (Quantizer.fit 4x, Allocated 7x its size at peak).
    assert len(corpus_70k) > quantizer_base.EXACT_ROWS
    tracemalloc.start()
    try:
        MEMORY_FAMILIES[family](corpus_70k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    mib = corpus_70k.nbytes / 2**20
    assert peak < corpus_70k.nbytes, f"{family}: {peak / 2**20:.0f} MiB for a {mib:.0f} MiB input"


# ------------------------------------------------------------ chunking changes no result (bit for bit)


def _outputs(make, docs, queries) -> list[np.ndarray]:
    """Everything a fitted codec produces: tables, codes, scores."""
    codec = make().fit(docs)
    if isinstance(codec, Quantizer):
        return [codec.thresholds.copy(), codec.encode(docs)]
    if isinstance(codec, RandomizedHadamard | RandomOrthogonal):
        return [codec.apply(docs), codec.apply(queries)]
    if isinstance(codec, Index):  # a rotation stage and its quantizer: every document's score, in rank order
        codec.add(docs)
        return list(codec.search(queries, len(docs)))
    out = [v for v in codec.to_state().values() if isinstance(v, np.ndarray)]  # every fitted table
    out.append(codec.encode(docs))
    if hasattr(codec, "query_luts"):
        out.append(codec.query_luts(queries))
    else:
        out += [codec.prepare_query(queries), *codec.reconstruction_values, *codec.thresholds]
    if hasattr(codec, "row_scale"):
        out.append(codec.row_scale(docs))
    return out


def _quantile_fit(scheme):
    class Fit:
        @staticmethod
        def fit(x):
            return Quantizer.fit(x, scheme)

    return Fit


def _rotation(cls, seed):
    class Fit:
        @staticmethod
        def fit(x):
            return cls(seed=seed).fit(x.shape[1])

    return Fit


CHUNKED = {
    **{cls.name: cls for cls in PER_DIM},
    "adaptive_bits(order=variance)": lambda: AdaptiveBits(order="variance"),
    "hadamard": _rotation(RandomizedHadamard, 1),  # rows in blocks
    "orthogonal": _rotation(RandomOrthogonal, 1),
    **{spec: (lambda spec=spec: index_factory(DIM, spec)) for spec in ROTATED},
    "pca_alloc(budget_bytes=48)": lambda: Allocated(48),
    "pca_alloc_scaled(budget_bytes=48)": lambda: AllocatedScaled(48),
    "pca_nibble(budget_bytes=48)": lambda: AllocatedNibble(48),
    "pca_nibble_scaled(budget_bytes=100)": lambda: AllocatedNibbleScaled(100),  # 32/64-level components
    "trit_rotation": TritRotation,
    "pca_alloc(transform=rotation)": lambda: Allocated(24, transform="rotation"),
    "pca_pq(m=24)": lambda: PcaProduct(m=24, iterations=3),
    "pca_pq(m=12,dims=12)": lambda: PcaProduct(m=12, dims=12, iterations=3),  # one-column sub-spaces
    **{f"Quantizer.fit({s})": (lambda s=s: _quantile_fit(s)) for s in ("1bit", "1.5bit", "2bit", "hybrid")},
}


@pytest.mark.parametrize("name", CHUNKED)
def test_chunked_fit_and_encode_equal_the_whole_array_computation(name, docs, queries, monkeypatch):
    # With unbounded scratch every statistic is taken over the whole corpus at once (the computation
    # the published numbers came from); with a small one, over many blocks of columns (and the rows of
    # the Hadamard rotation in blocks). The results must be the same bits.
    make = CHUNKED[name]
    monkeypatch.setattr(quantizer_base, "SCRATCH_BYTES", 1 << 40)
    monkeypatch.setattr(engine_quantizer, "_FIT_BLOCK_BYTES", 1 << 40)
    whole = _outputs(make, docs, queries)
    monkeypatch.setattr(quantizer_base, "SCRATCH_BYTES", 256 * 1024)
    monkeypatch.setattr(engine_quantizer, "_FIT_BLOCK_BYTES", 64 * 1024)
    chunked = _outputs(make, docs, queries)
    assert len(whole) == len(chunked)
    for a, b in zip(whole, chunked, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_quantizer_fit_is_the_whole_array_quantile(docs):
    # The thresholds are NumPy's quantiles of each (pair-reduced) column in float64, as before.
    for scheme, levels in (("2bit", 4), ("hybrid", None)):
        quantizer = Quantizer.fit(docs, scheme)
        values = quantizer.reduce(docs).astype(np.float64)
        counts = quantizer.levels.astype(np.int64)
        for count in np.unique(counts) if levels is None else [levels]:
            dims = np.flatnonzero(counts == count)
            expected = np.quantile(values[:, dims], np.arange(1, count) / count, axis=0).T
            got = np.stack([quantizer.thresholds_of(int(j)) for j in dims])
            np.testing.assert_array_equal(got, expected.astype(np.float32))


@pytest.mark.parametrize(
    "make",
    [lambda: AllocatedScaled(48), lambda: AllocatedNibbleScaled(100), lambda: PcaProduct(m=24, iterations=3)],
    ids=["pca_alloc_scaled", "pca_nibble_scaled", "pca_pq"],
)
def test_large_corpus_blocks_agree_with_one_piece_products(make, docs, queries, monkeypatch):
    # Over EXACT_ROWS documents the covariance, the coordinates and the encodes go in blocks of rows;
    # only float rounding may differ from the one-piece products, never the codes' meaning.
    one = make().fit(docs)
    monkeypatch.setattr(quantizer_base, "EXACT_ROWS", 1000)
    monkeypatch.setattr(quantizer_base, "SCRATCH_BYTES", 256 * 1024)
    blocked = make().fit(docs)

    def scores(codec):
        codes = codec.encode(docs).astype(np.int64)
        luts = codec.query_luts(queries)
        s = np.take_along_axis(luts[:, None], codes[None, :, :, None], axis=3)[..., 0].sum(axis=2)
        return s * codec.row_scale(docs) if hasattr(codec, "row_scale") else s

    assert np.mean(one.encode(docs) == blocked.encode(docs)) > 0.99
    np.testing.assert_allclose(scores(blocked), scores(one), atol=1e-3)


def test_encode_with_scale_is_encode_and_row_scale(docs):
    codec = AllocatedScaled(40).fit(docs)
    codes, scale = codec.encode_with_scale(docs)
    np.testing.assert_array_equal(codes, codec.encode(docs))
    np.testing.assert_array_equal(scale, codec.row_scale(docs))


# ---------------------------------------------------------------------------------- degenerate data

#: Every codec family that learns from the corpus, with the argument its errors name.
LEARNING = {
    **{cls.name: (cls, "doc_emb") for cls in PER_DIM},
    "Hadamard,LloydMax2": (lambda: index_factory(DIM, "Hadamard,LloydMax2"), "doc_emb"),
    **{cls.name: (cls, "x") for cls in BYTE_TABLE},
    **{
        f"Quantizer.fit({s})": (lambda s=s: _quantile_fit(s), "x")
        for s in ("1bit", "1.5bit", "2bit", "hybrid")
    },
}
#: Families that read nothing but the width (one row is all they need; constant data is no concern).
WIDTH_ONLY = ("binary", "calibration_free_2bit")


@pytest.mark.parametrize("name", [n for n in LEARNING if n not in WIDTH_ONLY])
def test_fitting_one_row_is_refused(name, docs):
    make, argname = LEARNING[name]
    with pytest.raises(QamaError, match=rf"^{argname} has 1 row.*at least 2 documents"):
        make().fit(docs[:1])


@pytest.mark.parametrize("name", WIDTH_ONLY)
def test_width_only_quantizers_fit_one_row(name, docs):
    quantizer = LEARNING[name][0]().fit(docs[:1])  # no error, no warning (warnings are errors here)
    assert quantizer.encode(docs[:5]).shape == (5, DIM)


@pytest.mark.parametrize("name", [n for n in LEARNING if n not in WIDTH_ONLY])
def test_constant_training_data_warns(name, docs):
    make, _ = LEARNING[name]
    constant = np.repeat(docs[:1], 300, axis=0)
    with pytest.warns(QamaWarning, match="zero spread"):
        make().fit(constant)


@pytest.mark.parametrize(
    "name", ["lloyd_max_gauss", "quaternary", "int8", "binary_median", "Quantizer.fit(2bit)"]
)
def test_a_constant_column_is_named(name, docs):
    make, _ = LEARNING[name]
    x = docs.copy()
    x[:, 7] = 0.25
    with pytest.warns(QamaWarning, match=r"1 column.*\(7\)|1 dimension.*\(7\)"):
        make().fit(x)


def test_index_refuses_one_row_and_warns_on_constant_data(docs):
    # The case: LloydMax2 trained on one row ranked every document the same, silently.
    with pytest.raises(QamaError, match="at least 2 documents"):
        index_factory(DIM, "LloydMax2").train(docs[:1])
    with pytest.warns(QamaWarning, match="zero spread"):
        index_factory(DIM, "LloydMax2").train(np.repeat(docs[:1], 10, axis=0))


# -------------------------------------------------------------------------------------- saved state


def _read_only(state: dict) -> dict:
    """A state as an index file hands it back: every array a read-only C-contiguous copy."""
    out = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            value = np.ascontiguousarray(value).copy()
            value.setflags(write=False)
        out[key] = value
    return out


STATEFUL = {
    **{cls.name: cls for cls in BYTE_TABLE if cls is not PcaProduct},
    "pca_nibble_scaled(budget_bytes=100)": lambda: AllocatedNibbleScaled(100),
    "pca_alloc(transform=rotation)": lambda: Allocated(24, transform="rotation"),
    "pca_pq": lambda: PcaProduct(m=24, iterations=3),
    "lloyd_max_gauss": LloydMaxGauss,
    "binary_median": MedianBinary,
    "adaptive_bits(order=variance)": lambda: AdaptiveBits(order="variance"),
    "lloyd_max_empirical": LloydMaxEmpirical,
    "int8": Int8,
}


def _same_codec(again, codec, docs, queries) -> None:
    np.testing.assert_array_equal(again.encode(docs), codec.encode(docs))
    if hasattr(codec, "query_luts"):
        np.testing.assert_array_equal(again.query_luts(queries), codec.query_luts(queries))
    else:
        np.testing.assert_array_equal(again.prepare_query(queries), codec.prepare_query(queries))
        for a, b in zip(again.reconstruction_values, codec.reconstruction_values, strict=True):
            np.testing.assert_array_equal(a, b)
    if hasattr(codec, "row_scale"):
        np.testing.assert_array_equal(again.row_scale(docs), codec.row_scale(docs))
    assert again.bytes_per_vector == codec.bytes_per_vector


@pytest.mark.parametrize("name", STATEFUL)
def test_state_is_arrays_and_round_trips_bit_for_bit(name, docs, queries):
    codec = STATEFUL[name]().fit(docs)
    state = codec.to_state()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    rest = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    assert all(a.flags.c_contiguous for a in arrays.values())
    # The JSON part is a few scalars; every table (before: 3-4 MB of nested lists) is an array.
    assert len(json.dumps(rest)) < 1000
    again = type(codec).from_state(_read_only(state))
    _same_codec(again, codec, docs, queries)


@pytest.mark.parametrize("name", ["pca_nibble_scaled", "pca_pq", "lloyd_max_gauss"])
def test_state_from_memory_mapped_files(name, docs, queries, tmp_path):
    codec = STATEFUL[name]().fit(docs)
    state = {}
    for key, value in codec.to_state().items():
        if isinstance(value, np.ndarray):
            np.save(tmp_path / f"{key}.npy", value)
            value = np.load(tmp_path / f"{key}.npy", mmap_mode="r")
        state[key] = value
    again = type(codec).from_state(state)
    _same_codec(again, codec, docs, queries)
    if hasattr(again, "basis"):
        assert np.shares_memory(again.basis, state["basis"])  # read in place, not copied


def test_states_saved_as_nested_lists_still_load(docs, queries):
    # Index files written before arrays hold every table as nested JSON lists.
    for codec in (AllocatedNibbleScaled(100).fit(docs), PcaProduct(m=8, iterations=2).fit(docs)):
        state = codec.to_state()
        legacy = {k: v for k, v in state.items() if not isinstance(v, np.ndarray) and k != "basis_transposed"}
        legacy["mean"] = state["mean"].astype(np.float64).tolist()
        legacy["basis"] = codec.basis.tolist()
        if isinstance(codec, PcaProduct):
            legacy["centroids"] = [c.tolist() for c in codec.centroids]
        else:
            legacy["levels"] = codec.levels.tolist()
            legacy["bounds"] = [b.tolist() for b in codec.bounds]
            legacy["values"] = [v.tolist() for v in codec.values]
            legacy["orders"] = [None if o is None else o.tolist() for o in codec.orders]
        again = type(codec).from_state(json.loads(json.dumps(legacy)))
        np.testing.assert_allclose(again.query_luts(queries), codec.query_luts(queries), rtol=1e-5, atol=1e-6)
        assert np.mean(again.encode(docs) == codec.encode(docs)) > 0.999


def _corruptions(state: dict):
    """(what, broken state) pairs of a fitted pca_nibble_scaled state."""
    d = len(state["mean"])
    yield "float64 basis", {**state, "basis": state["basis"].astype(np.float64)}
    yield "short basis", {**state, "basis": state["basis"][:, :-1].copy()}
    yield "scaled basis", {**state, "basis": state["basis"] * 2}
    mean = state["mean"].copy()
    mean[3] = np.nan
    yield "NaN mean", {**state, "mean": mean}
    yield "offsets past the end", {**state, "values_offsets": state["values_offsets"] + 1}
    yield "missing levels", {k: v for k, v in state.items() if k != "levels"}
    levels = state["levels"].copy()
    levels[0] = 300
    yield "300 levels", {**state, "levels": levels}
    orders = state["orders"].copy()
    orders[:2] = 0
    yield "order not a permutation", {**state, "orders": orders}
    yield "no orders", {**state, "orders": np.zeros(0, np.int64), "orders_offsets": np.zeros(d + 1, np.int64)}
    yield "another class", {**state, "class": "TritRotation"}
    yield "budget not an int", {**state, "budget_bytes": "48"}
    yield "a dict for a table", {**state, "bounds": {"a": 1}}


def test_corrupt_states_are_refused(docs):
    state = AllocatedNibbleScaled(100).fit(docs).to_state()
    assert len(state["orders"]) > 0  # 32/64-level additive components carry an order
    for what, broken in _corruptions(state):
        with pytest.raises(QamaError, match="corrupt saved state"):
            AllocatedNibbleScaled.from_state(broken)
            pytest.fail(f"accepted a state with {what}")
    pq = PcaProduct(m=8, iterations=2).fit(docs).to_state()
    for broken in (
        {**pq, "centroids": pq["centroids"][:-1], "centroids_offsets": pq["centroids_offsets"]},
        {**pq, "k": 300},
        {**pq, "dims": DIM + 1},
        {**pq, "mean": pq["mean"].astype(np.float16)},
    ):
        with pytest.raises(QamaError, match="corrupt saved state"):
            PcaProduct.from_state(broken)
    gauss = LloydMaxGauss().fit(docs).to_state()
    thresholds = gauss["thresholds"].copy()
    thresholds[:3] = thresholds[2::-1]
    for broken in ({**gauss, "thresholds": thresholds}, {**gauss, "class": "Nope"}, {**gauss, "bits": 9}):
        with pytest.raises(QamaError, match="corrupt saved state"):
            LloydMaxGauss.from_state(broken)
    with pytest.raises(QamaError, match="corrupt saved state"):
        CalibrationFree2Bit.from_state({**SignBinary().fit(docs).to_state()})


@pytest.mark.parametrize("spec", ROTATED)
def test_a_rotation_stage_round_trips_through_an_index_file_bit_for_bit(spec, docs, queries, tmp_path):
    # A rotated quantizer is saved by its index: the rotation stage's table and the codec's state.
    index = index_factory(DIM, spec)
    index.train(docs)
    index.add(docs[:3000])
    index.save(tmp_path / "rotated.qidx")
    for mmap in (False, True):
        again = Index.load(tmp_path / "rotated.qidx", mmap=mmap)
        again.add(docs[3000:])  # encoded by the loaded rotation and codec
        full = index_factory(DIM, spec)
        full.train(docs)
        full.add(docs)
        for got, want in zip(again.search(queries, 50), full.search(queries, 50), strict=True):
            np.testing.assert_array_equal(got, want)
