"""index_factory / qama_rs.Index: every spec builds and round-trips, search agrees with the NumPy reference of
the engine and with the NumPy oracles, add/remove, faiss shapes and padding, clear errors."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

import _oracles
import _reference
import qama_rs
from qama_rs import Index, QamaError, Quantizer, quantizers
from qama_rs.cli.methods import METHOD_SPECS, method_spec
from qama_rs.index import index_factory, parse_spec, register_codec
from qama_rs.index.codecs import LutCodec
from qama_rs.quantizers import LloydMaxGauss, MedianBinary, RandomizedHadamard, SignBinary

DIMS = 72
SPECS = [
    "Flat",
    "Flat16",
    "Sign",
    "Thermo1",
    "Thermo1.5",
    "Thermo2",
    "Hybrid",
    "Binary",
    "BinaryMedian",
    "LloydMax2",
    "LloydMax4",
    "LloydMaxEmp2",
    "Int8",
    "Quaternary",
    "CalFree2",
    "Adaptive",
    "Gray2",
    "lloyd_max_gauss",
    "Hadamard,LloydMax2",
    "Orthogonal(3),Binary",
    "Prefix32,LloydMax2",
    "Prefix24,Thermo2",
    "Sign,Rescore(LloydMax2,40)",
    "Thermo1,RFlat(30)",
    "LloydMax2,Rescore(Int8,25)",
    "Hadamard,Sign,RFlat(20)",
]


def unit_rows(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return unit_rows(rng, 600, DIMS), unit_rows(rng, 9, DIMS)


def built(spec, docs, dims=DIMS, ids=None):
    index = index_factory(dims, spec)
    if not index.is_trained:
        index.train(docs)
    index.add(docs, ids=ids)
    return index


def mapped_base(array):
    """The object at the bottom of an array's chain of bases (an mmap for a mapped section)."""
    while isinstance(array, np.ndarray | memoryview):
        array = array.base if isinstance(array, np.ndarray) else array.obj
    return array


def asym_reference(quantizer, queries, docs, k):
    """The NumPy reference of the engine's asymmetric search of a fitted per-dimension quantizer (protocol A):
    its prepared queries against its codes, packed, scored through its reconstruction values."""
    recon = np.asarray(quantizer.reconstruction_values, dtype=np.float32)
    bits = {2: 1, 4: 2, 16: 4, 256: 8}[recon.shape[1]]
    packed = _reference.asym_pack(quantizer.encode(docs), bits)
    return _reference.asym_search(quantizer.prepare_query(queries), recon, packed, k), packed


def exported_codec_classes(method):
    """The codec classes :mod:`qama_rs.quantizers` exports that have ``method`` (``reconstruction_values``:
    the per-dimension quantizers; ``query_luts``: the byte-table codecs)."""
    classes = [getattr(quantizers, name) for name in quantizers.__all__]
    return [
        c for c in classes
        if isinstance(c, type) and hasattr(c, method) and hasattr(c, "fit") and c is not quantizers.TrainingFreeQuantizer
    ]  # fmt: skip


def hamming_reference(quantizer, queries, docs, k, dims=None):
    """The NumPy reference of a symmetric Hamming search with ``quantizer``'s codes (``dims``: the Matryoshka
    prefix), as an index reports it: ``(-distance float32, rows)``."""
    nbits = None if dims is None else quantizer.prefix_bits(dims)
    distances, rows = _reference.search(quantizer.encode(queries), quantizer.encode(docs), k, nbits)
    return -distances.astype(np.float32), rows


def among_candidates(candidates, scores, k):
    """The best ``k`` of each query's candidate rows by ``scores[q, row]``, ties by lower row."""
    cands = np.sort(candidates, axis=1)
    top, pos = _reference.top_scores(np.take_along_axis(scores, cands, axis=1).astype(np.float32), k)
    return top, np.take_along_axis(cands, pos, axis=1)


# ------------------------------------------------------------------------------------------ every spec


@pytest.mark.parametrize("spec", SPECS)
def test_every_spec_builds_searches_and_round_trips(spec, data, tmp_path):
    docs, queries = data
    index = built(spec, docs)
    assert len(index) == index.ntotal == 600 and spec in repr(index)
    D, labels = index.search(queries, 7)
    assert D.dtype == np.float32 and labels.dtype == np.int64 and D.shape == labels.shape == (9, 7)
    assert (labels >= 0).all() and (labels < 600).all()
    assert (np.diff(D, axis=1) <= 0).all()  # best first, higher is better
    # Each query is a random unit vector; its best document must score at least as well as a random one.
    assert index.bytes_per_vector > 0
    path = tmp_path / "index.qidx"
    index.save(path)
    for use_mmap in (False, True):
        loaded = Index.load(path, mmap=use_mmap)
        assert loaded.spec == spec and len(loaded) == 600
        assert loaded.bytes_per_vector == index.bytes_per_vector
        D2, labels2 = loaded.search(queries, 7)
        np.testing.assert_array_equal(labels2, labels)
        np.testing.assert_array_equal(D2, D)
        loaded.verify()


