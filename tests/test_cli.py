"""The ``qama`` command line: method names -> specs, every command's parser, clear one-line errors that name the
user's argument, JSON-only stdout, and ``qama index build`` + ``qama search`` reproducing ``qama eval``."""

import json

import numpy as np
import pytest

from qama_rs.cli.main import main

# ------------------------------------------------------------------------------------- method names


def test_method_names_map_to_specs():
    from qama_rs.cli.methods import METHOD_SPECS, method_label, method_spec, resolve_method
    from qama_rs.errors import QamaError

    for name, spec in METHOD_SPECS.items():
        assert method_spec(name) == spec == resolve_method(name)
    assert method_spec("quantile", 1.5) == "Thermo1.5" and method_spec("quantile", "hybrid") == "Hybrid"
    assert method_spec("lloyd_max_gauss@orthogonal") == "Orthogonal,LloydMax2"
    assert method_spec("lloyd_max_gauss", 4) == "LloydMax4"
    assert method_spec("qama", 2, head="runs/h") == "QAMA(runs/h),Thermo2"
    assert method_spec("qama", 32, head="runs/h") == "QAMA(runs/h),Flat"
    assert method_spec("pca_alloc") == "pca_alloc"  # a quantizer registry name is its own spec
    assert method_spec("Hadamard,LloydMax2") is None  # a spec is not a method name
    assert resolve_method("Hadamard,LloydMax2") == "Hadamard,LloydMax2"
    assert method_label("qama", "QAMA(runs/h),Thermo2") == "qama-Thermo2" and method_label("fp32", "Flat") == "fp32"
    with pytest.raises(QamaError, match="quantile bits"):
        method_spec("quantile", 3)
    with pytest.raises(QamaError, match="stores 32 bits"):
        method_spec("fp32", 8)
    with pytest.raises(QamaError, match="needs a trained head"):
        method_spec("qama", 2)
    with pytest.raises(QamaError, match="rotation"):
        method_spec("lloyd_max_gauss@spiral")
    with pytest.raises(QamaError, match="^--codec LloydMax2: .*--bits applies to method names|--bits applies"):
        resolve_method("LloydMax2", 2, option="--codec")
    with pytest.raises(QamaError, match="--method 'Flat,': unknown method"):
        resolve_method("Flat,")
    with pytest.raises(QamaError, match="--head goes with --method qama"):
        resolve_method("fp32", head="runs/h")


def test_rotation_suffix_builds_a_rotated_index():
    from qama_rs.cli.methods import resolve_method
    from qama_rs.eval.prefix import prefix_index

    rng = np.random.default_rng(0)
    docs = rng.standard_normal((300, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)  # embeddings are unit vectors
    plain = prefix_index(resolve_method("lloyd_max_gauss"), docs).index
    rotated = prefix_index(resolve_method("lloyd_max_gauss@orthogonal"), docs).index
    scores_plain, ids_plain = plain.search(docs[:5], 3)
    scores_rot, ids_rot = rotated.search(docs[:5], 3)
    assert ids_plain.shape == ids_rot.shape == (5, 3) and rotated.spec == "Orthogonal,LloydMax2"
    # Each document is its own best match under both; the rotation changes the scores themselves.
    assert (ids_plain[:, 0] == np.arange(5)).all() and (ids_rot[:, 0] == np.arange(5)).all()
    assert not np.allclose(scores_plain, scores_rot)


# --------------------------------------------------------------------------------------- parsers


def test_every_command_is_in_the_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "train", "eval", "tables", "diagnose", "info", "index", "search", "frontier", "reproduce"):
        assert f"    {command}" in out, command
    for command, flag in (("train", "--no-labelled"), ("frontier", "--budget"), ("eval", "--resamples"),
                          ("reproduce", "--two-stage"), ("search", "--query-embeddings")):  # fmt: skip
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert flag in capsys.readouterr().out, command


def test_no_argparse_outside_the_cli():
    """Every parser lives under qama_rs/cli (the library modules take explicit arguments)."""
    from pathlib import Path

    import qama_rs

    root = Path(qama_rs.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "argparse" in path.read_text(encoding="utf-8") and path.parent.name != "cli"
    ]
    assert offenders == []


# ---------------------------------------------------------------------------------------- qama eval


