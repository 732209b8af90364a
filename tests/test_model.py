"""QamaModel: save/load round trip, transforms, and the engine objects built from the trained thresholds."""

import hashlib
import importlib
import json

import numpy as np
import pytest
import torch

from qama_rs.qama.config import HeadConfig, QamaConfig, ThresholdConfig, ablation_config
from qama_rs.qama.head import QamaHead
from qama_rs.qama.model import QamaModel
from qama_rs.qama.rotation import random_rotation
from qama_rs.qama.thresholds import ThresholdBank, scheme_levels, thermometer_codes, threshold_count


def _docs(n=300, d=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)) @ rng.standard_normal((8, d)) + 0.3 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    config = QamaConfig(
        head=HeadConfig(input_dim=32, expansion=2, levels=(32, 16, 8)),
        thresholds=ThresholdConfig(schemes=("1bit", "2bit", "hybrid")),
    )
    torch.manual_seed(0)
    head = QamaHead(config.head)
    docs = torch.from_numpy(_docs())
    head.init_from_data(docs)
    with torch.no_grad():  # make the FFN matter, so a broken save/load of it would show
        head.down.weight.normal_(0, 0.05)
        head.reducers["16"].w2.normal_(0, 0.5)
    # A fitted code rotation too, so a broken save/load of those would show.
    head.set_code_rotation(16, "2bit", torch.from_numpy(random_rotation(16, 5)).float())
    bank = ThresholdBank(head.levels, config.thresholds.schemes)
    with torch.no_grad():
        h = head(docs)
        for level, scheme in bank.pairs():
            bank.fit(level, scheme, head.features(head.slice(h, level), scheme))
    return QamaModel(head, bank, config, training={"data": [{"name": "synthetic", "docs": 300}]})


def test_save_load_round_trip(model, tmp_path):
    model.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"head.safetensors", "config.json", "checksums.json"}
    sums = json.loads((tmp_path / "checksums.json").read_text())
    assert sums["config.json"] == hashlib.sha256((tmp_path / "config.json").read_bytes()).hexdigest()
    document = json.loads((tmp_path / "config.json").read_text())
    assert document["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert document["levels"] == [32, 16, 8] and document["schemes"] == ["1bit", "2bit", "hybrid"]
    assert document["thresholds"]["16"]["hybrid"]["levels"] == scheme_levels(16, "hybrid")
    assert document["training"]["data"][0]["name"] == "synthetic"
    loaded = QamaModel.load(tmp_path)
    docs = _docs(50, seed=1)
    for dims in (32, 16, 8):
        np.testing.assert_array_equal(loaded.transform(docs, dims), model.transform(docs, dims))
        for scheme in ("1bit", "2bit", "hybrid"):
            assert torch.equal(loaded.thresholds.get(dims, scheme), model.thresholds.get(dims, scheme))
            np.testing.assert_array_equal(
                loaded.features(docs, dims, scheme), model.features(docs, dims, scheme)
            )
    assert loaded.config.to_dict() == model.config.to_dict()


def test_transform_and_features_shapes(model):
    docs = _docs(10, seed=2)
    full = model.transform(docs)
    assert full.shape == (10, 32) and full.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(model.transform(docs, 8), axis=1), 1.0, rtol=1e-5)
    assert model.features(docs, 16, "hybrid").shape == (10, 14)
    assert model.features(docs, 16, "2bit").shape == (10, 16)