def test_mapped_load_serves_codes_from_the_file(data, tmp_path):
    docs, _ = data
    ids = np.arange(600, dtype=np.int64) * 2 + 5  # not the slots: the file keeps an ids section
    for spec in ("Thermo1", "LloydMax2", "Flat", "Sign,RFlat(10)"):
        path = tmp_path / "m.qidx"
        built(spec, docs, ids=ids).save(path)
        loaded = Index.load(path, mmap=True)
        stores = loaded._stores
        assert len(stores) == (2 if spec.endswith("RFlat(10)") else 1)
        # Saved in the layout the scan reads (the 32-row blocks for LloydMax2): every store's base segment is
        # a read-only view of the mapping, and a search reads it in place, building no rows.
        bases = [store._base for store in stores]
        if spec == "LloydMax2":
            assert stores[0].block_rows == 32
        loaded.search(docs[:2], 3)
        for store, base in zip(stores, bases, strict=True):
            assert store._base is base and isinstance(mapped_base(base), mmap.mmap), spec
            assert not base.flags.writeable
            assert store.rows == 600 and len(store._tail) == 0
        assert isinstance(mapped_base(loaded.ids), mmap.mmap)
        # Adding to a mapped index puts the new rows in memory (ids move there too); the mapped rows stay
        # where they are and the file is never written.
        before = path.read_bytes()
        loaded.add(docs[:3])
        assert len(loaded) == 603 and path.read_bytes() == before
        for store, base in zip(stores, bases, strict=True):
            assert store._base is base and store.rows == 603
        assert not isinstance(mapped_base(loaded.ids), mmap.mmap)
        # The copies (in memory) tie with their originals (mapped) and follow them: insertion order.
        np.testing.assert_array_equal(loaded.search(docs[:3], 2)[1], [[5, 1204], [7, 1205], [9, 1206]])
        full = Index.load(path)
        assert not isinstance(mapped_base(full.ids), mmap.mmap)
        assert not isinstance(mapped_base(full._stores[0]._base), mmap.mmap)


def test_method_names_map_to_specs_that_build(data):
    docs, queries = data
    for name, spec in METHOD_SPECS.items():
        assert method_spec(name) == spec
        built(spec, docs).search(queries, 3)
    assert method_spec("quantile", 1.5) == "Thermo1.5" and method_spec("quantile", "hybrid") == "Hybrid"
    assert method_spec("lloyd_max_gauss@hadamard") == "Hadamard,LloydMax2"
    assert method_spec("lloyd_max_gauss", 4) == "LloydMax4"
    assert method_spec("qama", 2, head="runs/h") == "QAMA(runs/h),Thermo2"
    assert method_spec("qama", 32, head="runs/h") == "QAMA(runs/h),Flat"
    assert method_spec("Hadamard,LloydMax2") is None  # a spec is not a method name
    with pytest.raises(QamaError, match="quantile bits"):
        method_spec("quantile", 3)
    with pytest.raises(QamaError, match="needs a trained head"):
        method_spec("qama", 2)


# ------------------------------------------------------------------------ parity with engine and oracles


def test_per_dimension_codec_equals_the_asymmetric_reference_and_oracle(data):
    docs, queries = data
    for spec, quantizer in (("LloydMax2", LloydMaxGauss()), ("BinaryMedian", MedianBinary()), ("LloydMax4", LloydMaxGauss(4))):
        quantizer.fit(docs)
        index = built(spec, docs)
        (ref_s, ref_i), packed = asym_reference(quantizer, queries, docs, 20)
        # The index stores the quantizer's codes, packed.
        np.testing.assert_array_equal(index._stores[0].list_rows(0)[0], packed)
        # The NumPy reference of the engine's summation order, bit for bit.
        D, labels = index.search(queries, 20)
        np.testing.assert_array_equal(labels, ref_i)
        np.testing.assert_array_equal(D, ref_s)
        # And the quantizer's own float scores (prepared query . reconstructed documents), to rounding.
        scores = _oracles.quantizer_scores(quantizer, queries, quantizer.encode(docs))
        np.testing.assert_allclose(D, np.take_along_axis(scores, labels, axis=1), rtol=1e-5, atol=1e-6)


def test_thermometer_codec_equals_the_hamming_reference(data):
    docs, queries = data
    for spec, scheme in (("Thermo1", "1bit"), ("Thermo1.5", "1.5bit"), ("Thermo2", "2bit"), ("Hybrid", "hybrid")):
        quantizer = Quantizer.fit(docs, scheme)
        index = built(spec, docs)
        assert index.metric == "hamming" and index.code_bits == quantizer.bits
        for dims in (None, 24) if scheme != "hybrid" else (None,):
            ref_d, ref_i = hamming_reference(quantizer, queries, docs, 30, dims)
            D, labels = index.search(queries, 30, dims=dims)
            np.testing.assert_array_equal(labels, ref_i)
            np.testing.assert_array_equal(D, ref_d)
    sign = built("Sign", docs)
    codes = Quantizer(np.zeros(DIMS, dtype=np.float32), 2)
    ref_d, ref_i = _reference.search(codes.encode(queries), codes.encode(docs), 15)
    D, labels = sign.search(queries, 15)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, -ref_d.astype(np.float32))