def test_eval_on_a_missing_dataset_is_one_clear_error(tmp_path, capsys):
    status = main(["eval", "--dataset", str(tmp_path / "nowhere"), "--method", "fp32"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("qama eval: error:") and "nowhere" in err


def test_eval_rejects_an_unknown_method(tmp_path, capsys):
    folder = _generated_beir(tmp_path)
    model = str(tmp_path / "emb.npy")
    assert main(["eval", "--dataset", str(folder), "--method", "no-such-method", "--model", model]) == 2
    assert "unknown codec 'no-such-method'" in capsys.readouterr().err
    assert main(["eval", "--dataset", str(folder), "--method", "Flat,(", "--model", model]) == 2
    assert "--method 'Flat,(': unknown method" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "two_stage", "--dims", "8"], "searches full dimensions only"),
        (["--method", "quantile", "--bits", "hybrid", "--dims", "12"], "multiple of 8"),
        (["--method", "LloydMax2", "--bits", "2"], "--bits applies to method names; --method 'LloydMax2'"),
        (["--method", "fp32", "--head", "{tmp}/head"], "--head goes with --method qama"),
        (["--method", "qama"], "--method qama: method 'qama' needs a trained head (--head DIR"),
        (["--method", "qama", "--bits", "2", "--head", "{tmp}/no-head"], "--head {tmp}/no-head: "),
        (["--method", "qama", "--head", "{tmp}/no-head"], "--method qama: qama bits must be one of 1, 1.5, 2"),
    ],
)
def test_eval_argument_errors_name_the_argument(tmp_path, capsys, argv, message):
    folder = _generated_beir(tmp_path)
    argv = ["eval", "--dataset", str(folder), "--model", str(tmp_path / "emb.npy"), *argv]
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qama eval: error: ") and "\n" not in err
    assert message.replace("{tmp}", str(tmp_path)) in err


