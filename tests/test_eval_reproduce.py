"""Reference figures (shared/README.md) and agreement with mteb's own evaluator.

Marked slow: they embed the shared datasets with the bundled all-MiniLM-L6-v2 on first use (minutes on a
CPU; later runs read the embedding cache) or import mteb (seconds).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from qama_rs.data.beir import data_root
from qama_rs.eval import evaluate
from test_data import write_beir

pytestmark = pytest.mark.slow


def _shared(name: str) -> str:
    if not (data_root() / "beir" / name).is_dir():
        pytest.fail(f"shared dataset {name} not found under {data_root()} (CI needs ../shared beside the repo)")
    return name


def test_scifact_fp32_reproduces_mteb_published_figure():
    result = evaluate(_shared("scifact"), "Flat", n_resamples=200)
    assert result["n_queries"] == 300 and result["dims"] == 384
    assert result["ndcg@10"] == pytest.approx(0.6451, abs=0.002)


def test_scifact_truncation_figures():
    result = evaluate(_shared("scifact"), "Flat", dims=128, n_resamples=10)
    assert result["ndcg@10"] == pytest.approx(0.6016, abs=0.002)


@pytest.mark.parametrize(
    ("dataset", "spec", "expected"),
    [
        ("scifact", "Int8", 0.646),
        ("scifact", "Sign", 0.5864),  # symmetric Hamming; ties broken as trec_eval does (doc id, descending)
        ("dbpedia-5k", "Int8", 0.5122),
        ("dbpedia-5k", "Sign", 0.4918),
    ],
)
def test_quantized_reference_figures(dataset, spec, expected):
    result = evaluate(_shared(dataset), spec, n_resamples=10)
    assert result["ndcg@10"] == pytest.approx(expected, abs=0.002)


def test_dbpedia_fp32_reference_figure():
    result = evaluate(_shared("dbpedia-5k"), "Flat", n_resamples=10)
    assert result["n_queries"] == 40
    assert result["ndcg@10"] == pytest.approx(0.5114, abs=0.002)


def test_mteb_evaluator_agrees_with_ours_on_a_tiny_folder(tmp_path):
    importlib.import_module("mteb")
    from qama_rs.integrations.mteb import evaluate_mteb

    rng = np.random.default_rng(2)
    corpus = [{"_id": f"d{i}", "title": f"t{i}", "text": f"doc {i}"} for i in range(50)]
    queries = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(10)]
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{4 * i}\t1\nq{i}\td{i}\t2\n" for i in range(10))
    folder = write_beir(tmp_path / "tiny", corpus, queries, {"test": qrels})
    docs = rng.standard_normal((50, 16)).astype(np.float32)
    np.save(tmp_path / "emb.npy", docs)
    np.save(
        tmp_path / "emb.queries.npy", docs[::4][:10] + 0.5 * rng.standard_normal((10, 16)).astype(np.float32)
    )
    model = str(tmp_path / "emb.npy")
    for spec, dims in (("Flat", None), ("Flat", 8), ("Sign", 8), ("Hybrid", 8)):
        ours = evaluate(folder, spec, dims=dims, model=model, n_resamples=10)
        theirs = evaluate_mteb(folder, spec, dims=dims, model=model)
        assert theirs["spec"] == ours["spec"]
        assert theirs["cache_misses"] == 0
        assert theirs["ndcg@10"] == pytest.approx(ours["ndcg@10"], abs=1e-5)  # mteb rounds to 5 digits


def test_mteb_path_reproduces_scifact():
    importlib.import_module("mteb")
    from qama_rs.integrations.mteb import evaluate_mteb

    result = evaluate_mteb(_shared("scifact"), "Flat")
    assert result["cache_misses"] == 0  # served from our embedding cache, not re-encoded
    assert result["ndcg@10"] == pytest.approx(0.6451, abs=0.002)
