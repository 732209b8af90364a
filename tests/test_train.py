"""Training: a short run lowers the loss and improves held-out neighbour preservation; checkpoints; CLI."""

import json
from pathlib import Path

import numpy as np
import pytest

from qama_rs.cli.main import main
from qama_rs.qama.config import HeadConfig, QamaConfig, ablation_config, supervised_config
from qama_rs.qama.model import QamaModel
from qama_rs.qama.thresholds import thermometer_bits, threshold_count
from qama_rs.qama.train import TrainingData, neighbour_recall, train

D = 32


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: intra-op threads only add overhead (and the CI machine is shared)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _clustered(n, seed):
    """Anisotropic clustered unit vectors, a small stand-in for sentence embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, D)) * np.linspace(2.0, 0.2, D)
    x = centres[rng.integers(0, 12, n)] + 0.6 * rng.standard_normal((n, D)) * np.linspace(1.5, 0.3, D)
    x = x + 1.5  # a common offset, as real embeddings have
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _supervised(head: HeadConfig) -> QamaConfig:
    """The trained-FFN objective on a small head, code rotations off: these tests are about the FFN trainer."""
    base = supervised_config()
    base.head = head
    base.thresholds.rotation = "none"
    return base


def _config(step="variance", epochs=1):
    config = ablation_config(step, _supervised(HeadConfig(input_dim=D, expansion=2, levels=(32, 16, 8))))
    config.optim.epochs = epochs
    config.optim.batch_size = 64
    config.optim.lr = 1e-3
    return config


def _hamming_recall(model: QamaModel, docs: np.ndarray, dims: int, scheme: str) -> float:
    import torch

    features = torch.from_numpy(model.features(docs, dims, scheme))
    bits = thermometer_bits(features, model.thresholds.get(dims, scheme)).numpy()
    n_bits = threshold_count(model.thresholds.feature_levels(dims, scheme))
    hamming = bits.sum(1)[:, None] + bits.sum(1)[None] - 2 * bits @ bits.T
    return neighbour_recall(docs, 1 - 2 * hamming / n_bits, k=10)


def test_short_training_lowers_the_loss_and_improves_heldout_neighbours(tmp_path):
    docs = _clustered(900, seed=0)
    train_docs, heldout = docs[:700], docs[700:]
    data = TrainingData(docs=train_docs, description=[{"name": "synthetic", "docs": 700}])
    frozen = QamaModel.load(train(_config("thresholds"), data, tmp_path / "frozen", progress=False))
    trained_dir = train(_config("variance", epochs=2), data, tmp_path / "trained", progress=False)
    trained = QamaModel.load(trained_dir)
    summary = json.loads((trained_dir / "config.json").read_text())["training"]
    assert summary["steps"] == 2 * 11  # ceil(700 / 64) batches per epoch, 2 epochs
    assert summary["loss_after"] < summary["loss_before"]
    assert summary["data"] == [{"name": "synthetic", "docs": 700}]
    before = _hamming_recall(frozen, heldout, 32, "1bit")
    after = _hamming_recall(trained, heldout, 32, "1bit")
    assert after > before


def test_frozen_head_is_the_untrained_initialisation(tmp_path):
    docs = _clustered(200, seed=1)
    model = QamaModel.load(train(_config("thresholds"), TrainingData(docs=docs), tmp_path, progress=False))
    # PCA init: the full-width head output is a rotation of the input -> the same cosines.
    np.testing.assert_allclose(model.transform(docs) @ model.transform(docs).T, docs @ docs.T, atol=1e-5)


def test_resume_continues_from_the_checkpoint(tmp_path):
    data = TrainingData(docs=_clustered(200, seed=2))
    train(_config(epochs=1), data, tmp_path, progress=False)
    assert (tmp_path / "checkpoint.pt").is_file()
    train(_config(epochs=2), data, tmp_path / "fresh", progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(_config(epochs=2), data, tmp_path, resume=True, progress=False)
    # Same config: an already finished run resumes as a no-op and keeps its step count.
    train(_config(epochs=1), data, tmp_path, resume=True, progress=False)
    assert json.loads((tmp_path / "config.json").read_text())["training"]["steps"] == 4


def test_train_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError):
        train({"epochs": 1}, TrainingData(docs=_clustered(50, 3)), tmp_path)
    with pytest.raises(ValueError, match="input_dim"):
        train(QamaConfig(), TrainingData(docs=_clustered(50, 3)), tmp_path)
    with pytest.raises(ValueError):
        TrainingData(docs=np.zeros((1, D), dtype=np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        TrainingData(docs=np.full((4, D), np.nan, dtype=np.float32))


def test_head_config_resized_scales_the_levels():
    assert HeadConfig().resized(768).levels == (768, 384, 256, 192, 96)
    assert HeadConfig().resized(32).levels == (32, 16, 8)  # 128 / 12 and 96 / 12 round to 8; 48 / 12 drops
    assert HeadConfig().resized(384) == HeadConfig()
    for bad in (100, 4, 384.0):
        with pytest.raises(ValueError, match="multiple of 8"):
            HeadConfig().resized(bad)


def test_the_default_config_is_sized_to_the_embeddings_when_asked(tmp_path):
    docs = _clustered(200, seed=6)
    model = QamaModel.load(train(QamaConfig(), TrainingData(docs=docs), tmp_path / "fit", fit_width=True, progress=False))
    assert model.dim == D and model.levels == (32, 16, 8)
    assert model.config.head.input_dim == D and model.transform(docs).shape == (200, D)


def test_a_head_trained_on_another_model_records_it(tmp_path, monkeypatch):
    from qama_rs.data.embed import default_model_path

    monkeypatch.setenv("QAMA_CACHE", str(tmp_path / "cache"))
    dataset = tmp_path / "tiny"
    _write_beir(dataset, _clustered(40, seed=7))
    bundled = default_model_path()
    out = train(QamaConfig(), [str(dataset)], tmp_path / "out", model=bundled, labelled=False, progress=False)
    model = QamaModel.load(out)
    assert model.base_model == str(Path(bundled).resolve())  # QamaModel.embed loads this one
    assert model.embed(["document 3"]).shape == (1, 384)
    # .npy embeddings name no model: the config's own base model stays.
    npy = train(_config(), [str(dataset)], tmp_path / "npy", model=str(dataset / "emb.npy"), progress=False)
    assert QamaModel.load(npy).base_model == _config().base_model


def test_labelled_pairs_are_used(tmp_path):
    docs = _clustered(300, seed=4)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 300, 40)
    queries = docs[rows] + 0.1 * rng.standard_normal((40, D)).astype(np.float32)
    data = TrainingData(
        docs=docs,
        pair_queries=queries,
        pair_docs=docs[rows],
        pair_query_keys=[f"q{i}" for i in range(40)],
        pair_doc_keys=[f"d{r}" for r in rows],
    )
    trained = train(_config(), data, tmp_path, progress=False)
    history = json.loads((trained / "config.json").read_text())["training"]["history"]
    assert history[0]["labelled"] > 0 and history[0]["q_labelled"] > 0


def _write_beir(folder, docs):
    """A tiny BEIR dataset whose 'model' is a .npy of precomputed document embeddings."""
    folder.mkdir()
    with open(folder / "corpus.jsonl", "w") as f:
        for i in range(len(docs)):
            f.write(json.dumps({"_id": f"d{i}", "title": "", "text": f"document {i}"}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        f.write(json.dumps({"_id": "q0", "text": "query"}) + "\n")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    np.save(folder / "emb.npy", docs)
    np.save(folder / "emb.queries.npy", docs[:1])


def test_qama_train_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QAMA_CACHE", str(tmp_path / "cache"))
    dataset = tmp_path / "tiny"
    _write_beir(dataset, _clustered(120, seed=5))
    config_file = tmp_path / "config.json"
    _config().save(config_file)
    status = main(
        [
            "train",
            "--dataset",
            str(dataset),
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(config_file),
            "--epochs",
            "1",
            "--model",
            str(dataset / "emb.npy"),
            "--seed",
            "4",
            "--quiet",
        ]
    )
    assert status == 0
    assert "trained 2 steps on 120 documents" in capsys.readouterr().out
    model = QamaModel.load(tmp_path / "out")
    assert model.training["data"][0]["docs"] == 120
    assert model.config.optim.seed == 4
    # No --config: the built-in (384-d) config is sized to the 32-d embeddings.
    assert main(["train", "--dataset", str(dataset), "--out", str(tmp_path / "sized"), "--model", str(dataset / "emb.npy"), "--quiet"]) == 0
    assert QamaModel.load(tmp_path / "sized").levels == (32, 16, 8)
    capsys.readouterr()
    assert main(["train", "--dataset", str(dataset), "--out", str(tmp_path / "neg"), "--seed", "-1", "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("qama train: error: optim.seed")
    assert main(["train", "--dataset", str(dataset), "--out", str(tmp_path / "x"), "--config", str(config_file), "--supervised"]) == 2
    assert "give --config or --supervised, not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "x")])  # --dataset is required
    with pytest.raises(SystemExit):
        main(["train", "--dataset", str(dataset), "--out", str(tmp_path / "x"), "--threads", "0"])
    assert "argument --threads: must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_short_training_on_a_scifact_slice(tmp_path):
    """Real embeddings: 1 epoch on 1,200 scifact documents, judged on 500 held-out documents."""
    from qama_rs.data.beir import load_beir
    from qama_rs.data.embed import dataset_embeddings

    docs = dataset_embeddings(load_beir("scifact")).docs
    data = TrainingData(docs=docs[:1200], description=[{"name": "scifact[:1200]", "docs": 1200}])
    heldout = docs[1200:1700]

    def config(step):
        config = ablation_config(step, _supervised(HeadConfig(expansion=4)))
        config.optim.epochs = 1
        config.optim.lr = 1e-3
        return config

    frozen = QamaModel.load(train(config("thresholds"), data, tmp_path / "frozen", progress=False))
    trained_dir = train(config("variance"), data, tmp_path / "trained", progress=False)
    summary = json.loads((trained_dir / "config.json").read_text())["training"]
    assert summary["loss_after"] < summary["loss_before"]
    trained = QamaModel.load(trained_dir)
    assert _hamming_recall(trained, heldout, 384, "1bit") > _hamming_recall(frozen, heldout, 384, "1bit")


def test_documents_only_training_on_too_few_documents_says_why(tmp_path):
    rng = np.random.default_rng(1)
    docs = rng.standard_normal((8, 384)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    with pytest.raises(ValueError, match="at least 12 documents"):
        train(QamaConfig(), TrainingData(docs=docs), tmp_path / "auto", progress=False)
    config = QamaConfig()
    config.thresholds.rotation = "none"
    out = train(config, TrainingData(docs=docs), tmp_path / "none", progress=False)
    assert (out / "config.json").is_file()