def test_eval_json_is_the_only_stdout_on_a_cold_embedding_cache(tmp_path, monkeypatch, capsys):
    """The first run embeds the corpus (a notice) and then prints the result: stdout must parse as JSON."""
    from qama_rs.data import embed
    from test_data import write_beir
    from test_embed import FakeEncoder

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"hidden": 8}')
    (model_dir / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(embed, "load_model", lambda model=None: FakeEncoder())
    monkeypatch.setenv("QAMA_CACHE", str(tmp_path / "cache"))
    folder = write_beir(tmp_path / "tiny")
    argv = ["eval", "--dataset", str(folder), "--method", "fp32", "--model", str(model_dir), "--json", "--resamples", "10"]
    for run in ("cold", "warm"):
        assert main(argv) == 0
        captured = capsys.readouterr()
        result = json.loads(captured.out)  # nothing but the JSON document
        assert result["method"] == "fp32" and result["spec"] == "Flat" and result["n_docs"] == 4
        if run == "cold":
            assert "embedding 4 documents" in captured.err
    assert not list((tmp_path / "cache" / "embeddings").glob("*.tmp*"))


def test_eval_prints_the_same_numbers_as_the_library(tmp_path, capsys):
    from qama_rs.eval import evaluate

    folder = _generated_beir(tmp_path)
    model = str(tmp_path / "emb.npy")
    argv = ["eval", "--dataset", str(folder), "--method", "quantile", "--bits", "1", "--dims", "8", "--model", model]
    assert main([*argv, "--json", "--resamples", "50"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = evaluate(folder, "Thermo1", dims=8, model=model, n_resamples=50)
    assert printed["ndcg@10"] == expected["ndcg@10"] and printed["spec"] == "Thermo1" and printed["dims"] == 8
    assert printed["method"] == "quantile" and printed["bytes_per_vector"] == 8
    assert main([*argv, "--resamples", "50"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("gen") and f"{expected['ndcg@10']:.4f}" in line


# ------------------------------------------------------------------------ qama index build / search


def _generated_beir(tmp_path, n_docs=60, n_queries=12, dims=16):
    """A BEIR folder plus unit-norm document/query embeddings (``emb.npy`` + sidecars, eval's .npy model)."""
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
    from qama_rs.cli.methods import resolve_method
    from qama_rs.cli.options import parse_bits
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
    spec = resolve_method(codec, parse_bits(bits), option="--codec")
    expected = evaluate(folder, spec, model=str(tmp_path / "emb.npy"), n_resamples=10)
    assert ours == pytest.approx(expected["ndcg@10"], abs=1e-9)


def test_index_info_and_one_text_query(tmp_path, capsys):
    folder = _generated_beir(tmp_path)
    out = tmp_path / "text.qidx"
    assert main(["index", "build", "--corpus", str(folder / "corpus.jsonl"), "--codec", "quantile", "--bits", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["index", "info", str(out), "--json", "--verify"]) == 0
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
        (["index", "build", "--embeddings", "{tmp}/none.npy", "--codec", "Flat", "--out", "{tmp}/x.qidx"], "--embeddings {tmp}/none.npy does not exist"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "Nope", "--out", "{tmp}/x.qidx"], "unknown codec 'Nope'"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "LloydMax2", "--bits", "2", "--out", "{tmp}/x.qidx"], "--bits applies to method names; --codec 'LloydMax2'"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "quantile", "--out", "{tmp}/x.qidx"], "--codec quantile: quantile bits"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "fp32", "--head", "{tmp}", "--out", "{tmp}/x.qidx"], "--head goes with --codec qama"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--codec", "Flat", "--out", "{tmp}/no/dir/x.qidx"], "does not exist"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--ids", "{tmp}/none.json", "--codec", "Flat", "--out", "{tmp}/x.qidx"], "--ids {tmp}/none.json does not exist"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--ids", "{tmp}/bad.json", "--codec", "Flat", "--out", "{tmp}/x.qidx"], "--ids {tmp}/bad.json: not valid JSON"),
        (["index", "build", "--embeddings", "{tmp}/emb.npy", "--ids", "{tmp}/qids.json", "--codec", "Flat", "--out", "{tmp}/x.qidx"], "--ids {tmp}/qids.json: expected a JSON list of 60 ids"),
        (["index", "build", "--corpus", "{tmp}/none.jsonl", "--codec", "Flat", "--out", "{tmp}/x.qidx"], "--corpus {tmp}/none.jsonl does not exist"),
        (["index", "build", "--corpus", "{tmp}/bad.json", "--codec", "Flat", "--out", "{tmp}/x.qidx"], "--corpus {tmp}/bad.json:1: not valid JSON"),
        (["index", "info", "{tmp}/emb.npy"], "emb.npy: not a qama-rs index (bad magic)"),
        (["search", "{tmp}/missing.qidx", "--query", "x"], "no such index file"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, capsys, argv, message):
    _generated_beir(tmp_path)
    (tmp_path / "bad.json").write_text("{not json\n")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qama ") and ": error: " in err and "\n" not in err
    assert message.replace("{tmp}", str(tmp_path)) in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "exactly one of --query, --queries or --query-embeddings"),
        (["--query-embeddings", "{tmp}/none.npy"], "--query-embeddings {tmp}/none.npy does not exist"),
        (["--query-embeddings", "{tmp}/ids.json"], "--query-embeddings {tmp}/ids.json: not a .npy array"),
        (["--query-embeddings", "{tmp}/flat.npy"], "--query-embeddings {tmp}/flat.npy: expected a 2-D float array"),
        (["--query-embeddings", "{tmp}/emb.queries.npy", "--query-ids", "{tmp}/none.json"], "--query-ids {tmp}/none.json does not exist"),
        (["--query-embeddings", "{tmp}/emb.queries.npy", "--query-ids", "{tmp}/ids.json"], "--query-ids {tmp}/ids.json: expected a JSON list of 12 ids"),
        (["--query", "x", "--query-ids", "{tmp}/qids.json"], "--query-ids goes with --query-embeddings"),
        (["--queries", "{tmp}/none.jsonl"], "--queries {tmp}/none.jsonl does not exist"),
    ],
)
def test_search_errors_name_the_query_arguments(tmp_path, capsys, argv, message):
    """Problems with --query-embeddings / --query-ids are reported under those names (not --embeddings)."""
    _generated_beir(tmp_path)
    np.save(tmp_path / "flat.npy", np.zeros(16, dtype=np.float32))
    out = tmp_path / "x.qidx"
    assert main(["index", "build", "--embeddings", str(tmp_path / "emb.npy"), "--codec", "Flat", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["search", str(out), *[a.replace("{tmp}", str(tmp_path)) for a in argv]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qama search: error: ") and "\n" not in err
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert " --embeddings " not in err and "--ids " not in err.replace("--query-ids ", "")


@pytest.mark.parametrize("argv", [["search", "x.qidx", "--query", "q", "--k", "0"], ["eval", "--dataset", "d", "--method", "fp32", "--resamples", "0"],
                                  ["frontier", "--dataset", "d", "--budget", "0"], ["index", "build", "--corpus", "c", "--codec", "Flat", "--out", "o", "--batch-size", "-1"]])  # fmt: skip
def test_counts_must_be_positive(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    flag = next(a for a in argv if a.startswith("--") and argv[argv.index(a) + 1].lstrip("-").isdigit())
    assert f"argument {flag}: must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(("codec", "expected"), [("fp32", 0.6451), ("lloyd_max_gauss", 0.6576), ("binary", 0.6228)])
def test_scifact_index_build_and_search_reproduce_the_reference(tmp_path, codec, expected):
    """The issue's bar: `qama index build --dataset scifact` + `qama search --queries` (embedding the query
    texts again), scored with pytrec_eval, give the NDCG@10 `qama eval` reports."""
    from qama_rs.cli.methods import resolve_method
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
    assert ours == pytest.approx(evaluate("scifact", resolve_method(codec), n_resamples=10)["ndcg@10"], abs=1e-9)
    assert round(ours, 4) == expected


@pytest.mark.slow
def test_scifact_eval_json_reproduces_the_reference(capsys):
    """`qama eval --json` on scifact: stdout is one JSON document with the reference figures."""
    for argv, expected in (
        (["--method", "lloyd_max_gauss"], 0.6576),
        (["--method", "quantile", "--bits", "2"], 0.6122),
        (["--method", "fp32"], 0.6451),
    ):
        assert main(["eval", "--dataset", "scifact", *argv, "--json", "--resamples", "10"]) == 0
        assert round(json.loads(capsys.readouterr().out)["ndcg@10"], 4) == expected


@pytest.mark.slow
def test_qama_frontier_chooses_a_codec_within_the_budget(capsys):
    """`qama frontier` on scifact's documents (cached embeddings): a table and one choice that fits 24 B."""
    from qama_rs.index import index_factory

    assert main(["frontier", "--dataset", "scifact", "--budget", "24", "--queries", "100"]) == 0
    out = capsys.readouterr().out
    chosen = out.strip().splitlines()[-1]
    assert chosen.startswith("chosen for 24 B: ")
    spec = chosen.split(": ", 1)[1]
    index = index_factory(384, spec)
    docs = np.random.default_rng(0).standard_normal((300, 384)).astype(np.float32)
    index.train(docs)
    assert index.bytes_per_vector <= 24


def _clustered_embeddings(tmp_path, n=3000, d=32):
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(30, d))
    x = centers[rng.integers(0, 30, n)] + 0.3 * rng.normal(size=(n, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    np.save(tmp_path / "docs.npy", x)
    np.save(tmp_path / "q.npy", x[:5] + 0.01)
    (tmp_path / "ids.json").write_text(json.dumps([f"d{i}" for i in range(n)]))
    return x


def test_index_build_tunes_and_search_takes_nprobe_k_factor_and_allowed_ids(tmp_path, capsys):
    """`--target-recall` records a tuned nprobe in the file; `qama search` takes --nprobe / --allowed-ids and
    answers as the library does with the same arguments."""
    from qama_rs import Index

    _clustered_embeddings(tmp_path)
    out = tmp_path / "ivf.qidx"
    assert main(["index", "build", "--embeddings", str(tmp_path / "docs.npy"), "--ids", str(tmp_path / "ids.json"),
                 "--codec", "IVF32,LloydMax4", "--target-recall", "0.6", "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    index = Index.load(out)
    tuned = index.metadata["tuned"]
    assert f"tuned: nprobe={tuned['nprobe']}" in printed and index.nprobe == tuned["nprobe"] and tuned["reached"]
    assert tuned["recall"] >= 0.6
    allowed = [f"d{i}" for i in range(0, 3000, 7)]
    (tmp_path / "allowed.txt").write_text("\n".join(allowed + ["nope"]) + "\n")
    assert main(["search", str(out), "--query-embeddings", str(tmp_path / "q.npy"), "--k", "5", "--nprobe", "3",
                 "--allowed-ids", str(tmp_path / "allowed.txt")]) == 0  # fmt: skip
    run = capsys.readouterr()
    assert "1 of 430 ids are not in the index" in run.err
    docs = [line.split()[2] for line in run.out.splitlines()]
    assert len(docs) == 25 and set(docs) <= set(allowed)
    _, found = index.search(np.load(tmp_path / "q.npy"), 5, nprobe=3, allowed=allowed)
    assert docs == index.names_of(found).ravel().tolist()
    # Errors name the option.
    for argv, message in (
        (["--nprobe", "2", "--k-factor", "2"], "k_factor"),
        (["--allowed-ids", str(tmp_path / "none.txt")], "--allowed-ids"),
    ):
        assert main(["search", str(out), "--query-embeddings", str(tmp_path / "q.npy"), *argv]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["index", "build", "--embeddings", "x.npy", "--codec", "Flat", "--out", "o", "--target-recall", "1.5"])
    assert "--target-recall: must be in (0, 1]" in capsys.readouterr().err
    assert main(["index", "build", "--embeddings", str(tmp_path / "docs.npy"), "--codec", "Flat", "--out",
                 str(tmp_path / "f.qidx"), "--tune-queries", str(tmp_path / "q.npy")]) == 2  # fmt: skip
    assert "--tune-queries goes with --target-recall" in capsys.readouterr().err
