"""``qama index build``, ``qama index info`` and ``qama search``: index your own corpus, answer queries.

    qama index build --dataset scifact --codec lloyd_max_gauss --out scifact.qidx
    qama index build --corpus corpus.jsonl --codec "Hadamard,LloydMax2" --out my.qidx
    qama index build --embeddings emb.npy --ids ids.json --codec Thermo2 --out my.qidx
    qama search my.qidx --queries queries.jsonl --k 100 --out run.tsv     (TREC run file)
    qama search my.qidx --query "what causes migraines?"                  (ranked ids and scores)
    qama index info my.qidx

``--codec`` takes a ``qama eval --method`` name (`qama_rs.cli.methods`; with ``--bits`` where it applies,
``--head`` for ``qama``) or any factory spec (:mod:`qama_rs.index`). Documents are embedded as
``title + " " + text`` with the bundled all-MiniLM-L6-v2 (or ``--model``), in batches with a progress bar; a
BEIR ``--dataset`` reuses the embedding cache ``qama eval`` fills, so a run file scored with pytrec_eval gives
the NDCG@10 ``qama eval`` reports. The index file stores the document ids and the model name, and is written
atomically. Errors name the option at fault (``--query-embeddings``, not ``--embeddings``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from qama_rs.cli.methods import resolve_method
from qama_rs.cli.options import BITS_CHOICES, at_least_one, parse_bits, positive_int, recall
from qama_rs.data.beir import read_texts
from qama_rs.errors import QamaError

__all__ = ["add_parsers", "read_jsonl_texts"]

_EMBED_CHUNK = 8192  # documents per embedding call: a progress step, and bounded memory per step


def read_jsonl_texts(path: Path, what: str, option: str) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` of a BEIR-style JSONL file (`qama_rs.data.beir.read_texts`); errors name ``option``."""
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path} does not exist")
    try:
        return read_texts(path, what.rstrip("s"))
    except ValueError as err:
        raise QamaError(f"{option} {err}") from None


def _embed(texts: list[str], model: str | None, batch_size: int, what: str) -> np.ndarray:
    from tqdm import tqdm

    from qama_rs.data.embed import embed_texts

    if len(texts) <= _EMBED_CHUNK:
        return embed_texts(texts, model=model, batch_size=batch_size, progress=sys.stderr.isatty())
    parts = []
    with tqdm(total=len(texts), desc=f"embedding {what}", unit=" texts", file=sys.stderr) as bar:
        for start in range(0, len(texts), _EMBED_CHUNK):
            block = texts[start : start + _EMBED_CHUNK]
            parts.append(embed_texts(block, model=model, batch_size=batch_size, progress=False))
            bar.update(len(block))
    return np.concatenate(parts)


