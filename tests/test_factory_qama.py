"""QAMA stages of index_factory: a head's features and thresholds behind ``QAMA(...)`` (a stand-in head,
a saved head by path, through the CLI too), clear errors for levels, paths, widths and a missing
pretrained head, and ``QAMA(pretrained)`` refitting its codes on the indexed documents without moving
another index's codes."""

from __future__ import annotations

import numpy as np
import pytest

from _factory_helpers import DIMS, asym_reference, hamming_reference, sample_data
from qama_rs import Index, QamaError, Quantizer
from qama_rs.index import index_factory
from qama_rs.quantizers import LloydMaxGauss


@pytest.fixture(scope="module")
def data():
    return sample_data()


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
