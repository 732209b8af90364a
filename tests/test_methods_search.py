"""Symmetric Hamming variants, Gray codes, rotations, and two-stage search through the factory index
(against the NumPy oracles of tests/_oracles.py), the rescoring stage by any codec (per-dimension,
float, or Hamming)."""

from __future__ import annotations

import numpy as np
import pytest

from _oracles import (
    hamming_distances,
    quantizer_hamming_distances,
    quantizer_scores,
    topk_largest,
    topk_smallest,
)
from qama_rs import QamaError, Quantizer, index_factory
from qama_rs.quantizers import (
    GrayTwoBit,
    LloydMaxGauss,
    MedianBinary,
    RandomizedHadamard,
    RandomOrthogonal,
    SignBinary,
    gray_decode,
    gray_encode,
)
from qama_rs.quantizers.rotation import walsh_hadamard


def _unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --------------------------------------------------------------------------- Hamming
def test_hamming_distances_match_a_naive_count():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (5, 13), dtype=np.uint8), rng.integers(0, 256, (9, 13), dtype=np.uint8)
    naive = np.array([[bin(int.from_bytes((x ^ y).tobytes(), "little")).count("1") for y in b] for x in a])
    np.testing.assert_array_equal(hamming_distances(a, b), naive)
    with pytest.raises(ValueError, match="bytes per row"):
        hamming_distances(a, b[:, :12])
    with pytest.raises(TypeError, match="query_bits"):
        hamming_distances(a.astype(np.int32), b)


def test_topk_breaks_ties_by_lower_id():
    d = np.array([[3, 1, 2, 1, 1, 0]])
    values, ids = topk_smallest(d, 4)
    np.testing.assert_array_equal(ids, [[5, 1, 3, 4]])
    np.testing.assert_array_equal(values, [[0, 1, 1, 1]])
    _, ids = topk_largest(np.array([[0.5, 0.9, 0.9, 0.1]], dtype=np.float32), 10)
    np.testing.assert_array_equal(ids, [[1, 2, 0, 3]])  # k > n returns n columns


@pytest.mark.parametrize("cls", [SignBinary, MedianBinary])
def test_binary_hamming_counts_disagreeing_signs(cls):
    x = _unit_rows(300, 70, 1)  # 70 bits: a partial last byte
    q = cls().fit(x)
    queries = _unit_rows(4, 70, 2)
    dist = quantizer_hamming_distances(q, queries, q.encode(x))
    c = q.center
    expected = ((queries[:, None, :] > c) != (x[None, :, :] > c)).sum(axis=2)
    np.testing.assert_array_equal(dist, expected)


# ------------------------------------------------------------------------- Gray codes
@pytest.mark.parametrize("bits", [2, 3, 8])
def test_gray_neighbours_differ_in_exactly_one_bit(bits):
    c = np.arange(2**bits, dtype=np.uint16)
    g = gray_encode(c)
    assert len(set(g.tolist())) == 2**bits  # a bijection
    assert (np.bitwise_count(g[:-1] ^ g[1:]) == 1).all()
    np.testing.assert_array_equal(gray_decode(g), c)


def test_gray_2bit_hamming_bits_and_distances():
    x = _unit_rows(400, 40, 3)
    q = GrayTwoBit().fit(x)
    codes = np.array([[0, 1, 2, 3] * 10], dtype=np.uint8)
    bits = q.hamming_bits(codes)
    assert bits.shape == (1, 80)
    np.testing.assert_array_equal(bits[0, :8], [0, 0, 1, 0, 1, 1, 0, 1])  # 00, 01, 11, 10 low bit first
    table = np.array([[0, 1, 2, 1], [1, 0, 1, 2], [2, 1, 0, 1], [1, 2, 1, 0]])  # 0 and 3: one bit apart
    all_codes = q.encode(x[:50])
    queries = x[50:53]
    expected = table[q.encode(queries)[:, None, :], all_codes[None, :, :]].sum(axis=2)
    np.testing.assert_array_equal(quantizer_hamming_distances(q, queries, all_codes), expected)
    # its codes and asymmetric scores are those of 2-bit Lloyd-Max
    lm = LloydMaxGauss().fit(x)
    np.testing.assert_array_equal(lm.encode(x), q.encode(x))
    np.testing.assert_allclose(
        quantizer_scores(lm, queries, all_codes), quantizer_scores(q, queries, all_codes)
    )


# -------------------------------------------------------------------------- rotations
@pytest.mark.parametrize("kind", [RandomOrthogonal, RandomizedHadamard], ids=lambda c: c.name)
@pytest.mark.parametrize("dim", [1, 7, 64, 96])
def test_rotations_are_orthogonal_and_preserve_inner_products(kind, dim):
    r = kind(seed=5).fit(dim)
    basis = r.apply(np.eye(dim, dtype=np.float32))
    assert basis.shape == (dim, r.out_dim)
    np.testing.assert_allclose(basis @ basis.T, np.eye(dim), atol=1e-5)
    x, y = _unit_rows(20, dim, 6), _unit_rows(30, dim, 7)
    np.testing.assert_allclose(r.apply(x) @ r.apply(y).T, x @ y.T, atol=1e-5)
    np.testing.assert_array_equal(kind(seed=5).fit(dim).apply(x), r.apply(x))
    if dim > 1:
        assert not np.allclose(kind(seed=6).fit(dim).apply(x), r.apply(x))