def test_two_stage_specs_equal_the_two_stage_reference(data):
    docs, queries = data
    sign = Quantizer(np.zeros(DIMS, dtype=np.float32), 2)
    lloyd = LloydMaxGauss().fit(docs)
    recon = np.asarray(lloyd.reconstruction_values, dtype=np.float32)
    packed = _reference.asym_pack(lloyd.encode(docs), 2)
    full = _reference.asym_scores(lloyd.prepare_query(queries), recon, packed)
    _, candidates = _reference.search(sign.encode(queries), sign.encode(docs), 40)
    ref_s, ref_i = among_candidates(candidates, full, 10)
    D, labels = built("Sign,Rescore(LloydMax2,40)", docs).search(queries, 10)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, ref_s)
    # RFlat: the Hamming top-30 rescored by exact inner products.
    _, candidates = _reference.search(sign.encode(queries), sign.encode(docs), 30)
    dots = queries.astype(np.float64) @ docs.astype(np.float64).T
    ref_s, ref_i = among_candidates(candidates, dots, 10)
    D, labels = built("Sign,RFlat(30)", docs).search(queries, 10)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_allclose(D, ref_s, rtol=1e-6, atol=1e-6)
    # Its scores are the float32 scores of the Flat index's scan, bit for bit (one inner-product kernel).
    flat_s, flat_i = built("Flat", docs).search(queries, len(docs))
    flat = np.empty_like(flat_s)
    np.put_along_axis(flat, flat_i, flat_s, axis=1)
    np.testing.assert_array_equal(D, np.take_along_axis(flat, labels, axis=1))
    # The NumPy two-stage oracle agrees on the ids (its scores are float32 dot products too).
    oracle = _oracles.TwoStageSearch(first_stage=SignBinary(), rescorer="float32", k_prime=30).fit(docs)
    np.testing.assert_array_equal(oracle.search(queries, 10)[1], labels)


def test_flat_equals_exact_inner_product(data):
    docs, queries = data
    D, labels = built("Flat", docs).search(queries, 25)
    ref_s, ref_i = _oracles.topk_largest(queries @ docs.T, 25)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_allclose(D, ref_s, rtol=1e-6, atol=1e-6)
    # Prefix: the first 16 dimensions, renormalized, for documents and queries alike.
    def norm(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    ref_s, ref_i = _oracles.topk_largest(norm(queries[:, :16]) @ norm(docs[:, :16]).T, 25)
    D, labels = built("Prefix16,Flat", docs).search(queries, 25)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_allclose(D, ref_s, rtol=1e-5, atol=1e-6)


def test_a_scan_over_a_mapped_base_and_an_in_memory_tail_merges_exactly(data, tmp_path):
    """Rows split between the file's (mapped) segment and the in-memory tail of later adds, in uneven pieces
    that cross the 32-row blocks, give exactly the top-k of one index holding them all."""
    docs, queries = data
    for spec in ("Flat", "LloydMax2"):
        one = built(spec, docs).search(queries, 50)
        first = index_factory(DIMS, spec)
        if not first.is_trained:
            first.train(docs)  # the same training data as the one-piece index: the same codes
        first.add(docs[:37])
        first.save(tmp_path / "part.qidx")
        split = Index.load(tmp_path / "part.qidx", mmap=True)
        for start, stop in ((37, 38), (38, 301), (301, 600)):
            split.add(docs[start:stop])
        store = split._stores[0]
        assert int(store._table[0, 1]) == 37 and int(store._table[0, 3]) == 563  # base rows, tail rows
        for got, want in zip(split.search(queries, 50), one, strict=True):
            np.testing.assert_array_equal(got, want)


def test_rotation_spec_equals_the_quantizer_of_rotated_vectors(data):
    docs, queries = data
    rotation = RandomizedHadamard(seed=0).fit(DIMS)
    quantizer = LloydMaxGauss().fit(rotation.apply(docs))
    (ref_s, ref_i), _ = asym_reference(quantizer, rotation.apply(queries), rotation.apply(docs), 12)
    D, labels = built("Hadamard,LloydMax2", docs).search(queries, 12)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, ref_s)
    assert built("Hadamard,LloydMax2", docs).bytes_per_vector == 128 * 2 // 8  # 72 -> 128 padded dims


# ----------------------------------------------------------------------------------- contents and ids


def test_faiss_shapes_padding_and_empty_index(data):
    docs, queries = data
    for spec in ("Flat", "Thermo2", "LloydMax2", "Sign,Rescore(LloydMax2,4)"):
        index = index_factory(DIMS, spec)
        if not index.is_trained:
            index.train(docs)
        D, labels = index.search(queries, 5)
        assert D.shape == labels.shape == (9, 5) and (labels == -1).all() and np.isneginf(D).all()
        index.add(docs[:6])
        D, labels = index.search(queries, 10)
        assert D.shape == (9, 10)
        # Every stored vector comes back (a rescoring depth k' = 4 below k rises to k), then the padding.
        assert (labels[:, :6] >= 0).all() and (labels[:, 6:] == -1).all() and np.isneginf(D[:, 6:]).all()
        assert (np.sort(labels[:, :6], axis=1) == np.arange(6)).all()
        D, labels = index.search(queries[:0], 3)
        assert D.shape == labels.shape == (0, 3)