def _load_embeddings(
    path: Path, ids_path: Path | None, option: str = "--embeddings", ids_option: str = "--ids"
) -> tuple[np.ndarray, list[str]]:
    """``(matrix, ids)`` of a ``.npy`` file and its optional JSON id list; errors name the user's options
    (``--embeddings``/``--ids`` for documents, ``--query-embeddings``/``--query-ids`` for queries)."""
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path} does not exist")
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise QamaError(f"{option} {path}: not a .npy array ({err})") from None
    if matrix.ndim != 2 or matrix.dtype.kind != "f":
        raise QamaError(f"{option} {path}: expected a 2-D float array, got {matrix.dtype} {matrix.shape}")
    if ids_path is None:
        ids = [str(i) for i in range(len(matrix))]
    else:
        if not ids_path.is_file():
            raise FileNotFoundError(f"{ids_option} {ids_path} does not exist")
        try:
            ids = json.loads(ids_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise QamaError(f"{ids_option} {ids_path}: not valid JSON ({err})") from None
        if not isinstance(ids, list) or len(ids) != len(matrix):
            raise QamaError(f"{ids_option} {ids_path}: expected a JSON list of {len(matrix)} ids (one per row)")
        ids = [str(i) for i in ids]
    return np.ascontiguousarray(matrix, dtype=np.float32), ids


def _one_source(args, sources: tuple[str, ...], ids: str, why: str) -> None:
    """Checks that exactly one of the input options ``sources`` (argparse names) is given, and the ids option
    ``ids`` only with the last of them, the embeddings file (``why``: the other inputs name their own rows)."""
    flags = [f"--{name.replace('_', '-')}" for name in sources]
    if sum(bool(getattr(args, name)) for name in sources) != 1:
        raise QamaError(f"give exactly one of {', '.join(flags[:-1])} or {flags[-1]}")
    if getattr(args, ids) and not getattr(args, sources[-1]):
        raise QamaError(f"--{ids.replace('_', '-')} goes with {flags[-1]} ({why})")


def _documents(args) -> tuple[np.ndarray, list[str], dict]:
    """``(embeddings, doc ids, metadata)`` from ``--dataset``, ``--corpus`` or ``--embeddings``."""
    _one_source(args, ("dataset", "corpus", "embeddings"), "ids", "a corpus names its own documents")
    if args.embeddings:
        x, ids = _load_embeddings(Path(args.embeddings), Path(args.ids) if args.ids else None)
        return x, ids, {"source": os.fspath(args.embeddings), "model": args.model}
    if args.dataset:
        from qama_rs.data.beir import load_beir
        from qama_rs.data.embed import dataset_embeddings

        try:
            data = load_beir(args.dataset, split=args.split)
        except FileNotFoundError as err:
            if "qrels" not in str(err):
                raise
            raise QamaError(f"{err}; to index a folder without judgments, give --corpus PATH/corpus.jsonl") from None
        emb = dataset_embeddings(data, args.model, batch_size=args.batch_size, progress=True)
        return emb.docs, list(emb.doc_ids), {"source": os.fspath(data.path), "model": args.model}
    ids, texts = read_jsonl_texts(Path(args.corpus), "documents", "--corpus")
    x = _embed(texts, args.model, args.batch_size, "documents")
    return x, ids, {"source": os.fspath(args.corpus), "model": args.model}


def _out_file(value: str) -> Path:
    out = Path(value)
    if out.parent and not out.parent.is_dir():
        raise FileNotFoundError(f"--out {value}: folder {out.parent} does not exist")
    return out


def cmd_index_build(args) -> int:
    from qama_rs.index import index_factory

    spec = resolve_method(args.codec, parse_bits(args.bits), head=args.head, option="--codec")
    out = _out_file(args.out)  # before any embedding work
    if args.tune_queries and args.target_recall is None:
        raise QamaError("--tune-queries goes with --target-recall")
    head = None
    if args.head:
        from qama_rs.qama.model import QamaModel

        try:
            head = QamaModel.load(args.head)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"--head {args.head}: {err}") from None
    x, ids, meta = _documents(args)
    index = index_factory(x.shape[1], spec, head=head)
    if not index.is_trained:
        index.train(x)
    for start in range(0, len(x), 1 << 16):
        index.add(x[start : start + (1 << 16)], ids=ids[start : start + (1 << 16)])
    index.metadata = {**meta, "codec": args.codec, "bits": args.bits}
    tuned = None
    if args.target_recall is not None:
        probes = None
        if args.tune_queries:
            probes = _tune_queries(Path(args.tune_queries), args)
        tuned = index.tune(x, args.target_recall, queries=probes)
    index.save(out)
    print(f"{out}: {index.ntotal} documents, spec {spec!r}, {index.bytes_per_vector} bytes/vector, {out.stat().st_size} bytes")
    if tuned is not None:
        probes_text = f"{tuned.queries} {'given queries' if args.tune_queries else 'probe queries'}"
        print(
            f"tuned: nprobe={tuned.nprobe} k_factor={tuned.k_factor} -> recall@{tuned.k} {tuned.recall:.3f} "
            f"(95 % lower bound {tuned.lower:.3f}) on {probes_text} "
            f"(target {tuned.target}{'' if tuned.reached else ', NOT reached: the best setting kept'})"
        )
    return 0


def _tune_queries(path: Path, args) -> np.ndarray:
    """``--tune-queries``: unlabelled sample queries, as embeddings (``.npy``) or texts (JSONL, embedded)."""
    if path.suffix == ".npy":
        return _load_embeddings(path, None, option="--tune-queries")[0]
    _, texts = read_jsonl_texts(path, "queries", "--tune-queries")
    return _embed(texts, args.model, args.batch_size, "tuning queries")


