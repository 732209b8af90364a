"""BEIR loading: counts, ids, MTEB text joining, and clear errors for broken folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qama_rs.data.beir import data_root, dataset_fingerprint, load_beir, resolve_dataset


def write_beir(
    root: Path,
    corpus: list[dict] | None = None,
    queries: list[dict] | None = None,
    qrels: dict[str, str] | None = None,
) -> Path:
    """A tiny BEIR folder; ``qrels`` maps split name to the TSV text (header included)."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = (
        corpus
        if corpus is not None
        else [
            {"_id": "d1", "title": "Alpha", "text": "first document. "},
            {"_id": "d2", "title": "", "text": "  untitled second "},
            {"_id": "d3", "title": "Gamma", "text": ""},
            {"_id": "d4", "text": "no title key"},
        ]
    )
    queries = (
        queries
        if queries is not None
        else [
            {"_id": "q1", "text": "find alpha"},
            {"_id": "q2", "text": "unjudged query"},
            {"_id": "q3", "text": "find gamma"},
        ]
    )
    qrels = (
        qrels
        if qrels is not None
        else {
            "test": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq3\td3\t2\nq3\td2\t0\n",
            "train": "query-id\tcorpus-id\tscore\nq2\td2\t1\n",
        }
    )
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels").mkdir(exist_ok=True)
    for split, text in qrels.items():
        (root / "qrels" / f"{split}.tsv").write_text(text)
    return root


def test_loads_ids_texts_and_judged_queries(tmp_path):
    ds = load_beir(write_beir(tmp_path / "tiny"))
    assert ds.name == "tiny" and ds.split == "test"
    assert ds.doc_ids == ["d1", "d2", "d3", "d4"]
    # title + " " + text, stripped, as MTEB joins them; no title -> the text alone, stripped.
    assert ds.doc_texts == ["Alpha first document.", "untitled second", "Gamma", "no title key"]
    assert ds.query_ids == ["q1", "q3"]  # q2 has no test judgment
    assert ds.query_texts == ["find alpha", "find gamma"]
    assert ds.qrels == {"q1": {"d1": 1}, "q3": {"d3": 2, "d2": 0}}
    assert ds.doc_index["d3"] == 2
    assert (ds.n_docs, ds.n_queries) == (4, 2)


def test_other_split(tmp_path):
    ds = load_beir(write_beir(tmp_path / "tiny"), split="train")
    assert ds.query_ids == ["q2"] and ds.qrels == {"q2": {"d2": 1}}


def test_resolve_by_name_uses_qama_data(tmp_path, monkeypatch):
    folder = write_beir(tmp_path / "beir" / "mini")
    monkeypatch.setenv("QAMA_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert resolve_dataset("mini") == folder.resolve()
    assert load_beir("mini").doc_ids[0] == "d1"


def test_missing_dataset_names_both_places(tmp_path, monkeypatch):
    monkeypatch.setenv("QAMA_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nope"):
        load_beir("nope")
    with pytest.raises(TypeError, match="name_or_path"):
        resolve_dataset(42)


def test_missing_files(tmp_path):
    folder = write_beir(tmp_path / "tiny")
    with pytest.raises(FileNotFoundError, match=r"dev\.tsv.*splits available: \['test', 'train'\]"):
        load_beir(folder, split="dev")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="queries.jsonl"):
        load_beir(folder)
    with pytest.raises(ValueError, match="split"):
        load_beir(folder, split="")


def test_malformed_json_reports_file_and_line(tmp_path):
    folder = write_beir(tmp_path / "tiny")
    with open(folder / "corpus.jsonl", "a") as handle:
        handle.write("{not json\n")
    with pytest.raises(ValueError, match=r"corpus\.jsonl:5: not valid JSON"):
        load_beir(folder)


def test_missing_field_and_non_object(tmp_path):
    folder = write_beir(tmp_path / "a", corpus=[{"title": "x", "text": "y"}])
    with pytest.raises(ValueError, match=r"corpus\.jsonl:1: missing field\(s\) _id"):
        load_beir(folder)
    folder = write_beir(tmp_path / "b")
    (folder / "queries.jsonl").write_text('["q1", "text"]\n')
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_beir(folder)


def test_duplicate_ids(tmp_path):
    folder = write_beir(tmp_path / "a", corpus=[{"_id": "d1", "text": "x"}, {"_id": "d1", "text": "y"}])
    with pytest.raises(ValueError, match="duplicate document id 'd1'"):
        load_beir(folder)


def test_bad_qrels(tmp_path):
    folder = write_beir(tmp_path / "a", qrels={"test": "query-id\tcorpus-id\tscore\nq1\td1\thigh\n"})
    with pytest.raises(ValueError, match=r"test\.tsv:2: relevance score 'high'"):
        load_beir(folder)
    folder = write_beir(tmp_path / "b", qrels={"test": "query-id\tcorpus-id\tscore\nq1 d1 1\n"})
    with pytest.raises(ValueError, match="3 tab-separated columns"):
        load_beir(folder)
    folder = write_beir(tmp_path / "c", qrels={"test": "query-id\tcorpus-id\tscore\nqX\td1\t1\n"})
    with pytest.raises(ValueError, match="absent from queries.jsonl"):
        load_beir(folder)
    folder = write_beir(tmp_path / "d", qrels={"test": "query-id\tcorpus-id\tscore\n"})
    with pytest.raises(ValueError, match="no query has judgments"):
        load_beir(folder)


def test_unknown_judged_document_warns_and_stays(tmp_path):
    folder = write_beir(
        tmp_path / "a", qrels={"test": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tgone\t1\n"}
    )
    with pytest.warns(UserWarning, match="absent from corpus.jsonl"):
        ds = load_beir(folder)
    assert ds.qrels == {"q1": {"d1": 1, "gone": 1}}


def test_fingerprint_tracks_content(tmp_path):
    folder = write_beir(tmp_path / "a")
    before = dataset_fingerprint(folder)
    assert before == dataset_fingerprint(folder)
    with open(folder / "qrels" / "test.tsv", "a") as handle:
        handle.write("q1\td2\t1\n")
    assert dataset_fingerprint(folder) != before
    assert dataset_fingerprint(folder, "train") != dataset_fingerprint(folder)


def _shared(name: str) -> Path:
    path = data_root() / "beir" / name
    if not path.is_dir():
        pytest.fail(f"shared dataset {name} not found under {data_root()} (CI needs ../shared beside the repo)")
    return path


def test_scifact_counts():
    ds = load_beir(_shared("scifact"))
    assert (ds.n_docs, ds.n_queries) == (5183, 300)
    assert sum(len(v) for v in ds.qrels.values()) == 339
    assert ds.doc_ids[0] == "4983" and ds.doc_texts[0].startswith(
        "Microstructural development of human newborn"
    )
    assert (
        ds.query_ids[0] == "1"
        and ds.query_texts[0] == "0-dimensional biomaterials show inductive properties."
    )
    assert len(load_beir(_shared("scifact"), split="train").query_ids) == 809


def test_dbpedia_counts():
    ds = load_beir(_shared("dbpedia-5k"))
    assert (ds.n_docs, ds.n_queries) == (5000, 40)
    assert {r for judged in ds.qrels.values() for r in judged.values()} == {0, 1, 2}