def test_add_with_ids_remove_and_names(data):
    docs, queries = data
    index = index_factory(DIMS, "LloydMax2")
    index.train(docs)
    ids = np.arange(1000, 1600, dtype=np.int64)[::-1].copy()
    index.add(docs, ids=ids)
    D, labels = index.search(queries, 10)
    reference = built("LloydMax2", docs)
    D_ref, rows = reference.search(queries, 10)
    np.testing.assert_array_equal(labels, ids[rows])
    removed = index.remove(labels[:, 0])
    assert removed == len(set(labels[:, 0].tolist())) and len(index) == 600 - removed
    assert index.remove([123456]) == 0
    D2, labels2 = index.search(queries, 10)
    assert not np.isin(labels2, labels[:, 0]).any()
    keep = ~np.isin(ids, labels[:, 0])
    fresh = index_factory(DIMS, "LloydMax2")
    fresh.train(docs)  # same training data: same codes
    fresh.add(docs[keep], ids=ids[keep])
    np.testing.assert_array_equal(fresh.search(queries, 10)[1], labels2)
    with pytest.raises(QamaError, match="already in the index"):
        index.add(docs[:1], ids=[int(ids[keep][0])])
    with pytest.raises(QamaError, match="duplicates"):
        index.add(docs[:2], ids=[7, 7])
    # Default ids continue after the largest so far.
    index.add(docs[:1])
    assert index.ids[-1] == 1600

    named = index_factory(DIMS, "Thermo2")
    named.train(docs)
    names = [f"doc-{i}" for i in range(600)]
    named.add(docs, ids=names)
    D, labels = named.search(queries[:2], 3)
    assert named.names_of(labels).tolist() == [[names[i] for i in row] for row in labels]
    assert named.remove(["doc-5", "doc-6"]) == 2 and "doc-5" not in named.names
    with pytest.raises(QamaError, match="appears twice"):
        named.add(docs[:1], ids=["doc-7"])
    with pytest.raises(QamaError, match="string id per row"):
        named.add(docs[:1])
    padded = named.names_of(np.array([[-1, int(named.ids[0])]]))
    assert padded.tolist() == [["", named.names[0]]]


def test_names_survive_save_and_mapped_load(data, tmp_path):
    docs, queries = data
    index = index_factory(DIMS, "Binary")
    index.train(docs)
    names = [f"d{i}-ü" for i in range(600)]
    index.add(docs, ids=names)
    index.metadata = {"model": None, "source": "test"}
    index.save(tmp_path / "n.qidx")
    loaded = Index.load(tmp_path / "n.qidx", mmap=True)
    assert loaded.names == names and loaded.metadata == {"model": None, "source": "test"}
    np.testing.assert_array_equal(loaded.names_of(loaded.search(queries, 4)[1]), index.names_of(index.search(queries, 4)[1]))


def test_register_codec_plugs_in_a_protocol_a_codec(data):
    docs, queries = data

    class Ternary:
        """Protocol (A): 3 levels at +-0.5 sigma, reconstruction -1/0/1 (no row_scale)."""

        def fit(self, x):
            self.t = 0.5 * x.std(axis=0)
            return self

        def encode(self, x):
            return ((x > -self.t).astype(np.uint8) + (x > self.t)).astype(np.uint8)

        @property
        def reconstruction_values(self):
            return np.tile(np.array([-1.0, 0.0, 1.0], dtype=np.float32), (len(self.t), 1))

        def prepare_query(self, xq):
            return np.asarray(xq, dtype=np.float32)

        @property
        def bytes_per_vector(self):
            return -(-len(self.t) * 2 // 8)

    register_codec("TestTernary", Ternary, overwrite=True)
    index = built("testternary", docs)
    codec = Ternary().fit(docs)
    recon = np.array([-1.0, 0.0, 1.0], dtype=np.float32)[codec.encode(docs)]
    ref_s, ref_i = _oracles.topk_largest(queries @ recon.T, 8)
    D, labels = index.search(queries, 8)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_allclose(D, ref_s, rtol=1e-5, atol=1e-6)
    assert index.bytes_per_vector == codec.bytes_per_vector
    with pytest.raises(QamaError, match="cannot be saved"):
        index.save("/tmp/never-written.qidx")
    with pytest.raises(QamaError, match="already registered"):
        register_codec("TestTernary", Ternary)
    register_codec("NotACodec", lambda: object(), overwrite=True)
    with pytest.raises(QamaError, match="none of the codec protocols"):
        index_factory(DIMS, "NotACodec")


def test_qama_stage_uses_a_heads_features_and_thresholds(data, tmp_path):
    docs, queries = data
    rotation = np.linalg.qr(np.random.default_rng(9).standard_normal((DIMS, DIMS)))[0].astype(np.float32)

    class Head:
        levels = (DIMS, 24)
        dim = DIMS

        def transform(self, emb, dims=None):
            z = (emb @ rotation)[:, : dims or DIMS]
            return z / np.linalg.norm(z, axis=1, keepdims=True)

        def features(self, emb, dims, scheme):
            return self.transform(emb, dims)

        def quantizer(self, dims, scheme):
            return Quantizer.fit(self.features(docs[:100], dims, scheme), scheme)

    head = Head()
    for level in (None, 24):
        spec = "QAMA(fake),Thermo2" if level is None else f"QAMA(fake,{level}),Thermo2"
        index = index_factory(DIMS, spec, head=head)
        assert index.is_trained  # the head's thresholds: nothing to fit
        index.add(docs)
        q_features, d_features = (head.features(x, level or DIMS, "2bit") for x in (queries, docs))
        ref_d, ref_i = hamming_reference(head.quantizer(level or DIMS, "2bit"), q_features, d_features, 10)
        D, labels = index.search(queries, 10)
        np.testing.assert_array_equal(labels, ref_i)
        np.testing.assert_array_equal(D, ref_d)
    index = index_factory(DIMS, "QAMA(fake),LloydMax2", head=head)
    index.train(docs)
    index.add(docs)
    lloyd = LloydMaxGauss().fit(head.transform(docs))
    (ref_s, ref_i), _ = asym_reference(lloyd, head.transform(queries), head.transform(docs), 10)
    D, labels = index.search(queries, 10)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, ref_s)
    with pytest.raises(QamaError, match="not one of the head's levels"):
        index_factory(DIMS, "QAMA(fake,7),Thermo2", head=head)
    with pytest.raises(QamaError, match=r"QAMA\(.*nowhere"):
        index_factory(DIMS, f"QAMA({tmp_path / 'nowhere'}),Thermo2")
    # Embeddings of another width: the error names the model the head was trained on.
    head.base_model = "models/wide-model"
    with pytest.raises(QamaError, match=rf"takes {DIMS}-dimensional embeddings, not 16 .*models/wide-model"):
        index_factory(16, "QAMA(fake),Thermo2", head=head)


