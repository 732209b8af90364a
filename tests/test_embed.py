"""Embedding cache: keys, hits, corruption recovery, .npy models — with a fake encoder (fast)."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from qama_rs.data import embed
from qama_rs.data.beir import load_beir
from test_data import write_beir


class FakeEncoder:
    """Deterministic 8-d embeddings from a hash of the text; counts the texts it embeds."""

    def __init__(self):
        self.calls: list[int] = []

    def get_sentence_embedding_dimension(self):
        return 8

    def encode(self, texts, batch_size, show_progress_bar, convert_to_numpy, normalize_embeddings):
        self.calls.append(len(texts))
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) for t in texts]
        x = np.asarray(rows, dtype=np.float32) - 127.5
        return x / np.linalg.norm(x, axis=1, keepdims=True) if normalize_embeddings else x


@pytest.fixture
def fake(tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"hidden": 8}')
    (model_dir / "model.safetensors").write_bytes(b"weights-v1")
    encoder = FakeEncoder()
    monkeypatch.setattr(embed, "load_model", lambda model=None: encoder)
    monkeypatch.setenv("QAMA_CACHE", str(tmp_path / "cache"))
    return encoder, str(model_dir)


def cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache" / "embeddings").iterdir())


def test_embed_texts_validates_input(fake):
    encoder, model = fake
    x = embed.embed_texts(["a", "b"], model, progress=False)
    assert x.dtype == np.float32 and x.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    assert embed.embed_texts([], model).shape == (0, 8)
    with pytest.raises(TypeError, match="single string"):
        embed.embed_texts("abc", model)
    with pytest.raises(TypeError, match="only strings"):
        embed.embed_texts(["a", 3], model)
    with pytest.raises(ValueError, match="batch_size"):
        embed.embed_texts(["a"], model, batch_size=0)


def test_dataset_embeddings_cached_and_aligned(fake, tmp_path):
    encoder, model = fake
    ds = load_beir(write_beir(tmp_path / "tiny"))
    first = embed.dataset_embeddings(ds, model, progress=False)
    assert encoder.calls == [4, 3]  # all 4 docs, all 3 queries of queries.jsonl (every split shares them)
    assert first.doc_ids == ds.doc_ids and first.query_ids == ds.query_ids == ["q1", "q3"]
    reference = FakeEncoder()
    np.testing.assert_array_equal(first.docs, reference.encode(ds.doc_texts, 1, False, True, True))
    np.testing.assert_array_equal(first.queries, reference.encode(ds.query_texts, 1, False, True, True))
    assert first.dim == 8 and first.model == model
    files = cache_files(tmp_path)
    assert len(files) == 4 and not [f for f in files if f.endswith(".tmp")]

    again = embed.dataset_embeddings(ds, model, progress=False)
    assert len(encoder.calls) == 2  # served from the cache
    np.testing.assert_array_equal(again.docs, first.docs)
    train = embed.dataset_embeddings(load_beir(ds.path, split="train"), model, progress=False)
    assert len(encoder.calls) == 2 and train.query_ids == ["q2"]


def test_cache_miss_notice_goes_to_stderr_never_stdout(fake, tmp_path, capsys):
    """stdout belongs to a command's result (`qama eval --json`): the notice of a cold cache goes to stderr."""
    encoder, model = fake
    ds = load_beir(write_beir(tmp_path / "tiny"))
    embed.dataset_embeddings(ds, model)  # progress on: a cold cache says what it embeds
    out, err = capsys.readouterr()
    assert out == ""
    assert "embedding 4 documents of tiny" in err and "embedding 3 queries of tiny" in err
    embed.dataset_embeddings(ds, model)  # warm: nothing to say
    assert capsys.readouterr() == ("", "")
    assert encoder.calls == [4, 3]


def test_cache_key_follows_model_and_data(fake, tmp_path):
    encoder, model = fake
    ds = load_beir(write_beir(tmp_path / "tiny"))
    embed.dataset_embeddings(ds, model, progress=False)
    with open(os.path.join(model, "model.safetensors"), "ab") as handle:
        handle.write(b"-v2")  # new weights: a new key
    embed.dataset_embeddings(ds, model, progress=False)
    assert len(encoder.calls) == 4
    with open(ds.path / "corpus.jsonl", "a") as handle:
        handle.write(json.dumps({"_id": "d5", "title": "", "text": "new"}) + "\n")
    embed.dataset_embeddings(load_beir(ds.path), model, progress=False)
    assert encoder.calls[4:] == [5]  # only the corpus changed; queries come from the cache
    assert len(cache_files(tmp_path)) == 10