def _allowed_ids(path: Path, index):
    """``--allowed-ids``: document ids, a JSON list or one per line, as an :class:`~qama_rs.Allowed` of their
    int ids (made once for every batch of queries); ids the index does not hold are reported."""
    import numpy as np

    from qama_rs.index import Allowed

    if not path.is_file():
        raise FileNotFoundError(f"--allowed-ids {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        ids = json.loads(text) if text.lstrip().startswith("[") else [line.strip() for line in text.splitlines()]
    except ValueError as err:
        raise QamaError(f"--allowed-ids {path}: not a valid JSON list ({err})") from None
    ids = [str(i) for i in ids if str(i) != ""]
    slot = {name: s for s, name in enumerate(index.names or [])}
    found = [slot[i] for i in ids if i in slot]
    unknown = len(ids) - len(found)
    if not found:
        raise QamaError(f"--allowed-ids {path}: none of its {len(ids)} ids is in the index")
    if unknown:
        print(f"--allowed-ids {path}: {unknown} of {len(ids)} ids are not in the index (ignored)", file=sys.stderr)
    return Allowed(index.ids[np.asarray(found, dtype=np.int64)])


def cmd_index_info(args) -> int:
    from qama_rs.index import Index

    path = Path(args.file)
    index = Index.load(path, mmap=True)
    info = {
        "file": os.fspath(path),
        "spec": index.spec,
        "dims": index.dims,
        "ntotal": index.ntotal,
        "bytes_per_vector": index.bytes_per_vector,
        "file_bytes": path.stat().st_size,
        "named_documents": index.names is not None,
        **index.metadata,
    }
    if args.verify:
        index.verify()
        info["verified"] = True
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>17}: {value}")
    return 0


def _query_input(args, model: str | None) -> tuple[list[str], np.ndarray]:
    _one_source(
        args, ("query", "queries", "query_embeddings"), "query_ids", "a query file names its own queries"
    )
    if args.query:
        from qama_rs.data.embed import embed_texts

        return ["query"], embed_texts([args.query], model=model, progress=False)
    if args.queries:
        qids, texts = read_jsonl_texts(Path(args.queries), "queries", "--queries")
        return qids, _embed(texts, model, args.batch_size, "queries")
    x, qids = _load_embeddings(
        Path(args.query_embeddings),
        Path(args.query_ids) if args.query_ids else None,
        option="--query-embeddings",
        ids_option="--query-ids",
    )
    return qids, x


def cmd_search(args) -> int:
    from qama_rs.index import Index

    out = None if args.out is None else _out_file(args.out)
    index = Index.load(args.file, mmap=True)
    if index.names is None:
        raise QamaError(f"{args.file}: the index stores no document ids (build it with `qama index build`)")
    model = args.model or index.metadata.get("model")
    qids, xq = _query_input(args, model)
    if xq.shape[1] != index.dims:
        source = (
            f"--query-embeddings {args.query_embeddings}"
            if args.query_embeddings
            else f"queries embedded with {'--model ' + str(model) if model else 'the bundled model'}"
        )
        raise QamaError(f"{source}: {xq.shape[1]} dimensions, the index {args.file} takes {index.dims}")
    tag = args.tag or index.spec
    allowed = None if args.allowed_ids is None else _allowed_ids(Path(args.allowed_ids), index)
    params = {"nprobe": args.nprobe, "k_factor": args.k_factor, "allowed": allowed}
    lines = []
    for start in range(0, len(xq), 1024):
        D, I = index.search(xq[start : start + 1024], args.k, **params)  # noqa: E741 - faiss's names
        names = index.names_of(I)
        for qid, scores, docs in zip(qids[start : start + 1024], D.tolist(), names.tolist(), strict=True):
            for rank, (score, doc) in enumerate(zip(scores, docs, strict=True), start=1):
                if doc == "":
                    break
                if args.query:
                    lines.append(f"{rank:>5}  {score:>12.6g}  {doc}\n")
                else:
                    # 9 significant digits print a float32 exactly, so trec_eval sees the engine's order.
                    lines.append(f"{qid} Q0 {doc} {rank} {score:.9g} {tag.replace(' ', '_')}\n")
    if out is not None:
        from qama_rs.engine import atomic_write

        atomic_write(out, lambda f: f.write("".join(lines).encode()))
        print(f"{args.out}: {len(qids)} queries, top {args.k}, run tag {tag!r}")
    else:
        sys.stdout.write("".join(lines))
    return 0


def add_parsers(sub) -> None:
    """Adds ``index`` (``build``, ``info``) and ``search`` to the ``qama`` sub-command parser."""
    index = sub.add_parser("index", help="build an index of your own corpus or embeddings; show an index file")
    isub = index.add_subparsers(dest="index_command", required=True)
    build = isub.add_parser("build", help="embed documents, encode them with a codec, write an index file")
    build.add_argument("--dataset", metavar="PATH", help="a BEIR folder or dataset name (its corpus; cached embeddings)")
    build.add_argument("--corpus", metavar="JSONL", help="documents: one JSON object per line with _id, title, text")
    build.add_argument("--embeddings", metavar="NPY", help="precomputed document embeddings (n, d) float")
    build.add_argument("--ids", metavar="JSON", help="with --embeddings: a JSON list of document ids, one per row")
    build.add_argument("--codec", required=True, help="a `qama eval --method` name or a factory spec, e.g. 'Hadamard,LloydMax2'")
    build.add_argument("--bits", choices=BITS_CHOICES, help="bits of a method name that has variants (quantile, qama, ...)")
    build.add_argument("--head", metavar="DIR", help="trained QAMA head for --codec qama")
    build.add_argument("--model", help="sentence-transformers model folder (default: bundled all-MiniLM-L6-v2)")
    build.add_argument("--split", default="test", help="with --dataset: the qrels split that must exist (default test)")
    build.add_argument("--batch-size", type=positive_int, default=64, help="embedding batch size (default 64)")
    build.add_argument("--out", required=True, metavar="FILE", help="index file to write (atomically)")
    build.add_argument("--target-recall", type=recall, metavar="R",
                       help="tune nprobe / k_factor for this recall@10 (documents as probe queries; no labels)")
    build.add_argument("--tune-queries", metavar="FILE",
                       help="with --target-recall: unlabelled sample queries to tune on (.npy embeddings or JSONL texts)")
    build.set_defaults(func=cmd_index_build)
    info = isub.add_parser("info", help="spec, size and provenance of an index file")
    info.add_argument("file")
    info.add_argument("--verify", action="store_true", help="also check every section's checksum (reads the file)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_index_info)

    search = sub.add_parser("search", help="search an index file: a TREC run for a query file, or one query")
    search.add_argument("file", help="index file from `qama index build`")
    search.add_argument("--queries", metavar="JSONL", help="queries: one JSON object per line with _id and text")
    search.add_argument("--query", metavar="TEXT", help="one query; prints ranked document ids and scores")
    search.add_argument("--query-embeddings", metavar="NPY", help="precomputed query embeddings (nq, d) float")
    search.add_argument("--query-ids", metavar="JSON", help="with --query-embeddings: a JSON list of query ids")
    search.add_argument("--k", type=positive_int, default=10, help="results per query (default 10)")
    search.add_argument("--out", metavar="FILE", help="write a TREC run file (qid Q0 docid rank score tag)")
    search.add_argument("--tag", help="run tag (default: the index's spec)")
    search.add_argument("--model", help="embedding model (default: the one the index was built with)")
    search.add_argument("--batch-size", type=positive_int, default=64, help="embedding batch size (default 64)")
    search.add_argument("--nprobe", type=positive_int, help="lists to scan (IVF indexes; default: the tuned or default)")
    search.add_argument("--k-factor", type=at_least_one, metavar="F",
                        help="refinement depth k * F (Rescore/RFlat indexes; default: the tuned or the spec's k')")
    search.add_argument("--allowed-ids", metavar="FILE",
                        help="search only these document ids (a JSON list, or one id per line); filtered in the scan")
    search.set_defaults(func=cmd_search)