def test_qama_pretrained_without_a_pretrained_head_is_a_clear_error(monkeypatch):
    from qama_rs.qama.model import QamaModel

    monkeypatch.delattr(QamaModel, "pretrained", raising=False)
    with pytest.raises(QamaError, match="no pretrained head"):
        index_factory(DIMS, "QAMA(pretrained),Thermo2")


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("Nope", "unknown codec 'Nope'"),
        ("Flat,Flat", "after the codec"),
        ("Hadamard", "names no codec"),
        ("Rescore(Flat,10)", "refines a codec"),
        ("Sign,Rescore(LloydMax2)", "Rescore\\(codec,k'\\)"),
        ("Sign,Rescore(LloydMax2,0)", "k' = 0"),
        ("Sign,RFlat(x)", "must be an integer"),
        ("Sign,RFlat(10),Flat", "nothing may follow"),
        ("Flat(3)", "takes no arguments"),
        ("LloydMax9", "bits = 9"),
        ("Prefix99,Flat", "prefix of 99"),
        ("Flat,,Sign", "empty stage"),
        ("Thermo2(", "missing '\\)'"),
        ("Thermo2)", "unbalanced"),
        ("Hadamard(1,2),Flat", "at most one argument"),
        ("LloydMax2,Hadamard", "transform"),
    ],
)
def test_bad_specs_are_one_clear_error(spec, message):
    with pytest.raises(QamaError, match=message):
        index_factory(DIMS, spec)


