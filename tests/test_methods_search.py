"""Symmetric Hamming variants, Gray codes, rotations and the NumPy two-stage search."""

from __future__ import annotations

import numpy as np
import pytest

from qama_rs.quantizers import (
    GrayTwoBit,
    LloydMaxGauss,
    MedianBinary,
    SignBinary,
    TwoStageSearch,
    gray_decode,
    gray_encode,
    make_method,
    make_rotation,
)
from qama_rs.quantizers.hamming import hamming_distances, topk_largest, topk_smallest
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
    dist = q.hamming_distances(queries, q.encode(x))
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
    np.testing.assert_array_equal(q.hamming_distances(queries, all_codes), expected)
    # its codes and asymmetric scores are those of 2-bit Lloyd-Max
    lm = LloydMaxGauss().fit(x)
    np.testing.assert_array_equal(lm.encode(x), q.encode(x))
    np.testing.assert_allclose(lm.score(queries, all_codes), q.score(queries, all_codes))


# -------------------------------------------------------------------------- rotations
@pytest.mark.parametrize("kind", ["orthogonal", "hadamard"])
@pytest.mark.parametrize("dim", [1, 7, 64, 96])
def test_rotations_are_orthogonal_and_preserve_inner_products(kind, dim):
    r = make_rotation(kind, seed=5).fit(dim)
    basis = r.apply(np.eye(dim, dtype=np.float32))
    assert basis.shape == (dim, r.out_dim)
    np.testing.assert_allclose(basis @ basis.T, np.eye(dim), atol=1e-5)
    x, y = _unit_rows(20, dim, 6), _unit_rows(30, dim, 7)
    np.testing.assert_allclose(r.apply(x) @ r.apply(y).T, x @ y.T, atol=1e-5)
    np.testing.assert_array_equal(make_rotation(kind, seed=5).fit(dim).apply(x), r.apply(x))
    if dim > 1:
        assert not np.allclose(make_rotation(kind, seed=6).fit(dim).apply(x), r.apply(x))


def test_hadamard_pads_to_a_power_of_two_and_is_the_walsh_matrix():
    assert make_rotation("hadamard").fit(384).out_dim == 512
    assert make_rotation("hadamard").fit(512).out_dim == 512
    h = walsh_hadamard(np.eye(4))
    np.testing.assert_allclose(h * 2, [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    with pytest.raises(ValueError, match="power-of-two"):
        walsh_hadamard(np.eye(3))


def test_rotation_errors():
    with pytest.raises(RuntimeError, match="fit"):
        make_rotation("orthogonal").apply(np.eye(3))
    with pytest.raises(ValueError, match="dim"):
        make_rotation("hadamard").fit(0)
    with pytest.raises(ValueError, match="x has 4 dimensions"):
        make_rotation("orthogonal").fit(3).apply(np.eye(4))


def test_rotated_quantizer_quantizes_rotated_vectors():
    x = _unit_rows(500, 48, 8)
    rotated = make_method("lloyd_max_gauss", rotation="orthogonal", seed=2).fit(x)
    plain = LloydMaxGauss().fit(rotated.rotation.apply(x))
    np.testing.assert_array_equal(rotated.encode(x), plain.encode(rotated.rotation.apply(x)))
    q = _unit_rows(3, 48, 9)
    np.testing.assert_allclose(
        rotated.score(q, rotated.encode(x)),
        plain.score(rotated.rotation.apply(q), plain.encode(rotated.rotation.apply(x))),
        rtol=1e-5,
        atol=1e-6,
    )


# ------------------------------------------------------------------------- two-stage
@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    return _unit_rows(600, 64, 10), _unit_rows(9, 64, 11)


@pytest.mark.parametrize("rescorer", [None, "float32", "int8"])
def test_two_stage_with_all_candidates_equals_full_rescoring(rescorer, corpus):
    docs, queries = corpus
    second = make_method(rescorer) if rescorer == "int8" else rescorer
    search = TwoStageSearch(rescorer=second).fit(docs)
    scores, ids = search.search(queries, k=10, k_prime=len(docs))
    if rescorer == "float32":
        full = queries @ docs.T
    else:
        q = search.rescorer
        full = q.score(queries, q.encode(docs))
    exp_scores, exp_ids = topk_largest(full, 10)
    np.testing.assert_array_equal(ids, exp_ids)
    np.testing.assert_allclose(scores, exp_scores, rtol=1e-5, atol=1e-6)
    # k_prime beyond n clips to n
    np.testing.assert_array_equal(search.search(queries, k=10, k_prime=10 * len(docs))[1], ids)


@pytest.mark.parametrize("mode", ["hamming", "asymmetric"])
def test_two_stage_rescores_only_first_stage_candidates(mode, corpus):
    docs, queries = corpus
    search = TwoStageSearch(first_stage_mode=mode).fit(docs)
    binary = SignBinary().fit(docs)
    codes = binary.encode(docs)
    if mode == "hamming":
        _, candidates = topk_smallest(binary.hamming_distances(queries, codes), 40)
    else:
        _, candidates = topk_largest(binary.score(queries, codes), 40)
    _, ids = search.search(queries, k=5, k_prime=40)
    full = search.rescorer.score(queries, search.rescorer.encode(docs))
    for i in range(len(queries)):
        assert set(ids[i]) <= set(candidates[i])
        best = candidates[i][np.argsort(-full[i, candidates[i]], kind="stable")][:5]
        assert set(ids[i]) == set(best)
    # k_prime = k: the result is the first stage's top k, reordered by the finer scores
    _, ids_k = search.search(queries, k=5, k_prime=5)
    for i in range(len(queries)):
        assert set(ids_k[i]) == set(candidates[i][:5])


def test_two_stage_sweep_matches_single_searches_and_counts_bytes(corpus):
    docs, queries = corpus
    search = TwoStageSearch().fit(docs)
    sweep = search.sweep(queries, [10, 50, 600], k=10)
    for kp, ids in sweep.items():
        np.testing.assert_array_equal(ids, search.search(queries, k=10, k_prime=kp)[1])
    assert search.first_stage_bytes_per_doc == 8 and search.rescore_bytes_per_doc == 16
    assert search.bytes_scanned(50) == 600 * 8 + 50 * 16
    assert search.bytes_scanned(10_000) == 600 * 8 + 600 * 16
    assert TwoStageSearch(rescorer="float32").fit(docs).rescore_bytes_per_doc == 64 * 4
    # the evaluation's Method protocol: default k_prime, stored bytes, full-dimension search only
    assert search.bytes_per_vector() == 8 + 16 and search.bits == 1.0
    np.testing.assert_array_equal(search.search(queries, 10)[1], search.search(queries, k=10, k_prime=100)[1])
    with pytest.raises(ValueError, match="dims"):
        search.search(queries, 10, dims=32)


def test_two_stage_errors(corpus):
    docs, queries = corpus
    with pytest.raises(RuntimeError, match="fit"):
        TwoStageSearch().search(queries)
    with pytest.raises(ValueError, match="Hamming"):
        TwoStageSearch(first_stage=LloydMaxGauss())
    with pytest.raises(ValueError, match="rescorer"):
        TwoStageSearch(rescorer="float16")
    search = TwoStageSearch().fit(docs)
    with pytest.raises(ValueError, match="k_prime"):
        search.search(queries, k=10, k_prime=0)
    with pytest.raises(ValueError, match="k must"):
        search.search(queries, k=-1)
    with pytest.raises(ValueError, match="query_emb has 63"):
        search.search(queries[:, :63])
