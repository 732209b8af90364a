"""Codecs plugged into index_factory: ``register_codec`` with a protocol (A) codec, a per-row scaled
codec and a byte lookup-table (protocol B) codec scoring through the engine (as rescorers too, saved
and mapped), and every codec class ``qama_rs.quantizers`` exports reachable by its name."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

import _oracles
import _reference
import qama_rs
from _factory_helpers import DIMS, built, mapped_base, sample_data
from qama_rs import Index, QamaError, quantizers
from qama_rs.index import index_factory, register_codec
from qama_rs.index.codecs import LutCodec


@pytest.fixture(scope="module")
def data():
    return sample_data()


def exported_codec_classes(method):
    """The codec classes :mod:`qama_rs.quantizers` exports that have ``method`` (``reconstruction_values``:
    the per-dimension quantizers; ``query_luts``: the byte-table codecs)."""
    classes = [getattr(quantizers, name) for name in quantizers.__all__]
    return [
        c for c in classes
        if isinstance(c, type) and hasattr(c, method) and hasattr(c, "fit") and c is not quantizers.TrainingFreeQuantizer
    ]  # fmt: skip


# ----------------------------------------------------------------------------------- register_codec


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