def test_bad_arguments_name_themselves(data):
    docs, queries = data
    index = built("LloydMax2", docs)
    cases = [
        (lambda: index.search(queries.astype(np.int32), 3), qama_rs.QamaTypeError, "xq must be a floating-point"),
        (lambda: index.search(queries[:, :5], 3), QamaError, "xq has 5 columns"),
        (lambda: index.search(queries[0], 3), QamaError, "xq must be 2-D"),
        (lambda: index.search(np.where(np.arange(DIMS) == 2, np.nan, queries), 3), QamaError, "xq has a non-finite"),
        (lambda: index.search(queries, 0), QamaError, "k = 0"),
        (lambda: index.search(queries, 2.5), TypeError, "k must be an int"),
        (lambda: index.search(queries, True), TypeError, "k must be an int"),
        (lambda: index.search(queries, 2**31), QamaError, "k = 2147483648"),
        (lambda: index.search(queries, 2**30), QamaError, "at most"),
        (lambda: index.search(queries, 3, dims=0), QamaError, "dims = 0"),
        (lambda: index.add(np.full((2, DIMS), np.inf, np.float32)), QamaError, "x has a non-finite"),
        (lambda: index.add(docs, ids=np.arange(3)), QamaError, "ids must have shape"),
        (lambda: index.add(docs[:2], ids=[1.5, 2.5]), TypeError, "ids must be integers"),
        (lambda: index.add(docs[:2], ids=[-1, 4]), QamaError, "non-negative"),
        (lambda: index_factory(0, "Flat"), QamaError, "dims = 0"),
        (lambda: index_factory(DIMS, 7), QamaError, "spec must be a string"),
        (lambda: index_factory(DIMS, "Thermo2").add(docs), QamaError, "not trained"),
        (lambda: index_factory(DIMS, "Thermo2").train(docs[:0]), QamaError, "x has no rows"),
        (lambda: index.train(docs), QamaError, "already holds vectors"),
        (lambda: built("Hadamard,LloydMax2", docs).search(queries, 3, dims=8), QamaError, "no Matryoshka prefix"),
        (lambda: index.add_codes(np.zeros((2, 3), np.int8)), QamaError, "codes must be a uint8"),
        (lambda: index.verify(), QamaError, "loaded from a file"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    assert issubclass(QamaError, ValueError) and issubclass(qama_rs.QamaTypeError, TypeError)


def test_corrupt_truncated_and_foreign_files(data, tmp_path):
    docs, _ = data
    path = tmp_path / "c.qidx"
    built("LloydMax2", docs).save(path)
    good = path.read_bytes()
    from qama_rs.index import fileformat

    header, _ = fileformat.read_index(path, mmap_mode=True)
    flipped = bytearray(good)
    flipped[header["sections"]["codec.rows.data"]["offset"] + 5] ^= 0xFF
    (tmp_path / "flip.qidx").write_bytes(bytes(flipped))
    with pytest.raises(QamaError, match="checksum"):
        Index.load(tmp_path / "flip.qidx")
    mapped = Index.load(tmp_path / "flip.qidx", mmap=True)  # a mapped load reads no codes ...
    with pytest.raises(QamaError, match="section 'codec.rows.data' checksum"):
        mapped.verify()  # ... until asked to
    header = bytearray(good)
    header[100] ^= 0x01
    (tmp_path / "head.qidx").write_bytes(bytes(header))
    for use_mmap in (False, True):
        with pytest.raises(QamaError, match="header checksum"):
            Index.load(tmp_path / "head.qidx", mmap=use_mmap)
    (tmp_path / "short.qidx").write_bytes(good[:-100])
    (tmp_path / "tiny.qidx").write_bytes(good[:20])
    (tmp_path / "foreign.qidx").write_bytes(b"PK\x03\x04" + good[4:])
    (tmp_path / "empty.qidx").write_bytes(b"")
    newer = bytearray(good)
    newer[8] = 9
    (tmp_path / "newer.qidx").write_bytes(bytes(newer))
    for name, message in (("short", "truncated"), ("tiny", "truncated"), ("foreign", "bad magic"), ("empty", "empty|truncated"),
                          ("newer", "version 9"), ("missing", "no such index file")):
        for use_mmap in (False, True):
            with pytest.raises(QamaError, match=message):
                Index.load(tmp_path / f"{name}.qidx", mmap=use_mmap)


def test_failed_save_leaves_the_old_file(data, tmp_path, monkeypatch):
    from qama_rs.index import fileformat

    docs, _ = data
    path = tmp_path / "keep.qidx"
    built("Thermo1", docs).save(path)
    before = path.read_bytes()
    real_chunks = fileformat._chunks

    def failing_chunks(*args):
        chunks = real_chunks(*args)
        yield next(chunks)
        yield next(chunks)
        raise OSError("disk full")

    monkeypatch.setattr(fileformat, "_chunks", failing_chunks)
    with pytest.raises(OSError, match="disk full"):
        built("Sign", docs).save(path)  # fails half-way through writing the sections
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.qidx"]


def test_parse_spec_keeps_nested_stages():
    stages = parse_spec(" Hadamard(7) , Sign,Rescore( LloydMax2 , 100 )")
    assert [s.name for s in stages] == ["Hadamard", "Sign", "Rescore"]
    assert stages[0].args == ("7",) and stages[2].args == ("LloydMax2", "100")


# ----------------------------------------------------------------- plugged-in codecs: row_scale and LUTs


class ScaledSigns:
    """Protocol (A) with a per-vector scale: sign bits, reconstruction +-1, row_scale = mean |x_i|."""

    def fit(self, x):
        self.d = x.shape[1]
        return self

    def encode(self, x):
        return (np.asarray(x) > 0).astype(np.uint8)

    @property
    def reconstruction_values(self):
        return np.tile(np.array([-1.0, 1.0], dtype=np.float32), (self.d, 1))

    def prepare_query(self, xq):
        return np.asarray(xq, dtype=np.float32)

    def row_scale(self, x):
        return np.abs(x).mean(axis=1).astype(np.float32)

    @property
    def bytes_per_vector(self):
        return -(-self.d // 8) + 4

    def to_state(self):
        return {"d": self.d}

    @classmethod
    def from_state(cls, state):
        codec = cls()
        codec.d = int(state["d"])
        return codec


class PairProduct:
    """Protocol (B): one byte per pair of dimensions, 16 cells (4 Lloyd-Max levels each side)."""

    def fit(self, x):
        self.sigma = float(x.std())
        self.levels = (np.array([-1.5104, -0.4528, 0.4528, 1.5104]) * self.sigma).astype(np.float32)
        self.m = x.shape[1] // 2
        return self

    def _level_codes(self, x):
        return np.searchsorted(0.5 * (self.levels[1:] + self.levels[:-1]), np.asarray(x, np.float32)).astype(np.uint8)

    def encode(self, x):
        c = self._level_codes(x)
        return (c[:, 0::2] | (c[:, 1::2] << 2)).astype(np.uint8)

    def query_luts(self, xq):
        xq = np.asarray(xq, dtype=np.float32)
        v = np.arange(256)
        low, high = self.levels[v & 3], self.levels[(v >> 2) & 3]
        luts = xq[:, 0::2, None] * low[None, None, :] + xq[:, 1::2, None] * high[None, None, :]
        return np.where(v < 16, luts, 0.0).astype(np.float32)

    @property
    def bytes_per_vector(self):
        return self.m

    def to_state(self):
        return {"sigma": self.sigma, "levels": self.levels.tolist(), "m": self.m}

    @classmethod
    def from_state(cls, state):
        codec = cls()
        codec.sigma, codec.m = state["sigma"], state["m"]
        codec.levels = np.array(state["levels"], dtype=np.float32)
        return codec


def test_row_scaled_codec_scores_through_the_engine(data, tmp_path):
    docs, queries = data
    register_codec("TestScaledSigns", ScaledSigns, overwrite=True)
    index = built("TestScaledSigns", docs)
    assert index.bytes_per_vector == 9 + 4
    scale = np.abs(docs).mean(axis=1).astype(np.float32)
    signs = np.where(docs > 0, 1.0, -1.0).astype(np.float32)
    ref_s, ref_i = _oracles.topk_largest((queries @ signs.T) * scale[None, :], 15)
    D, labels = index.search(queries, 15)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_allclose(D, ref_s, rtol=1e-5, atol=1e-6)
    # As a rescorer, and saved / mapped with its scales.
    two = built("Sign,Rescore(TestScaledSigns,600)", docs)
    np.testing.assert_array_equal(two.search(queries, 15)[1], labels)
    index.save(tmp_path / "s.qidx")
    loaded = Index.load(tmp_path / "s.qidx", mmap=True)
    np.testing.assert_array_equal(loaded.search(queries, 15)[1], labels)
    # The row scales live in the store beside the codes: read-only views of the mapping.
    scales = loaded._stores[0]._base_scale
    assert isinstance(mapped_base(scales), mmap.mmap) and not scales.flags.writeable
    np.testing.assert_array_equal(scales[:600], scale)
    assert loaded.remove(labels[:, 0]) > 0 and not np.isin(loaded.search(queries, 15)[1], labels[:, 0]).any()


def test_lookup_table_codec_scores_through_the_engine(data, tmp_path):
    docs, queries = data
    register_codec("TestPairProduct", PairProduct, overwrite=True)
    index = built("TestPairProduct", docs)
    codec = PairProduct().fit(docs)
    scores = _reference.lut_scores(codec.query_luts(queries), codec.encode(docs))
    ref_s, ref_i = _oracles.topk_largest(scores, 12)
    D, labels = index.search(queries, 12)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, ref_s)
    assert index.bytes_per_vector == DIMS // 2
    np.testing.assert_array_equal(built("Sign,Rescore(TestPairProduct,600)", docs).search(queries, 12)[1], labels)
    index.save(tmp_path / "l.qidx")
    for use_mmap in (False, True):
        np.testing.assert_array_equal(Index.load(tmp_path / "l.qidx", mmap=use_mmap).search(queries, 12)[1], labels)
    with pytest.raises(QamaError, match="dims"):
        index.search(queries, 3, dims=8)


def test_concurrent_searches_and_adds_agree_with_a_serial_run(data):
    import threading

    docs, queries = data
    index = index_factory(DIMS, "LloydMax2")
    index.train(docs)
    index.add(docs[:300])
    before = index.search(queries, 10)
    results, errors = [], []

    def searcher():
        try:
            for _ in range(20):
                results.append(index.search(queries, 10))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=searcher) for _ in range(8)]
    for t in threads:
        t.start()
    for start in range(300, 600, 50):
        index.add(docs[start : start + 50])
    for t in threads:
        t.join()
    after = index.search(queries, 10)
    assert not errors
    serial = {before[1].tobytes(): before, after[1].tobytes(): after}
    # Every concurrent answer is the answer of some prefix of the adds, computed serially.
    for n in range(350, 600, 50):
        ref = index_factory(DIMS, "LloydMax2")
        ref.train(docs)  # the same training data as the shared index
        ref.add(docs[:n])
        r = ref.search(queries, 10)
        serial[r[1].tobytes()] = r
    for D, labels in results:
        assert labels.tobytes() in serial
        np.testing.assert_array_equal(D, serial[labels.tobytes()][0])