def test_bad_arguments_raise(model, tmp_path):
    docs = _docs(4)
    with pytest.raises(ValueError, match="levels"):
        model.transform(docs, 12)
    with pytest.raises(TypeError):
        model.transform(docs, "16")
    with pytest.raises(ValueError, match="scheme"):
        model.features(docs, 16, "1.5bit")
    with pytest.raises(ValueError, match="shape"):
        model.transform(docs[:, :16])
    with pytest.raises(TypeError):
        model.transform(docs.astype(np.int32))
    with pytest.raises(FileNotFoundError):
        QamaModel.load(tmp_path / "missing")
    (tmp_path / "config.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "head.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not a QAMA head"):
        QamaModel.load(tmp_path)


def test_quantizer_matches_the_trained_thresholds(model):
    core = importlib.import_module("qama_rs._core")
    del core
    docs = _docs(40, seed=3)
    for dims in (32, 16):
        for scheme in ("1bit", "2bit", "hybrid"):
            quantizer = model.quantizer(dims, scheme)
            levels = scheme_levels(dims, scheme)
            assert list(quantizer.levels) == levels
            assert quantizer.bits == threshold_count(levels)
            assert quantizer.pair_reduce_start is None  # the head already reduced the pairs
            features = model.features(docs, dims, scheme)
            expected = thermometer_codes(torch.from_numpy(features), model.thresholds.get(dims, scheme))
            np.testing.assert_array_equal(quantizer.quantize(features), expected.numpy())
    assert model.quantizer(32, "hybrid").bits == 4 * 3 * 2 + 8 * 2 + 8 + 4  # 7/8 of dims, 1.625 bits/dim


def test_index_finds_each_document_itself(model):
    importlib.import_module("qama_rs._core")
    docs = _docs(200, seed=4)
    index = model.index(docs, 32, "2bit")
    assert len(index) == 200
    assert index.spec == "QAMA(head,32),Thermo2" and index.metric == "hamming"
    distances, ids = index.search(docs[:20], 1)
    assert (distances[:, 0] == 0).all()
    # A duplicate code may tie with a lower id; the top hit is then an exact code match.
    codes = model.quantizer(32, "2bit").quantize(model.features(docs, 32, "2bit"))
    for row, hit in enumerate(ids[:, 0]):
        assert np.array_equal(codes[hit], codes[row])


def test_ablation_ladder_adds_one_component_per_step():
    from qama_rs.qama.config import ABLATION_STEPS

    previous = None
    for step in ABLATION_STEPS:
        config = ablation_config(step)
        assert config.ablation == step
        losses = config.losses
        switched = {
            "train_head": config.optim.train_head,
            "quantization": losses.quantization > 0,
            "matryoshka": losses.matryoshka,
            "orthogonality": losses.orthogonality > 0,
            "bottleneck": losses.bottleneck > 0,
            "variance": losses.variance > 0,
        }
        on = {name for name, value in switched.items() if value}
        if previous is not None:
            assert previous < on and len(on - previous) == 1
        previous = on
    assert previous == {"train_head", "quantization", "matryoshka", "orthogonality", "bottleneck", "variance"}


def test_half_precision_save_keeps_features_close(model, tmp_path):
    model.save(tmp_path, dtype=torch.float16)
    loaded = QamaModel.load(tmp_path)
    docs = _docs(50, seed=7)
    np.testing.assert_allclose(loaded.features(docs, 16, "2bit"), model.features(docs, 16, "2bit"), atol=2e-3)


def test_recalibrate_refits_thresholds_to_new_documents(model):
    import copy

    other = copy.deepcopy(model)
    docs = _docs(400, seed=9) * 0.5 + 0.2
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    other.recalibrate(docs)
    codes = other.quantizer(32, "1bit").encode(other.features(docs, 32, "1bit"))
    bits = np.unpackbits(codes.view(np.uint8), axis=1, bitorder="little")[:, :32]
    # Median thresholds of the new documents: each bit is set for about half of them.
    np.testing.assert_allclose(bits.mean(0), 0.5, atol=0.01)


def test_recalibrate_chooses_the_code_rotation_with_the_best_label_free_recall(model):
    import copy

    from qama_rs.engine import Quantizer
    from qama_rs.qama.validation import label_free_recall, validation_split

    other = copy.deepcopy(model)
    docs = _docs(400, seed=11)
    other.recalibrate(docs, pairs=[(32, "1bit")])
    scores = other.training["recalibration"]["32"]["1bit"]
    assert set(scores) == {"none", "random", "itq"}
    # The kept rotation is the one whose codes score best: recompute its score independently.
    rows, _, target = validation_split(docs)
    features = other.features(docs, 32, "1bit")
    recall = label_free_recall(features, Quantizer.fit(features, levels=2), rows, target)
    assert recall == pytest.approx(max(scores.values()))
    rotation = other.head.code_rotation(32, "1bit").numpy()
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(32), atol=1e-5)
    # Only the pair asked for moved; the other pairs keep the model's rotations.
    np.testing.assert_array_equal(other.head.code_rotation(16, "2bit"), model.head.code_rotation(16, "2bit"))


def test_recalibrate_keeps_rotations_when_told_or_when_documents_are_few(model):
    import copy

    for docs, rotations in ((_docs(400, seed=12), False), (_docs(60, seed=12), True)):
        other = copy.deepcopy(model)
        other.recalibrate(docs, rotations=rotations, pairs=[(16, "2bit")])
        np.testing.assert_array_equal(other.head.code_rotation(16, "2bit"), model.head.code_rotation(16, "2bit"))
        assert "recalibration" not in other.training
    with pytest.raises(ValueError, match="level"):
        copy.deepcopy(model).recalibrate(_docs(200), pairs=[(12, "1bit")])


def test_pretrained_head_loads_offline_checks_its_checksum_and_encodes_deterministically(tmp_path, monkeypatch):
    import qama_rs.qama.model as model_module

    pretrained = QamaModel.pretrained()
    assert pretrained.levels[0] == 384 and pretrained.training["data"][0]["dataset"] == "wiki-50k"
    docs = np.random.default_rng(0).standard_normal((20, 384)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    np.testing.assert_array_equal(pretrained.features(docs, 384, "2bit"), QamaModel.pretrained().features(docs, 384, "2bit"))
    # A corrupted copy is refused.
    import shutil

    copy_root = tmp_path / "pretrained"
    shutil.copytree(model_module.PRETRAINED_ROOT, copy_root)
    with open(copy_root / model_module.PRETRAINED_DEFAULT / "config.json", "a") as f:
        f.write(" ")
    monkeypatch.setattr(model_module, "PRETRAINED_ROOT", copy_root)
    with pytest.raises(ValueError, match="corrupt"):
        QamaModel.pretrained()
    with pytest.raises(ValueError, match="no pretrained head"):
        QamaModel.pretrained("no-such-model")
