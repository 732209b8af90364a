"""The end-to-end demo behind ``qama demo`` (the README's first command).

embed the corpus and queries with the bundled all-MiniLM-L6-v2 (cached) → fit a documents-only QAMA head
(no labels: PCA frame, quantization-aware code rotations, thresholds; seconds to minutes) → encode → search
in the Rust engine through `qama_rs.index_factory` → NDCG@10 and recall@10 on the test split, the
documents-only and shipped pretrained heads beside the best training-free codecs of the same bytes, with
bytes per vector and queries per second measured in this run. ``add_parsers`` wires ``qama demo``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qama_rs.data.beir import load_beir
from qama_rs.data.embed import dataset_embeddings
from qama_rs.engine.cpu import cpu_description
from qama_rs.eval.metrics import ndcg_at_10, run_from_topk

# Depth of the ranking handed to pytrec_eval, as MTEB's retrieval evaluator uses.
RANK_DEPTH = 1000
# Search timing repeats the whole query set until at least this long has elapsed.
MIN_TIMING_SECONDS = 0.5


@dataclass
class DemoRow:
    method: str
    spec: str
    bytes_per_vector: float
    ndcg: float
    recall: float
    qps: float


def _queries_per_second(search, n_queries: int) -> float:
    """Queries per second of ``search()`` (all queries, k = 10), best of repeated timed runs."""
    search()  # warm-up: first-touch pages, thread pool start
    best = float("inf")
    spent = 0.0
    while spent < MIN_TIMING_SECONDS:
        start = time.perf_counter()
        search()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
    return n_queries / best


def _index_row(label: str, spec: str, data, docs: np.ndarray, queries: np.ndarray, truth: np.ndarray, head=None) -> DemoRow:
    """One row: build the factory index ``spec`` on the documents, search every query, score it."""
    from qama_rs.index import index_factory

    index = index_factory(docs.shape[1], spec, head=head)
    index.train(docs)
    index.add(docs)
    scores, ids = index.search(queries, RANK_DEPTH)
    ndcg, _ = ndcg_at_10(data.qrels, run_from_topk(data.query_ids, data.doc_ids, ids, scores.astype(np.float64)))
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids[:, :10], truth, strict=True)]))
    qps = _queries_per_second(lambda: index.search(queries, 10), len(queries))
    return DemoRow(label, spec, index.bytes_per_vector, ndcg, recall, qps)


# (label, spec) of every row; `{head}` is the documents-only head trained in step 2. Rows are grouped by
# stored bytes so each learned code sits beside the training-free codes of the same size.
ROWS = (
    ("float32, exhaustive", "Flat"),
    ("1-bit quantile codes, no training (Hamming)", "Thermo1"),
    ("QAMA 1-bit, pretrained head (Hamming)", "QAMA(pretrained),Thermo1"),
    ("QAMA 1-bit, documents-only head (Hamming)", "QAMA({head}),Thermo1"),
    ("1-bit sign, float query (asymmetric)", "Binary"),
    ("PCA bit allocation 48 B, float query (nibble-packed, block kernel)", "pca_nibble_scaled(budget_bytes=48)"),
    ("hybrid quantile codes, no training (Hamming)", "Hybrid"),
    ("QAMA hybrid, documents-only head (Hamming)", "QAMA({head}),Hybrid"),
    ("2-bit Lloyd-Max, float query (asymmetric)", "LloydMax2"),
    ("PCA bit allocation 104 B, float query (nibble-packed, block kernel)", "pca_nibble_scaled(budget_bytes=104)"),
    ("2-bit quantile codes, no training (Hamming)", "Thermo2"),
    ("QAMA 2-bit, pretrained head (Hamming)", "QAMA(pretrained),Thermo2"),
    ("QAMA 2-bit, documents-only head (Hamming)", "QAMA({head}),Thermo2"),
    ("QAMA 2-bit, documents-only head, 96-d level", "QAMA({head},96),Thermo2"),
    ("QAMA 1-bit candidates -> 2-bit Lloyd-Max rescoring (top 100)", "QAMA({head}),Thermo1,Rescore(LloydMax2,100)"),
)


def run_demo(dataset: str = "scifact", out_dir: str | Path = "runs/demo", epochs: int = 0, retrain: bool = False) -> list[DemoRow]:
    """Run the whole pipeline and print the table; returns its rows. ``epochs`` > 0 also trains the FFN
    (supervised config without labels: measured worse documents-only; for experiments)."""
    from qama_rs.qama.config import QamaConfig, supervised_config
    from qama_rs.qama.train import train

    print(f"qama demo on {dataset}; {cpu_description()}")
    print("[1/4] embedding corpus and queries (cached after the first run)")
    data = load_beir(dataset, split="test")
    emb = dataset_embeddings(data)
    docs, queries = emb.docs, emb.queries

    out = Path(out_dir)
    if retrain or not (out / "head.safetensors").is_file():
        print(f"[2/4] fitting a documents-only QAMA head on the {len(docs)} documents (no labels, no test data)")
        config = supervised_config() if epochs > 0 else QamaConfig()
        config.optim.epochs = max(epochs, 1)
        started = time.perf_counter()
        train(config, [dataset], out, labelled=False)
        print(f"      done in {time.perf_counter() - started:.0f} s -> {out}")
    else:
        print(f"[2/4] reusing the head in {out} (--retrain to fit it again)")

    print("[3/4] encoding and searching (every row is a qama_rs.index_factory spec, scored by the Rust engine)")
    truth = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    rows = [_index_row(label, spec.format(head=out), data, docs, queries, truth) for label, spec in ROWS]

    print("[4/4] results (NDCG@10 on the test split; recall@10 vs the exact float32 top-10; QPS = queries/s for "
          "k = 10, measured in this run)\n")
    print(format_table(rows, dataset))
    return rows


def format_table(rows: list[DemoRow], dataset: str) -> str:
    base = rows[0]
    lines = [
        f"| method ({dataset}) | spec | bytes/vector | NDCG@10 | % of float32 | recall@10 | QPS | speed vs float32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.method} | `{r.spec}` | {r.bytes_per_vector:g} | {r.ndcg:.4f} | {100 * r.ndcg / base.ndcg:.1f} % "
            f"| {r.recall:.3f} | {r.qps:,.0f} | {r.qps / base.qps:.1f}x |"
        )
    return "\n".join(lines)


def add_parsers(sub) -> None:
    """Adds ``demo`` to the ``qama`` sub-command parser."""
    demo = sub.add_parser("demo", help="end-to-end demo on scifact: embed, fit a documents-only head, encode, search, NDCG")
    demo.add_argument("--dataset", default="scifact", help="BEIR dataset name or folder (default: scifact)")
    demo.add_argument("--out", default=os.path.join("runs", "demo"), help="where the demo head is written")
    demo.add_argument(
        "--epochs",
        type=int,
        default=0,
        help="FFN training epochs (default 0: the documents-only head, which measured best without labels)",
    )
    demo.add_argument("--retrain", action="store_true", help="train again even if OUT already holds a head")
    demo.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    run_demo(dataset=args.dataset, out_dir=args.out, epochs=args.epochs, retrain=args.retrain)
    return 0
