import numpy as np
import pytest

from qama_rs.cli.main import main
from qama_rs.eval.methods import get_method


def test_rotation_suffix_builds_a_rotated_training_free_method():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((300, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)  # embeddings are unit vectors
    plain = get_method("lloyd_max_gauss").fit(docs)
    rotated = get_method("lloyd_max_gauss@orthogonal").fit(docs)
    scores_plain, ids_plain = plain.search(docs[:5], 3)
    scores_rot, ids_rot = rotated.search(docs[:5], 3)
    assert ids_plain.shape == ids_rot.shape == (5, 3)
    # Each document is its own best match under both; the rotation changes the scores themselves.
    assert (ids_plain[:, 0] == np.arange(5)).all() and (ids_rot[:, 0] == np.arange(5)).all()
    assert not np.allclose(scores_plain, scores_rot)
    with pytest.raises(ValueError, match="rotation"):
        get_method("lloyd_max_gauss@spiral").fit(docs)


def test_two_stage_refuses_a_prefix():
    with pytest.raises(ValueError, match="full dimensions"):
        get_method("two_stage", dims=96)


def test_eval_on_a_missing_dataset_is_one_clear_error(tmp_path, capsys):
    status = main(["eval", "--dataset", str(tmp_path / "nowhere"), "--method", "fp32"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("qama eval: error:") and "nowhere" in err


def test_eval_rejects_an_unknown_method(tmp_path, capsys):
    from test_data import write_beir

    folder = write_beir(tmp_path / "tiny")
    assert main(["eval", "--dataset", str(folder), "--method", "no-such-method"]) == 2
    assert "unknown method" in capsys.readouterr().err


# ------------------------------------------------------------------------ qama index build / search


def _generated_beir(tmp_path, n_docs=60, n_queries=12, dims=16):
    """A BEIR folder plus unit-norm document/query embeddings (``emb.npy`` + sidecars, eval's .npy model)."""
    import json

    from test_data import write_beir

    rng = np.random.default_rng(4)
    corpus = [{"_id": f"doc{i}", "title": f"t{i}", "text": f"text {i}"} for i in range(n_docs)]
    queries = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(n_queries)]
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\tdoc{3 * i}\t1\nq{i}\tdoc{3 * i + 1}\t2\n" for i in range(n_queries))
    folder = write_beir(tmp_path / "gen", corpus, queries, {"test": qrels})
    docs = rng.standard_normal((n_docs, dims))
    docs = (docs / np.linalg.norm(docs, axis=1, keepdims=True)).astype(np.float32)
    qs = docs[::3][:n_queries] + 0.3 * rng.standard_normal((n_queries, dims)).astype(np.float32)
    qs = (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype(np.float32)
    np.save(tmp_path / "emb.npy", docs)
    np.save(tmp_path / "emb.queries.npy", qs)
    (tmp_path / "ids.json").write_text(json.dumps([c["_id"] for c in corpus]))
    (tmp_path / "qids.json").write_text(json.dumps([q["_id"] for q in queries]))
    return folder


@pytest.mark.parametrize(("codec", "bits"), [("fp32", None), ("lloyd_max_gauss", None), ("quantile", "1.5"), ("Hadamard,LloydMax2", None), ("two_stage", None)])
def test_index_build_and_search_reproduce_qama_eval(tmp_path, capsys, codec, bits):
    from qama_rs.data.beir import load_beir
    from qama_rs.eval import evaluate
    from qama_rs.eval.metrics import ndcg_at_10, read_trec_run

    folder = _generated_beir(tmp_path)
    out = tmp_path / "gen.qidx"
    bits_args = [] if bits is None else ["--bits", bits]
    argv = ["index", "build", "--embeddings", str(tmp_path / "emb.npy"), "--ids", str(tmp_path / "ids.json"), "--codec", codec, *bits_args, "--out", str(out)]
    assert main(argv) == 0
    assert "60 documents" in capsys.readouterr().out
    run = tmp_path / "run.tsv"
    argv = ["search", str(out), "--query-embeddings", str(tmp_path / "emb.queries.npy"), "--query-ids", str(tmp_path / "qids.json"), "--k", "100", "--out", str(run)]
    assert main(argv) == 0
    lines = run.read_text().splitlines()
    qid, q0, doc, rank, score, tag = lines[0].split(" ")
    assert q0 == "Q0" and doc.startswith("doc") and rank == "1" and float(score) == float(score)
    assert len({line.split()[0] for line in lines}) == 12
    ours = ndcg_at_10(load_beir(folder).qrels, read_trec_run(run))[0]
    expected = evaluate(folder, codec, bits=None if bits is None else float(bits), model=str(tmp_path / "emb.npy"), n_resamples=10)
    assert ours == pytest.approx(expected["ndcg@10"], abs=1e-9)


def test_index_info_and_one_text_query(tmp_path, capsys):
    folder = _generated_beir(tmp_path)
    out = tmp_path / "text.qidx"
    assert main(["index", "build", "--corpus", str(folder / "corpus.jsonl"), "--codec", "quantile", "--bits", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["index", "info", str(out), "--json", "--verify"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["spec"] == "Thermo2" and info["ntotal"] == 60 and info["dims"] == 384 and info["verified"]
    assert info["bytes_per_vector"] == 144 and info["codec"] == "quantile"
    assert main(["search", str(out), "--query", "text 7", "--k", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and [line.split()[0] for line in printed] == ["1", "2", "3"]
    assert all(line.split()[2].startswith("doc") for line in printed)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["index", "build", "--codec", "Flat", "--out", "{tmp}/x.qidx"], "exactly one of --dataset, --corpus or --embeddings"),
        (["index", "build", "--embeddings", "{tmp}/none.npy", "--codec", "Flat", "--out", "{tmp}/x.qidx"], "does not exist"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "Nope", "--out", "{tmp}/x.qidx"], "unknown codec 'Nope'"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "LloydMax2", "--bits", "2", "--out", "{tmp}/x.qidx"], "--bits applies to method names"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "quantile", "--out", "{tmp}/x.qidx"], "quantile bits"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "Flat", "--out", "{tmp}/no/dir/x.qidx"], "does not exist"),
        (["index", "info", "{tmp}/emb.npy"], "not a qama-rs factory index"),
        (["search", "{tmp}/missing.qidx", "--query", "x"], "no such index file"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, capsys, argv, message):
    _generated_beir(tmp_path)
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qama ") and ": error: " in err and "\n" not in err
    assert message in err


def test_search_needs_a_query_source(tmp_path, capsys):
    _generated_beir(tmp_path)
    out = tmp_path / "x.qidx"
    assert main(["index", "build", "--embeddings", str(tmp_path / "emb.npy"), "--codec", "Flat", "--out", str(out)]) == 0
    assert main(["search", str(out)]) == 2
    assert "exactly one of --query, --queries or --query-embeddings" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(("codec", "expected"), [("fp32", 0.6451), ("lloyd_max_gauss", 0.6576), ("binary", 0.6228)])
def test_scifact_index_build_and_search_reproduce_the_reference(tmp_path, codec, expected):
    """The issue's bar: `qama index build --dataset scifact` + `qama search --queries` (embedding the query
    texts again), scored with pytrec_eval, give the NDCG@10 `qama eval` reports."""
    from qama_rs.data.beir import data_root, load_beir
    from qama_rs.eval import evaluate
    from qama_rs.eval.metrics import ndcg_at_10, read_trec_run

    folder = data_root() / "beir" / "scifact"
    if not folder.is_dir():
        pytest.fail(f"shared dataset scifact not found under {data_root()} (CI needs ../shared beside the repo)")
    out, run = tmp_path / "scifact.qidx", tmp_path / "run.tsv"
    assert main(["index", "build", "--dataset", "scifact", "--codec", codec, "--out", str(out)]) == 0
    assert main(["search", str(out), "--queries", str(folder / "queries.jsonl"), "--k", "100", "--out", str(run)]) == 0
    ours = ndcg_at_10(load_beir("scifact").qrels, read_trec_run(run))[0]
    assert ours == pytest.approx(evaluate("scifact", codec, n_resamples=10)["ndcg@10"], abs=1e-9)
    assert round(ours, 4) == expected


@pytest.mark.slow
def test_qama_frontier_chooses_a_codec_within_the_budget(capsys):
    """`qama frontier` on scifact's documents (cached embeddings): a table and one choice that fits 24 B."""
    from qama_rs.cli.main import main
    from qama_rs.index import index_factory

    assert main(["frontier", "--dataset", "scifact", "--budget", "24", "--queries", "100"]) == 0
    out = capsys.readouterr().out
    chosen = out.strip().splitlines()[-1]
    assert chosen.startswith("chosen for 24 B: ")
    spec = chosen.split(": ", 1)[1]
    index = index_factory(384, spec)
    import numpy as np

    docs = np.random.default_rng(0).standard_normal((300, 384)).astype(np.float32)
    index.train(docs)
    assert index.bytes_per_vector <= 24