def test_every_training_free_quantizer_class_is_a_codec_by_its_name(data):
    """Every per-dimension quantizer qama_rs.quantizers exports (e.g. one added by later work) plugs into the
    factory by its ``name``: the index registry resolves it."""
    docs, queries = data
    classes = exported_codec_classes("reconstruction_values")
    assert len(classes) == 10 and {c.name for c in classes} <= {n.lower() for n in qama_rs.available_codecs()}
    for cls in classes:
        index = built(cls.name, docs)
        assert type(index.codec.impl) is cls
        D, labels = index.search(queries, 5)
        assert D.shape == labels.shape == (9, 5) and (labels >= 0).all() and (np.diff(D, axis=1) <= 0).all()
    index = built("adaptive_bits(high_dims=8,low_bits=1)", docs)
    assert index.bytes_per_vector == DIMS * 4 // 8  # stored at the widest code (4 bits) for every dimension
    with pytest.raises(QamaError, match="unexpected keyword"):
        index_factory(DIMS, "lloyd_max_gauss(nonsense=1)")


def test_a_saved_qama_head_by_path_round_trips_with_the_index(tmp_path, capsys):
    """QAMA(path): a real QamaModel folder; the index file names the head by path and reloads it for queries."""
    torch = pytest.importorskip("torch")
    from qama_rs.cli.main import main
    from qama_rs.qama.config import HeadConfig, QamaConfig, ThresholdConfig
    from qama_rs.qama.head import QamaHead
    from qama_rs.qama.model import QamaModel
    from qama_rs.qama.thresholds import ThresholdBank

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)) @ rng.standard_normal((8, 32)) + 0.3 * rng.standard_normal((300, 32))
    docs = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    config = QamaConfig(head=HeadConfig(input_dim=32, expansion=2, levels=(32, 16)), thresholds=ThresholdConfig(schemes=("2bit", "hybrid")))
    torch.manual_seed(0)
    head = QamaHead(config.head)
    head.init_from_data(torch.from_numpy(docs))
    bank = ThresholdBank(head.levels, config.thresholds.schemes)
    with torch.no_grad():
        h = head(torch.from_numpy(docs))
        for level, scheme in bank.pairs():
            bank.fit(level, scheme, head.features(head.slice(h, level), scheme))
    model = QamaModel(head, bank, config)
    folder = tmp_path / "head"
    model.save(folder)
    queries = docs[:7] + 0.05
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for spec, level, scheme in ((f"QAMA({folder}),Hybrid", 32, "hybrid"), (f"QAMA({folder},16),Thermo2", 16, "2bit")):
        index = index_factory(32, spec)
        assert index.is_trained
        index.add(docs)
        q_features, d_features = (model.features(x, level, scheme) for x in (queries, docs))
        ref_d, ref_i = hamming_reference(model.quantizer(level, scheme), q_features, d_features, 10)
        D, labels = index.search(queries, 10)
        np.testing.assert_array_equal(labels, ref_i)
        np.testing.assert_array_equal(D, ref_d)
        index.save(tmp_path / "q.qidx")
        loaded = Index.load(tmp_path / "q.qidx", mmap=True)
        np.testing.assert_array_equal(loaded.search(queries, 10)[1], labels)
    # The CLI: --codec qama --bits hybrid --head DIR, on precomputed 32-d embeddings.
    np.save(tmp_path / "emb.npy", docs)
    out = tmp_path / "cli.qidx"
    assert main(["index", "build", "--embeddings", str(tmp_path / "emb.npy"), "--codec", "qama", "--bits", "hybrid",
                 "--head", str(folder), "--out", str(out)]) == 0
    assert f"QAMA({folder}),Hybrid" in capsys.readouterr().out
    cli_index = Index.load(out)
    ref = index_factory(32, f"QAMA({folder}),Hybrid")
    ref.add(docs, ids=[str(i) for i in range(300)])
    np.testing.assert_array_equal(cli_index.search(queries, 10)[1], ref.search(queries, 10)[1])


