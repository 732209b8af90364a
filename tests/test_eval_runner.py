"""Runner, tables and plot end to end on tiny generated BEIR folders with precomputed .npy embeddings."""

from __future__ import annotations

import importlib
import json
import shutil

import numpy as np
import pytest

from qama_rs.data.beir import load_beir
from qama_rs.eval import evaluate, format_result
from qama_rs.eval.runner import RESULT_KEYS
from qama_rs.eval.tables import MAIN_COLUMNS, SCHEMA_VERSION, TRAINING_FREE_COLUMNS, build_tables
from test_data import write_beir

N_DOCS, DIM = 60, 16


@pytest.fixture
def folders(tmp_path):
    """Two BEIR folders with the same ids (so one .npy model serves both), different judgments."""
    rng = np.random.default_rng(11)
    corpus = [{"_id": f"d{i}", "title": f"t{i}", "text": f"doc {i}"} for i in range(N_DOCS)]
    queries = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(8)]
    qrels_a = "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{3 * i}\t1\n" for i in range(8))
    qrels_b = "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{5 * i}\t2\n" for i in range(6))
    a = write_beir(tmp_path / "set-a", corpus, queries, {"test": qrels_a})
    b = write_beir(tmp_path / "set-b", corpus, queries, {"test": qrels_b})
    docs = rng.standard_normal((N_DOCS, DIM)).astype(np.float32)
    # query i is a noisy copy of document 3i, so set-a is easy and set-b is hard
    q = docs[[3 * i for i in range(8)]] + 0.3 * rng.standard_normal((8, DIM)).astype(np.float32)
    np.save(tmp_path / "emb.npy", docs)
    np.save(tmp_path / "emb.queries.npy", q)
    return a, b, str(tmp_path / "emb.npy")


def test_evaluate_result_fields(folders):
    a, _, model = folders
    result = evaluate(a, "Flat", dims=8, name="fp32", model=model, n_resamples=100)
    assert set(RESULT_KEYS) <= set(result) and "per_query" in result
    assert result["dataset"] == "set-a" and result["method"] == "fp32" and result["dims"] == 8
    assert result["spec"] == "Prefix8,Flat"
    assert result["bytes_per_vector"] == 32 and result["bits"] == 32
    assert (result["n_docs"], result["n_queries"]) == (N_DOCS, 8)
    lo, hi = result["ci95"]
    assert 0 <= lo <= result["ndcg@10"] <= hi <= 1
    assert result["ndcg@10"] == pytest.approx(np.mean(list(result["per_query"].values())))
    full = evaluate(a, "Flat", model=model, n_resamples=100)
    assert full["dims"] == DIM and full["ndcg@10"] > 0.8  # noisy copies are found at full dimension
    assert full["method"] == full["spec"] == "Flat"  # unnamed: the spec labels the result
    line = format_result(result)
    assert "set-a" in line and "fp32" in line and f"{result['ndcg@10']:.4f}" in line


def test_evaluate_rejects_mismatched_inputs(folders):
    a, b, model = folders
    with pytest.raises(TypeError, match="dataset"):
        evaluate(3, "Flat", model=model)
    with pytest.raises(ValueError, match="unknown codec 'nope'"):
        evaluate(a, "nope", model=model)
    with pytest.raises(TypeError, match="spec must be"):
        evaluate(a, 32, model=model)
    with pytest.raises(ValueError, match="missing"):
        evaluate(a, "Flat,(", model=str(a / "no-such.npy"))  # the spec is checked before any embedding work
    with pytest.raises(ValueError, match="head= goes with a QAMA"):
        evaluate(a, "Flat", model=model, head=lambda x: x)
    from qama_rs.data.embed import dataset_embeddings

    emb = dataset_embeddings(load_beir(b), model)
    with pytest.raises(ValueError, match="ids do not match"):
        evaluate(a, "Flat", embeddings=emb)


@pytest.mark.parametrize("spec", ["Flat", "Thermo2", "Hybrid", "LloydMax2"])
def test_evaluate_dims_equals_one_evaluation_per_prefix(folders, spec):
    """Indexes built once for several prefixes give each prefix's own evaluation, number for number."""
    from qama_rs.eval import evaluate_dims

    a, _, model = folders
    together = evaluate_dims(a, spec, [None, 8], model=model, n_resamples=50)
    for dims, result in zip([None, 8], together, strict=True):
        alone = evaluate(a, spec, dims=dims, model=model, n_resamples=50)
        for key in ("ndcg@10", "ci95", "recall@10", "bytes_per_vector", "bits", "spec", "dims", "per_query"):
            assert result[key] == alone[key], key