def test_hadamard_pads_to_a_power_of_two_and_is_the_walsh_matrix():
    assert RandomizedHadamard().fit(384).out_dim == 512
    assert RandomizedHadamard().fit(512).out_dim == 512
    h = walsh_hadamard(np.eye(4))
    np.testing.assert_allclose(h * 2, [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    with pytest.raises(ValueError, match="power-of-two"):
        walsh_hadamard(np.eye(3))


def test_rotation_errors():
    with pytest.raises(RuntimeError, match="fit"):
        RandomOrthogonal().apply(np.eye(3))
    with pytest.raises(ValueError, match="dim"):
        RandomizedHadamard().fit(0)
    with pytest.raises(ValueError, match="x has 4 dimensions"):
        RandomOrthogonal().fit(3).apply(np.eye(4))
    with pytest.raises(TypeError, match="seed"):
        RandomizedHadamard(seed=0.5)


@pytest.mark.parametrize("spec", ["Orthogonal(2),LloydMax2", "Hadamard(2),LloydMax2"])
def test_a_rotation_stage_quantizes_rotated_vectors(spec):
    """The index's rotation stage in front of a codec: the quantizer fitted on the rotated documents,
    scoring rotated queries (the rotation drawn from the stage's seed)."""
    x, q = _unit_rows(500, 48, 8), _unit_rows(3, 48, 9)
    rotation = (RandomOrthogonal if spec.startswith("Orthogonal") else RandomizedHadamard)(seed=2).fit(48)
    plain = LloydMaxGauss().fit(rotation.apply(x))
    index = index_factory(48, spec)
    index.train(x)
    index.add(x)
    D, ids = index.search(q, len(x))
    expected = quantizer_scores(plain, rotation.apply(q), plain.encode(rotation.apply(x)))
    np.testing.assert_allclose(D, np.take_along_axis(expected, ids, axis=1), rtol=1e-5, atol=1e-6)
    assert index.bytes_per_vector == plain.bytes_per_vector


# ------------------------------------------------------------------------- two-stage
@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    return _unit_rows(600, 64, 10), _unit_rows(9, 64, 11)


def _index(spec, docs):
    index = index_factory(docs.shape[1], spec)
    index.train(docs)
    index.add(docs)
    return index


@pytest.mark.parametrize(
    ("refine", "alone"),
    [("Rescore(LloydMax2,{k})", "LloydMax2"), ("RFlat({k})", "Flat"), ("Rescore(Int8,{k})", "Int8")],
)
def test_two_stage_with_all_candidates_equals_full_rescoring(refine, alone, corpus):
    docs, queries = corpus
    expected = _index(alone, docs).search(queries, 10)
    for k_prime in (len(docs), 10 * len(docs)):  # k' beyond n clips to n
        scores, ids = _index("Sign," + refine.format(k=k_prime), docs).search(queries, 10)
        np.testing.assert_array_equal(ids, expected[1])
        np.testing.assert_array_equal(scores, expected[0])


@pytest.mark.parametrize("first", ["Sign", "Binary"])
def test_two_stage_rescores_only_first_stage_candidates(first, corpus):
    docs, queries = corpus
    binary = SignBinary().fit(docs)
    codes = binary.encode(docs)
    if first == "Sign":
        _, candidates = topk_smallest(quantizer_hamming_distances(binary, queries, codes), 40)
    else:
        _, candidates = topk_largest(quantizer_scores(binary, queries, codes), 40)
    _, ids = _index(f"{first},Rescore(LloydMax2,40)", docs).search(queries, 5)
    lloyd = LloydMaxGauss().fit(docs)
    full = quantizer_scores(lloyd, queries, lloyd.encode(docs))
    for i in range(len(queries)):
        assert set(ids[i]) <= set(candidates[i])
        best = candidates[i][np.argsort(-full[i, candidates[i]], kind="stable")][:5]
        assert set(ids[i]) == set(best)
    # k' = k: the result is the first stage's top k, reordered by the finer scores
    _, ids_k = _index(f"{first},Rescore(LloydMax2,5)", docs).search(queries, 5)
    for i in range(len(queries)):
        assert set(ids_k[i]) == set(candidates[i][:5])


def test_two_stage_counts_both_stages_bytes_and_refuses_a_prefix(corpus):
    docs, queries = corpus
    assert _index("Sign,Rescore(LloydMax2,50)", docs).bytes_per_vector == 8 + 16
    assert _index("Sign,RFlat(50)", docs).bytes_per_vector == 8 + 64 * 4
    # dims reaches the first stage: candidates from the 32-dimension prefix, rescored with all dimensions.
    two = _index("Sign,RFlat(50)", docs)
    prefix_candidates = _index("Sign", docs).search(queries, 50, dims=32)[1]
    _, ids = two.search(queries, 10, dims=32)
    assert all(set(row) <= set(c) for row, c in zip(ids.tolist(), prefix_candidates.tolist(), strict=True))
    assert not np.array_equal(ids, two.search(queries, 10)[1])
    with pytest.raises(QamaError, match="dims"):
        two.search(queries, 10, dims=65)


def test_two_stage_rescores_with_a_hamming_codec(corpus):
    """``Rescore(Thermo2,k')``: the first stage's candidates reordered by their 2-bit thermometer
    Hamming distance (``D = -distance``), ties by the lower id."""
    docs, queries = corpus
    binary = SignBinary().fit(docs)
    _, candidates = topk_smallest(quantizer_hamming_distances(binary, queries, binary.encode(docs)), 50)
    thermo = Quantizer.fit(docs, "2bit")
    distances = hamming_distances(thermo.encode(queries).view(np.uint8), thermo.encode(docs).view(np.uint8))
    D, ids = _index("Sign,Rescore(Thermo2,50)", docs).search(queries, 10)
    for i, cands in enumerate(candidates):
        best = cands[np.lexsort((cands, distances[i, cands]))][:10]
        np.testing.assert_array_equal(ids[i], best)
        np.testing.assert_array_equal(D[i], -distances[i, best].astype(np.float32))