def test_every_byte_lut_codec_class_scores_through_the_engine(data, tmp_path):
    """Every byte-table codec qama_rs.quantizers exports (protocol B) plugs in by its ``name``: engine scores
    equal the NumPy LUT oracle (for a codec with ``projection()``, the tables the engine builds from it, which
    also equal the codec's own ``query_luts`` up to float rounding), and the index round-trips through a
    mapped file."""
    docs, queries = data
    classes = exported_codec_classes("query_luts")
    assert len(classes) == 6 and {c.name for c in classes} <= {n.lower() for n in qama_rs.available_codecs()}
    for cls in classes:
        name = cls.name
        index = built(name, docs)
        assert isinstance(index.codec, LutCodec) and index.codec.kind == "table" and type(index.codec.impl) is cls
        codec = cls().fit(docs)
        scale = codec.row_scale(docs) if hasattr(codec, "row_scale") else None
        luts = codec.query_luts(queries)
        if hasattr(codec, "projection"):
            projected = _reference.projected_tables(queries, *codec.projection())
            np.testing.assert_allclose(projected, luts, rtol=0, atol=1e-5, err_msg=name)
            luts = projected
        ref_s, ref_i = _oracles.topk_largest(_reference.lut_scores(luts, codec.encode(docs), scale), 10)
        D, labels = index.search(queries, 10)
        np.testing.assert_array_equal(labels, ref_i, err_msg=name)
        np.testing.assert_array_equal(D, ref_s, err_msg=name)
        index.save(tmp_path / f"{name}.qidx")
        np.testing.assert_array_equal(Index.load(tmp_path / f"{name}.qidx", mmap=True).search(queries, 10)[1], labels)


def test_the_pretrained_head_refits_its_codes_on_the_indexed_documents_and_the_file_keeps_them(tmp_path):
    """QAMA(pretrained): training the index re-chooses the code rotation on its documents (QamaModel.recalibrate)
    and refits the thresholds; the rotation is stored, so a loaded index answers queries as the built one."""
    from qama_rs.qama.model import QamaModel

    rng = np.random.default_rng(3)
    x = rng.standard_normal((600, 24)) @ rng.standard_normal((24, 384)) + 0.2 * rng.standard_normal((600, 384))
    docs = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    queries = docs[:9] + 0.02 * rng.standard_normal((9, 384)).astype(np.float32)
    index = index_factory(384, "QAMA(pretrained,96),Thermo1")
    assert not index.is_trained
    index.train(docs)
    index.add(docs)
    model = QamaModel.pretrained().recalibrate(docs, pairs=[(96, "1bit")])
    shipped = QamaModel.pretrained()
    assert not np.allclose(model.head.code_rotation(96, "1bit"), shipped.head.code_rotation(96, "1bit"))
    q_features, d_features = (model.features(x, 96, "1bit") for x in (queries, docs))
    ref_d, ref_i = hamming_reference(Quantizer.fit(d_features, levels=2), q_features, d_features, 10)
    D, labels = index.search(queries, 10)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, ref_d)
    index.save(tmp_path / "p.qidx")
    loaded = Index.load(tmp_path / "p.qidx")
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], labels)


def test_one_pretrained_model_object_behind_two_indexes_keeps_each_index_codes():
    """Recalibrating for one corpus must not move the codes of another index built over the same model object."""
    from qama_rs.qama.model import QamaModel

    rng = np.random.default_rng(5)
    model = QamaModel.pretrained()
    before = model.head.code_rotation(96, "1bit").clone()
    corpora = []
    for _ in range(2):
        x = rng.standard_normal((300, 16)) @ rng.standard_normal((16, 384)) + 0.3 * rng.standard_normal((300, 384))
        corpora.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    first = index_factory(384, "QAMA(pretrained,96),Thermo1", head=model)
    first.train(corpora[0])
    first.add(corpora[0])
    answers = first.search(corpora[0][:5], 10)[1]
    second = index_factory(384, "QAMA(pretrained,96),Thermo1", head=model)
    second.train(corpora[1])
    second.add(corpora[1])
    np.testing.assert_array_equal(first.search(corpora[0][:5], 10)[1], answers)
    np.testing.assert_array_equal(model.head.code_rotation(96, "1bit"), before)