def test_build_tables_schema_and_files(folders, tmp_path):
    importlib.import_module("qama_rs._core")
    a, b, model = folders
    out = tmp_path / "results"
    payload = build_tables(
        [str(a), str(b)], out_dir=out, model=model, dims=(16, 8), n_resamples=50, progress=False
    )
    for name in ("main_table.md", "training_free_table.md", "storage_table.md", "tables.json", "pareto.png"):
        assert (out / name).is_file(), name
    on_disk = json.loads((out / "tables.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION == payload["schema_version"]
    assert (
        on_disk["datasets"] == ["set-a", "set-b"] and on_disk["dims"] == [16, 8] and on_disk["head"] is None
    )
    main = on_disk["tables"]["main"]
    assert [c["key"] for c in main["columns"]] == [c.key for c in MAIN_COLUMNS]
    assert [r["dims"] for r in main["rows"]] == [16, 8]
    row = main["rows"][0]["cells"]
    assert row["qama_1bit"] is None and row["qama_fp32"] is None  # no head: QAMA columns empty
    fp32 = row["fp32"]
    per = fp32["per_dataset"]
    assert fp32["ndcg@10"] == pytest.approx((per["set-a"]["ndcg@10"] + per["set-b"]["ndcg@10"]) / 2)
    assert fp32["ci95"][0] <= fp32["ndcg@10"] <= fp32["ci95"][1]
    free = on_disk["tables"]["training_free"]
    assert [c["key"] for c in free["columns"]] == [c.key for c in TRAINING_FREE_COLUMNS]
    assert all(cell is not None for r in free["rows"] for cell in r["cells"].values())
    storage = {r["key"]: r for r in on_disk["tables"]["storage"]["rows"]}
    assert storage["fp32"]["bytes_per_vector"] == 64 and storage["fp32"]["savings_pct"] == 0
    assert storage["fp32"]["relative_to_fp32_pct"] == pytest.approx(100)
    # Thermometer codes are stored in whole uint64 words: 16 bits take 8 bytes (counted honestly).
    assert storage["sign_1bit"]["bytes_per_vector"] == 8 and storage["sign_1bit"]["mb_per_million"] == 8
    assert storage["quantile_2bit"]["bits_per_dim"] == 4  # 3 thermometer bits x 16 dims = 48, stored in one 64-bit word
    assert storage["quantile_hybrid"]["bytes_per_vector"] == 8  # 16 dims -> 4*3 + 4*2 + 4 + 2 = 26 bits, one word
    results = on_disk["results"]
    assert len(results) == 2 * 2 * len(
        {c.key for c in TRAINING_FREE_COLUMNS + MAIN_COLUMNS if not c.uses_head}
    )
    assert all(set(RESULT_KEYS) <= set(r) and "per_query" not in r for r in results)
    text = (out / "main_table.md").read_text()
    assert "| 16 |" in text and "## set-b" in text and "—" in text


def test_build_tables_with_head_fills_qama_columns(folders, tmp_path):
    importlib.import_module("qama_rs._core")
    a, _, model = folders
    payload = build_tables(
        [str(a)], head=lambda x: x[:, ::-1].copy(), out_dir=tmp_path / "r", model=model, dims=(16, 8),
        n_resamples=20, plot=False, progress=False,
    )  # fmt: skip
    cells = payload["tables"]["main"]["rows"][1]["cells"]
    assert all(cells[c.key] is not None for c in MAIN_COLUMNS)
    assert payload["head"] is not None and not (tmp_path / "r" / "pareto.png").exists()


def test_build_tables_bad_arguments(folders, tmp_path):
    a, _, model = folders
    with pytest.raises(ValueError, match="at least one"):
        build_tables([], out_dir=tmp_path)
    with pytest.raises(ValueError, match="exceeds"):
        build_tables([str(a)], out_dir=tmp_path, model=model, dims=(32,), progress=False)
    shutil.rmtree(tmp_path / "set-a")
    with pytest.raises(FileNotFoundError):
        build_tables([str(a)], out_dir=tmp_path, model=model, progress=False)


def test_recall_at_10_is_measured_against_the_exact_float32_top10():
    from qama_rs.eval.runner import exact_top10, recall_at_10

    rng = np.random.default_rng(3)
    docs = rng.standard_normal((200, 16)).astype(np.float32)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    truth = exact_top10(docs, queries)
    np.testing.assert_array_equal(truth, np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :10])
    assert recall_at_10(truth, truth) == 1.0
    shifted = truth.copy()
    shifted[:, 5:] = 199 - shifted[:, 5:]  # half of each row replaced (the replacements are other rows)
    expected = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(shifted.tolist(), truth.tolist(), strict=True)])
    assert recall_at_10(shifted, truth) == pytest.approx(expected) and expected < 1
