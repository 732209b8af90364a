"""qama_rs.Quantizer: quantile fitting, schemes (hybrid = 624 bits for 384 dims), explicit
construction, Matryoshka prefixes, persistence, and clear errors on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import _reference as ref
import qama_rs
from qama_rs.engine.quantizer import FORMAT_VERSION, Quantizer, atomic_write


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2000, 384)).astype(np.float32)


def reduce_pairs(x: np.ndarray, start: int) -> np.ndarray:
    return np.concatenate([x[:, :start], (x[:, start::2] + x[:, start + 1 :: 2]) * np.float32(0.5)], axis=1)


# ---------------------------------------------------------------------------------- fitting
@pytest.mark.parametrize(("scheme", "levels"), [("1bit", 2), ("1.5bit", 3), ("2bit", 4)])
def test_fit_puts_thresholds_at_per_dimension_quantiles(x, scheme, levels):
    q = Quantizer.fit(x, scheme)
    expected = np.quantile(x.astype(np.float64), np.arange(1, levels) / levels, axis=0).T.astype(np.float32)
    np.testing.assert_array_equal(q.thresholds, expected.reshape(-1))
    assert q.scheme == scheme and q.dims == 384 and (q.levels == levels).all()
    assert q.bits == 384 * (levels - 1)


def test_default_scheme_is_1bit_medians(x):
    q = Quantizer.fit(x)
    np.testing.assert_array_equal(q.thresholds, np.median(x.astype(np.float64), axis=0).astype(np.float32))


@pytest.mark.parametrize("scheme", ["1bit", "1.5bit", "2bit"])
def test_fitted_levels_are_about_equally_filled(x, scheme):
    q = Quantizer.fit(x, scheme)
    codes = q.quantize(x)
    counts = np.bincount(codes.reshape(-1), minlength=int(q.levels[0])) / codes.size
    np.testing.assert_allclose(counts, 1 / q.levels[0], atol=0.01)


def test_fit_with_explicit_per_dimension_levels(x):
    levels = np.resize([2, 3, 4, 5], 384)
    q = Quantizer.fit(x, levels=levels)
    assert q.scheme is None
    np.testing.assert_array_equal(q.levels, levels)
    assert q.bits == int((levels - 1).sum())
    # dimension 3 has 5 levels: quantiles 0.2 .. 0.8
    expected = np.quantile(x[:, 3].astype(np.float64), [0.2, 0.4, 0.6, 0.8]).astype(np.float32)
    np.testing.assert_array_equal(q.thresholds_of(3), expected)


def test_encode_matches_reference(x):
    q = Quantizer.fit(x[:500], "2bit")
    np.testing.assert_array_equal(q.encode(x[500:600]), ref.encode(x[500:600], q.thresholds, q.levels))
    np.testing.assert_array_equal(qama_rs.encode(x[:3], q), q.encode(x[:3]))


def test_float64_input_is_converted(x):
    q = Quantizer.fit(x[:200], "1bit")
    np.testing.assert_array_equal(q.encode(x[:5].astype(np.float64)), q.encode(x[:5]))


# ------------------------------------------------------------------------------------ hybrid
def test_hybrid_384_dims_is_624_bits(x):
    q = Quantizer.fit(x, "hybrid")
    assert (q.bits, q.words, q.bytes_per_vector) == (624, 10, 78)
    assert (q.dims, q.input_dims, q.pair_reduce_start) == (336, 384, 288)
    np.testing.assert_array_equal(q.levels, [4] * 96 + [3] * 96 + [2] * 144)
    assert [q.prefix_bits(m) for m in (96, 192, 288, 336)] == [288, 480, 576, 624]
    assert q.encode(x[:4]).shape == (4, 10)


def test_hybrid_reduces_the_last_quarter_by_pair_means_at_fit_and_encode(x):
    q = Quantizer.fit(x, "hybrid")
    reduced = reduce_pairs(x, 288)
    np.testing.assert_array_equal(q.reduce(x[:50]), reduced[:50])
    tail = np.median(reduced[:, 288:].astype(np.float64), axis=0).astype(np.float32)
    np.testing.assert_array_equal(q.thresholds[-48:], tail)
    np.testing.assert_array_equal(q.encode(x[:50]), ref.encode(reduced[:50], q.thresholds, q.levels))


def test_hybrid_needs_dims_divisible_by_8():
    with pytest.raises(ValueError, match="divisible by 8"):
        Quantizer.fit(np.zeros((4, 36), np.float32), "hybrid")


def test_trained_head_hands_over_reduced_values_without_reduction(x):
    levels = [4] * 96 + [3] * 96 + [2] * 144
    fitted = Quantizer.fit(x, "hybrid")
    head = Quantizer(fitted.thresholds, levels)
    assert head.pair_reduce_start is None and head.input_dims == 336 and head.bits == 624
    reduced = reduce_pairs(x[:20], 288)
    np.testing.assert_array_equal(head.encode(reduced), fitted.encode(x[:20]))


# ---------------------------------------------------------------------------------- prefixes
@pytest.mark.parametrize("scheme", ["1bit", "2bit", "hybrid"])
def test_prefix_codes_are_the_leading_bits_of_the_full_code(x, scheme):
    q = Quantizer.fit(x, scheme)
    full = q.encode(x[:30])
    for m in (1, 7, 64, 100, 192, q.dims - 1, q.dims):
        nbits = q.prefix_bits(m)
        prefix = q.encode(x[:30], dims=m)
        words = -(-nbits // 64)
        assert prefix.shape == (30, words)
        mask = ref.prefix_mask(q.words, nbits)[:words]
        np.testing.assert_array_equal(prefix, full[:, :words] & mask)
        # a truncated input (only the prefix's columns) gives the same code
        np.testing.assert_array_equal(q.encode(x[:30, : q.input_dims_for(m)], dims=m), prefix)


def test_input_dims_for_prefixes_of_hybrid(x):
    q = Quantizer.fit(x, "hybrid")
    assert q.input_dims_for(288) == 288
    assert q.input_dims_for(300) == 312
    assert q.input_dims_for(336) == 384


# ---------------------------------------------------------------------------- construction
def test_explicit_construction_forms_agree():
    t2d = np.array([[-1.0, 0.0, 1.0], [-0.5, 0.0, 0.5]], dtype=np.float32)
    a = Quantizer(t2d)
    b = Quantizer(t2d.reshape(-1), 4)
    c = Quantizer(t2d.reshape(-1), [4, 4])
    d = Quantizer([[-1.0, 0.0, 1.0], [-0.5, 0.0, 0.5]])
    assert a == b == c == d
    assert (a.dims, a.bits, a.words) == (2, 6, 1)


def test_ragged_and_inf_padded_thresholds():
    ragged = Quantizer([[0.0], [-1.0, 1.0], [-1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(ragged.levels, [2, 3, 4])
    padded = np.array([[0.0, np.inf, np.inf], [-1.0, 1.0, np.inf], [-1.0, 0.0, 1.0]], dtype=np.float32)
    assert Quantizer(padded, [2, 3, 4]) == ragged
    with pytest.raises(ValueError, match="padding"):
        Quantizer(np.array([[0.0, 5.0], [-1.0, 1.0]], np.float32), [2, 3])


def test_properties_are_read_only():
    q = Quantizer(np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError):
        q.thresholds[0] = 1.0
    with pytest.raises(ValueError):
        q.levels[0] = 3


@pytest.mark.parametrize(
    ("thresholds", "levels", "match"),
    [
        (np.array([1.0, 0.0], np.float32), 3, "ascending"),
        (np.array([0.0, np.nan], np.float32), 3, "non-finite"),
        (np.array([0.0, 1.0, 2.0], np.float32), [3, 3], "needs 4"),
        (np.array([0.0], np.float32), [1], "levels"),
        (np.zeros(256, np.float32), [257], "levels"),
        (np.zeros(3, np.float32), 3, "do not split"),
        (np.zeros(3, np.float32), None, "need levels"),
    ],
)
def test_bad_thresholds_are_value_errors(thresholds, levels, match):
    with pytest.raises(ValueError, match=match):
        Quantizer(thresholds, levels)


def test_a_drop_between_dimensions_is_not_a_descent():
    q = Quantizer(np.array([0.5, 1.0, -2.0, -1.0], np.float32), 3)
    np.testing.assert_array_equal(q.thresholds_of(1), [-2.0, -1.0])


def test_bad_input_errors(x):
    q = Quantizer.fit(x[:100], "2bit")
    with pytest.raises(ValueError, match="columns"):
        q.encode(x[:2, :100])
    with pytest.raises(ValueError, match="non-finite|NaN|finite"):
        q.encode(np.where(np.arange(384) == 5, np.nan, x[:1]))
    with pytest.raises(TypeError, match="floating"):
        q.encode(np.zeros((2, 384), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        q.encode(x[0])
    with pytest.raises(ValueError, match="dims"):
        q.encode(x[:2], dims=0)
    with pytest.raises(ValueError, match="dims"):
        q.encode(x[:2], dims=385)
    with pytest.raises(TypeError, match="dims"):
        q.encode(x[:2], dims=2.0)
    with pytest.raises(ValueError, match="scheme"):
        Quantizer.fit(x, "3bit")
    with pytest.raises(ValueError, match="not both"):
        Quantizer.fit(x, "1bit", levels=2)
    with pytest.raises(ValueError, match="no rows"):
        Quantizer.fit(x[:0])
    with pytest.raises(ValueError, match="non-finite"):
        Quantizer.fit(np.where(np.arange(384) == 9, np.inf, x[:5]))
    with pytest.raises(TypeError, match="floating"):
        Quantizer.fit(np.ones((5, 4), dtype=np.int32))


# ------------------------------------------------------------------------------ persistence
@pytest.mark.parametrize("scheme", ["1bit", "1.5bit", "2bit", "hybrid"])
def test_save_load_round_trip(tmp_path, x, scheme):
    q = Quantizer.fit(x[:300], scheme)
    path = tmp_path / "q.json"
    q.save(path)
    loaded = Quantizer.load(path)
    assert loaded == q
    assert (loaded.scheme, loaded.pair_reduce_start) == (q.scheme, q.pair_reduce_start)
    np.testing.assert_array_equal(loaded.encode(x[:20]), q.encode(x[:20]))
    saved = json.loads(path.read_text())
    assert saved["format"] == "qama-rs/quantizer" and saved["version"] == FORMAT_VERSION


def test_load_rejects_foreign_and_future_files(tmp_path, x):
    path = tmp_path / "q.json"
    Quantizer.fit(x[:50]).save(path)
    data = json.loads(path.read_text())
    data["version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="version"):
        Quantizer.load(path)
    path.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a qama-rs quantizer"):
        Quantizer.load(path)
    path.write_bytes(b"\x00\xff garbage")
    with pytest.raises(ValueError, match="not a qama-rs quantizer"):
        Quantizer.load(path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old contents")

    def failing_write(f):
        f.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, failing_write)
    assert path.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