def test_corrupt_cache_is_recomputed_with_warning(fake, tmp_path):
    encoder, model = fake
    ds = load_beir(write_beir(tmp_path / "tiny"))
    good = embed.dataset_embeddings(ds, model, progress=False)
    arrays = sorted((tmp_path / "cache" / "embeddings").glob("*.npy"))
    for array in arrays:
        data = bytearray(array.read_bytes())
        data[-3] ^= 0xFF  # flip bits in the payload: the checksum no longer matches
        array.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt"):
        again = embed.dataset_embeddings(ds, model, progress=False)
    assert len(encoder.calls) == 4
    np.testing.assert_array_equal(again.docs, good.docs)
    arrays[0].with_suffix(".json").write_text("{truncated")
    with pytest.warns(UserWarning, match="corrupt"):
        embed.dataset_embeddings(ds, model, progress=False)


def test_cache_dir_argument(fake, tmp_path):
    encoder, model = fake
    ds = load_beir(write_beir(tmp_path / "tiny"))
    embed.dataset_embeddings(ds, model, cache_dir=tmp_path / "elsewhere", progress=False)
    assert len(list((tmp_path / "elsewhere" / "embeddings").glob("*.npy"))) == 2
    assert not (tmp_path / "cache").exists()


def test_npy_model_rows_and_id_sidecars(tmp_path):
    ds = load_beir(write_beir(tmp_path / "tiny"))
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((4, 6)).astype(np.float32)
    queries = rng.standard_normal((3, 6)).astype(np.float32)
    np.save(tmp_path / "emb.npy", docs)
    with pytest.raises(FileNotFoundError, match="emb.queries.npy"):
        embed.dataset_embeddings(ds, str(tmp_path / "emb.npy"))
    np.save(tmp_path / "emb.queries.npy", queries)
    got = embed.dataset_embeddings(ds, str(tmp_path / "emb.npy"))
    unit = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    np.testing.assert_allclose(got.docs, unit, rtol=1e-6)  # row i = i-th document of corpus.jsonl
    q_unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    np.testing.assert_allclose(got.queries, q_unit[[0, 2]], rtol=1e-6)  # q1, q3 of q1, q2, q3

    # an ids sidecar reorders the rows
    (tmp_path / "emb.ids.json").write_text(json.dumps(["d4", "d3", "d2", "d1"]))
    got = embed.dataset_embeddings(ds, str(tmp_path / "emb.npy"))
    np.testing.assert_allclose(got.docs, unit[::-1], rtol=1e-6)
    (tmp_path / "emb.ids.json").write_text(json.dumps(["d1", "d2", "d3", "dX"]))
    with pytest.raises(ValueError, match="no embedding for 1 document"):
        embed.dataset_embeddings(ds, str(tmp_path / "emb.npy"))
    (tmp_path / "emb.ids.json").unlink()

    np.save(tmp_path / "emb.npy", docs[:3])
    with pytest.raises(ValueError, match="3 rows but the dataset has 4 documents"):
        embed.dataset_embeddings(ds, str(tmp_path / "emb.npy"))
    with pytest.raises(ValueError, match="cannot embed new text"):
        embed.load_model(str(tmp_path / "emb.npy"))


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="BeirDataset"):
        embed.dataset_embeddings("scifact")
    with pytest.raises(FileNotFoundError, match="local Hugging Face cache"):
        embed.model_fingerprint(str(tmp_path / "no-such-model"))


@pytest.mark.slow
def test_bundled_model_embeds_offline():
    x = embed.embed_texts(
        ["a cat sits on the mat", "a cat is sitting on a mat", "stock prices"], progress=False
    )
    assert x.shape == (3, 384)
    assert x[0] @ x[1] > 0.8 > x[0] @ x[2]


def test_model_fingerprint_depends_on_contents_not_location(tmp_path):
    import shutil

    first = tmp_path / "a" / "model"
    first.mkdir(parents=True)
    (first / "config.json").write_text('{"dim": 4}')
    (first / "model.safetensors").write_bytes(bytes(range(256)) * 4)
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(first, moved)
    assert embed.model_fingerprint(str(first)) == embed.model_fingerprint(str(moved))
    (moved / "model.safetensors").write_bytes(bytes(range(256)) * 3)
    assert embed.model_fingerprint(str(first)) != embed.model_fingerprint(str(moved))
