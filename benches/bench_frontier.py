"""The frontier: recall@10 and nDCG@10 per stored byte, qama-rs codecs beside faiss, Qdrant and
sentence-transformers, on the shared BEIR sets (all-MiniLM-L6-v2 embeddings, cached).

    python benches/bench_frontier.py                 # quality: every method, both sets (~15 min, loaded 2 cores)
    python benches/bench_frontier.py --speed         # + 1M-vector scan timings (~10 min on a loaded machine)
    python benches/bench_frontier.py --unlabelled    # + recall@10 on wiki-50k, a third corpus (~3 min)
    python benches/bench_frontier.py --no-peers      # qama-rs codecs only
    python benches/bench_frontier.py --from-json     # rewrite tables/plot from results/frontier.json

Each method ranks the whole corpus by its compressed scores only; a second group rescoring each
query's top 40 with float32 follows. recall@10 is against the exact float32 top-10; nDCG@10 is given
with linear gains (pytrec_eval / MTEB: dbpedia-5k float32 .5114) and with gains 2^rel - 1 (the
ANCHORS.md table: .4784), with a 95 % bootstrap interval (1,000 resamples of the queries) on the
linear one. Bytes = codes + per-vector factors + padding as each library stores them. qama-rs codecs
are factory indexes (``index_factory(384, spec)``) trained on the corpus documents only and searched by
the Rust engine; the speed rows time the engine's byte-table kernel (``TableCodec.given``) alone.

Writes results/frontier.json, results/frontier.md, results/frontier.png and the frontier section of
benches/RESULTS.md (between its markers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
from qama_rs import _core  # noqa: E402
from qama_rs.data.beir import load_beir, resolve_dataset  # noqa: E402
from qama_rs.data.embed import dataset_embeddings  # noqa: E402
from qama_rs.engine.quantizer import atomic_write  # noqa: E402
from qama_rs.eval.metrics import bootstrap_ci  # noqa: E402
from qama_rs.index import index_factory  # noqa: E402
from qama_rs.quantizers import AllocatedNibbleScaled, AllocatedScaled  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
K_SEARCH = 40  # candidates kept: the top 10 for the first group, all 40 for the rescored group


# --------------------------------------------------------------------------------------- qama-rs
def qama_specs() -> list[tuple[str, str]]:
    """(label, index spec) for the frontier sweep; one principled design per budget."""
    out = []
    for b in (12, 24, 32):
        out += [(f"qama pca_pq m={b}", f"pca_pq(m={b})"), (f"qama pca_alloc {b}B", f"pca_alloc(budget_bytes={b})")]
    out += [("qama pca_pq m=48", "pca_pq(m=48)"), ("qama pca_alloc 48B", "pca_alloc(budget_bytes=48)")]
    for b in (48, 56, 80, 96, 104, 192, 200):
        out.append((f"qama pca_alloc_scaled {b}B", f"pca_alloc_scaled(budget_bytes={b})"))
    # Nibble packing: what the quantized block kernel scans (the speed rows); the index stores them in blocks.
    for b in (24, 48, 56, 80, 104, 200):
        out.append((f"qama pca_nibble_scaled {b}B", f"pca_nibble_scaled(budget_bytes={b})"))
    out.append(("qama trit_rotation (5 trits/B)", "trit_rotation"))
    return out


def search_spec(spec, docs, queries, k):
    """A factory index of ``spec`` trained on the corpus documents and holding them: (ids, stored bytes)."""
    index = index_factory(docs.shape[1], spec)
    index.train(docs)
    index.add(docs)
    return index.search(queries, k)[1], int(index.bytes_per_vector)


def _by_spec(spec):
    return lambda d, q, k: search_spec(spec, d, q, k)


def method_table(with_peers: bool):
    """(group, label, search(docs, queries, k) -> (ids, bytes))."""
    rows = [("qama-rs", label, _by_spec(spec)) for label, spec in qama_specs()]
    for spec, label in (
        ("binary", "qama binary, float query"),
        ("lloyd_max_gauss", "qama Lloyd-Max 2-bit, float query"),
        ("lloyd_max_4bit", "qama Lloyd-Max 4-bit, float query"),
    ):
        rows.append(("qama-rs (earlier)", label, _by_spec(spec)))
    if not with_peers:
        return rows
    for nb in (1, 2, 4):
        for qb in (4, 8):
            rows.append(
                (
                    "faiss",
                    f"faiss IndexRaBitQ {nb}-bit qb={qb}",
                    (lambda a, b: lambda d, q, k: peers.faiss_rabitq(d, q, k, a, b))(nb, qb),
                )
            )
    for m in (12, 24, 48):
        rows.append(
            ("faiss", f"faiss IndexPQ {m}x8", (lambda a: lambda d, q, k: peers.faiss_pq(d, q, k, a))(m))
        )
    for bits in ("1bit", "1.5bit", "2bit"):
        for enc in ("Binary", "Scalar4Bits", "Scalar8Bits"):
            rows.append(
                (
                    "qdrant",
                    f"Qdrant BQ {bits} query {enc}",
                    (lambda a, b: lambda d, q, k: peers.qdrant(d, q, k, "bq", a, b))(bits, enc),
                )
            )
    for bits in ("1bit", "1.5bit", "2bit", "4bit"):
        rows.append(
            (
                "qdrant",
                f"Qdrant TurboQuant {bits}",
                (lambda a: lambda d, q, k: peers.qdrant(d, q, k, "tq", a))(bits),
            )
        )
    rows.append(("sentence-transformers", "ST quantize_embeddings ubinary (Hamming)", peers.st_binary))
    rows.append(("sentence-transformers", "ST quantize_embeddings int8 (int8 query)", peers.st_int8))
    return rows


# --------------------------------------------------------------------------------------- metrics
def ndcg10(ranked_doc_ids, qrels, exp_gain: bool) -> np.ndarray:
    """Per-query nDCG@10 of ranked lists (queries in qrels order); gain = rel or 2^rel - 1."""
    gain = (lambda r: 2.0**r - 1.0) if exp_gain else (lambda r: float(r))
    disc = 1.0 / np.log2(np.arange(2, 12))
    out = []
    for ranked, judged in zip(ranked_doc_ids, qrels, strict=True):
        dcg = sum(gain(judged.get(doc, 0)) * disc[r] for r, doc in enumerate(ranked[:10]))
        ideal = sorted((gain(v) for v in judged.values() if v > 0), reverse=True)[:10]
        idcg = sum(g * disc[r] for r, g in enumerate(ideal))
        out.append(dcg / idcg if idcg > 0 else 0.0)
    return np.array(out)


def evaluate(ids, data, rescore: bool) -> dict:
    docs, queries, truth = data["docs"], data["queries"], data["truth"]
    if rescore:
        cand = np.where(ids < 0, 0, ids)
        exact = np.einsum("qd,qkd->qk", queries, docs[cand])
        exact[ids < 0] = -np.inf
        ids = np.take_along_axis(ids, np.argsort(-exact, axis=1, kind="stable"), 1)
    top = ids[:, :10]
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, truth, strict=True)]))
    doc_ids = data["doc_ids"]
    ranked = [[doc_ids[i] for i in row if i >= 0] for row in top]
    lin = ndcg10(ranked, data["qrels"], exp_gain=False)
    exp = ndcg10(ranked, data["qrels"], exp_gain=True)
    lo, hi = bootstrap_ci(lin)
    return {
        "recall10": recall,
        "ndcg10": float(lin.mean()),
        "ndcg10_ci": [lo, hi],
        "ndcg10_exp": float(exp.mean()),
    }


def load(name: str) -> dict:
    ds = load_beir(resolve_dataset(name))
    emb = dataset_embeddings(ds, progress=False)
    docs = np.ascontiguousarray(emb.docs, dtype=np.float32)
    queries = np.ascontiguousarray(emb.queries, dtype=np.float32)
    truth = peers._topk((queries @ docs.T).astype(np.float64), 10)
    qrels = [ds.qrels[q] for q in emb.query_ids]
    return {"docs": docs, "queries": queries, "truth": truth, "doc_ids": emb.doc_ids, "qrels": qrels}


# ------------------------------------------------------------------------------ unlabelled corpus
def unlabelled_check(n_docs: int = 10_000, n_queries: int = 300) -> dict:
    """recall@10 on a third corpus never used to design the codecs: wiki-50k documents (a seeded
    random 10,000 as the corpus, 300 others as queries; no labels, so no nDCG)."""
    x = np.load(ROOT.parent / "shared/data/unlabelled/wiki-50k/all-MiniLM-L6-v2.npy").astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    docs, queries = x[order[:n_docs]], x[order[n_docs : n_docs + n_queries]]
    truth = peers._topk((queries @ docs.T).astype(np.float64), 10)
    methods = [(f"qama pca_pq m={m}", _by_spec(f"pca_pq(m={m})")) for m in (12, 24, 48)]
    methods += [("qama pca_alloc 48B", _by_spec("pca_alloc(budget_bytes=48)"))]
    methods += [(f"qama pca_alloc_scaled {b}B", _by_spec(f"pca_alloc_scaled(budget_bytes={b})")) for b in (56, 80, 104, 200)]
    methods += [
        (f"qama pca_nibble_scaled {b}B", _by_spec(f"pca_nibble_scaled(budget_bytes={b})")) for b in (48, 104, 200)
    ]
    methods += [
        (f"faiss IndexPQ {m}x8", (lambda a: lambda d, q, k: peers.faiss_pq(d, q, k, a))(m))
        for m in (12, 24, 48)
    ]
    methods += [
        (
            f"faiss IndexRaBitQ {nb}-bit qb=8",
            (lambda a: lambda d, q, k: peers.faiss_rabitq(d, q, k, a, 8))(nb),
        )
        for nb in (1, 2, 4)
    ]
    methods += [
        (f"Qdrant TurboQuant {b}", (lambda a: lambda d, q, k: peers.qdrant(d, q, k, "tq", a))(b))
        for b in ("1bit", "1.5bit", "2bit", "4bit")
    ]
    methods += [
        (
            "Qdrant BQ 1bit query Scalar8Bits",
            lambda d, q, k: peers.qdrant(d, q, k, "bq", "1bit", "Scalar8Bits"),
        )
    ]
    rows = []
    for label, search in methods:
        ids, nbytes = search(docs, queries, 10)
        r = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(np.asarray(ids), truth, strict=True)]))
        rows.append({"method": label, "bytes": nbytes, "recall10": r})
        print(f"  wiki-50k {label:40s} {nbytes:4d} B  R@10 {r:.3f}", flush=True)
    return {"n_docs": n_docs, "n_queries": n_queries, "rows": rows}


# ----------------------------------------------------------------------------------------- speed
def speed(n: int = 1_000_000, nq: int = 1000) -> list[dict]:
    """1M tiled real vectors (wiki-50k documents plus small noise, renormalized), k = 10."""
    import faiss

    base = np.load(ROOT.parent / "shared/data/unlabelled/wiki-50k/all-MiniLM-L6-v2.npy").astype(np.float32)
    rng = np.random.default_rng(0)
    docs = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, len(base)):
        stop = min(n, start + len(base))
        block = base[: stop - start] + 0.02 * rng.standard_normal(
            (stop - start, base.shape[1]), dtype=np.float32
        )
        docs[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    queries = docs[rng.choice(n, nq, replace=False)] + 0.05 * rng.standard_normal(
        (nq, base.shape[1]), dtype=np.float32
    )
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    rows = []

    def timed(label, fn, nbytes):
        fn(queries[:1])  # warm
        t = time.perf_counter()
        singles = [fn(queries[i : i + 1]) for i in range(5)]
        single = (time.perf_counter() - t) / 5
        t = time.perf_counter()
        fn(queries)
        batch = time.perf_counter() - t
        del singles
        rows.append({"method": label, "bytes": nbytes, "single_ms": 1e3 * single, "batch_s": batch, "nq": nq})
        print(f"  speed {label}: one query {1e3 * single:.1f} ms, {nq} queries {batch:.2f} s", flush=True)

    # The byte-table kernel alone (what an index of the spec scans): the row layout ("lut_search" rows)
    # and the nibble codes in the 32-row block layout of the quantized kernel ("lut_search_blocked" rows).
    for cls, layout, kernel in ((AllocatedScaled, "rows", "lut_search"), (AllocatedNibbleScaled, "blocks", "lut_search_blocked")):
        for b in (48, 104, 200):
            codec = cls(budget_bytes=b).fit(docs[:50_000])
            codes, scale = codec.encode(docs), np.ascontiguousarray(codec.row_scale(docs), dtype=np.float32)
            rows_in = _core.to_blocks(codes) if layout == "blocks" else codes
            store = _core.Store(
                [rows_in, np.zeros(0, np.uint8)], np.array([[0, n, 0, 0]], np.uint64), None, [scale, np.zeros(0, np.float32)]
            )
            engine = _core.TableCodec.given(codec.m, layout)
            nbytes = codec.bytes_per_vector
            timed(
                f"qama {codec.name} {b if layout == 'rows' else nbytes}B ({kernel})",
                lambda q, c=codec, e=engine, s=store: e.search(c.query_luts(q), s, 10),
                nbytes,
            )
            del codes, rows_in, store
    for kind, bits, enc in (
        ("tq", "1bit", "Default"),
        ("bq", "1bit", "Scalar8Bits"),
        ("tq", "2bit", "Default"),
        ("tq", "4bit", "Default"),
    ):
        t = time.perf_counter()
        with peers.qdrant_shard(docs, kind, bits, enc) as (search, nbytes):
            print(
                f"  (Qdrant edge {kind} {bits}: 1M points loaded in {time.perf_counter() - t:.0f} s)",
                flush=True,
            )
            name = "TurboQuant" if kind == "tq" else f"BQ query {enc}"
            timed(f"Qdrant edge {name} {bits}", lambda q, s=search: s(q, 10), nbytes)
    for nb in (1, 2, 4):
        index = faiss.IndexRaBitQ(docs.shape[1], faiss.METRIC_INNER_PRODUCT, nb)
        index.train(docs[:50_000])
        index.add(docs)
        for qb in (4, 8):
            params = faiss.RaBitQSearchParameters()
            params.qb = qb
            timed(
                f"faiss IndexRaBitQ {nb}-bit qb={qb}",
                lambda q, i=index, p=params: i.search(q, 10, params=p),
                int(index.code_size),
            )
        del index
    return rows


# ---------------------------------------------------------------------------------------- output
def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    best, out = -1.0, []
    for b, r in sorted(points, key=lambda p: (p[0], -p[1])):
        if r > best:
            out.append((b, r))
            best = r
    return out


def write_outputs(results: dict, command: str) -> None:
    sets = results["datasets"]
    lines = [
        "## Frontier: recall@10 and nDCG@10 per stored byte (no rescoring, then top-40 rescored by float32)",
        "",
        f"`{command}` — {results['date']}, CPU: {results['cpu']}, load average at start {results['load']}.",
        "all-MiniLM-L6-v2 embeddings; every method ranks the whole corpus by its compressed scores; recall@10 vs",
        "the exact float32 top-10; nDCG@10 with linear gains (pytrec_eval/MTEB) [95 % bootstrap CI] and, in the",
        "`exp` column, gains 2^rel − 1 (as in ANCHORS.md; equal on scifact's binary labels). qama-rs codecs are",
        "fitted on the corpus documents only and scored by the Rust engine.",
        "",
    ]
    lines += summary_lines(results) + [""]
    head = (
        "| group | method | bytes | "
        + " | ".join(f"{s} R@10 | {s} nDCG@10 [CI] | {s} nDCG exp" for s in sets)
        + " | mean R@10 | mean nDCG@10 |"
    )
    for key, title in (("plain", "Compressed scores only"), ("rescored", "Top 40 rescored with float32")):
        lines += _section(title, [], head, "|" + "---|" * (3 + 3 * len(sets) + 2))
        for row in sorted(results["rows"], key=lambda r: (r["bytes"], -r["mean"][key]["recall10"])):
            cells = [row["group"], row["method"], str(row["bytes"])]
            for s in sets:
                m = row["sets"][s][key]
                cells += [
                    f"{m['recall10']:.3f}",
                    f"{m['ndcg10']:.4f} [{m['ndcg10_ci'][0]:.3f}, {m['ndcg10_ci'][1]:.3f}]",
                    f"{m['ndcg10_exp']:.4f}",
                ]
            cells += [f"{row['mean'][key]['recall10']:.3f}", f"{row['mean'][key]['ndcg10']:.4f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if results.get("unlabelled"):
        u = results["unlabelled"]
        lines += _section(
            f"A third corpus: wiki-50k ({u['n_docs']:,} documents, {u['n_queries']} other documents as queries; recall@10 only)",
            ["`python benches/bench_frontier.py --from-json --unlabelled` adds it. Not used to design the codecs."],
            "| method | bytes | R@10 |",
            "|---|---:|---:|",
        )
        lines += [
            f"| {r['method']} | {r['bytes']} | {r['recall10']:.3f} |"
            for r in sorted(u["rows"], key=lambda r: (r["bytes"], -r["recall10"]))
        ]
        lines.append("")
    if results.get("speed"):
        sp = results["speed"]
        lines += _section(
            f"Scan speed: 1,000,000 tiled wiki-50k vectors (+ noise), k = 10, load average {results.get('speed_load')}",
            [
                f"`{results.get('speed_command', results.get('command', ''))}`; qama-rs times include building the query's "
                "byte tables in Python; codes and scales are passed read-only (the engine's zero-copy path).",
                "The recall column is the same codec's mean recall@10 on scifact and dbpedia-5k (the quality tables above).",
            ],
            "| method | bytes | one query (ms) | 1,000 queries (s) | mean R@10 |",
            "|---|---:|---:|---:|---:|",
        )
        recall = {r["method"]: r["mean"]["plain"]["recall10"] for r in results["rows"]}

        def quality_label(label: str) -> str:
            label = label.split(" (")[0].replace("Qdrant edge ", "Qdrant ")
            return label.replace("BQ query Scalar8Bits 1bit", "BQ 1bit query Scalar8Bits")

        for r in sp:
            r10 = recall.get(quality_label(r["method"]))
            r10_text = "—" if r10 is None else f"{r10:.3f}"
            lines.append(f"| {r['method']} | {r['bytes']} | {r['single_ms']:.1f} | {r['batch_s']:.2f} | {r10_text} |")
        lines.append("")
    text = "\n".join(lines)
    out = ROOT / "results"
    atomic_write(out / "frontier.md", lambda f: f.write(("# " + text[3:] + "\n").encode()))
    atomic_write(out / "frontier.json", lambda f: f.write(json.dumps(results, indent=1).encode()))
    _plot(results, out / "frontier.png")
    _update_results_md(text)


#: (low, high, recall bar) of the issue's budgets: recall@10 of the best qama-rs codec in the range
#: must reach the bar, and beat the best peer at or below the range's top.
BARS = [
    (12, 12, 0.55),
    (24, 24, 0.68),
    (32, 32, None),
    (48, 48, 0.80),
    (56, 56, None),
    (80, 81, 0.83),
    (96, 104, 0.90),
    (192, 200, 0.97),
]


def summary_lines(results: dict) -> list[str]:
    """Best qama-rs codec vs best peer per budget (mean over the sets, compressed scores only)."""
    rows = results["rows"]
    lines = _section(
        "Best per budget (mean over the sets, no rescoring)",
        [],
        "| bytes | bar R@10 | best qama-rs | R@10 | nDCG@10 | best peer at <= these bytes (by R@10) | R@10 | nDCG@10 | met |",
        "|---|---:|---|---:|---:|---|---:|---:|---|",
    )
    for low, high, bar in BARS:
        ours = [r for r in rows if r["group"] == "qama-rs" and low <= r["bytes"] <= high]
        theirs = [r for r in rows if not r["group"].startswith("qama") and r["bytes"] <= high]
        if not ours:
            continue
        o = max(ours, key=lambda r: r["mean"]["plain"]["recall10"])
        om = o["mean"]["plain"]
        cells = [
            f"{low}" if low == high else f"{low}–{high}",
            "—" if bar is None else f"{bar:.2f}",
            o["method"] + f" ({o['bytes']} B)",
            f"{om['recall10']:.3f}",
            f"{om['ndcg10']:.4f}",
        ]
        met = bar is None or om["recall10"] >= bar
        if theirs:
            t = max(theirs, key=lambda r: r["mean"]["plain"]["recall10"])
            tn = max(r["mean"]["plain"]["ndcg10"] for r in theirs)
            tm = t["mean"]["plain"]
            cells += [
                t["method"] + f" ({t['bytes']} B)",
                f"{tm['recall10']:.3f}",
                f"{tm['ndcg10']:.4f} (best peer nDCG {tn:.4f})",
            ]
            met = met and om["recall10"] >= tm["recall10"]
            note = "yes" if met else "no"
            on = max(r["mean"]["plain"]["ndcg10"] for r in ours)
            note += f"; best qama-rs nDCG here {on:.4f} " + (">=" if on >= tn else "<") + " best peer's"
        else:
            cells += ["—", "", ""]
            note = "yes" if met else "no"
        lines.append("| " + " | ".join(cells + [note]) + " |")
    return lines


def _section(title: str, paragraphs: list[str], head: str, rule: str) -> list[str]:
    """A report section's first lines: ``### title``, each paragraph followed by a blank line, then a
    table's head and rule."""
    return [f"### {title}", ""] + [line for paragraph in paragraphs for line in (paragraph, "")] + [head, rule]


def _update_results_md(text: str) -> None:
    path = ROOT / "benches" / "RESULTS.md"
    begin, end = "<!-- bench_frontier:begin -->", "<!-- bench_frontier:end -->"
    old = path.read_text()
    block = f"{begin}\n{text}\n{end}"
    new = (
        old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
        if begin in old
        else old.rstrip() + "\n\n" + block + "\n"
    )
    atomic_write(path, lambda f: f.write(new.encode()))


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    groups = sorted({r["group"] for r in results["rows"]})
    for g, colour in zip(groups, plt.cm.tab10.colors, strict=False):
        pts = [(r["bytes"], r["mean"]["plain"]["recall10"]) for r in results["rows"] if r["group"] == g]
        ax.scatter(*zip(*pts, strict=True), color=colour, label=g, s=25)
        front = pareto(pts)
        ax.plot(
            *zip(*front, strict=True),
            color=colour,
            lw=1.5 if g == "qama-rs" else 0.8,
            ls="-" if g == "qama-rs" else "--",
        )
    ax.set_xscale("log")
    ax.set_xlabel("bytes per vector (codes + factors + padding)")
    ax.set_ylabel(f"recall@10 vs float32, mean of {', '.join(results['datasets'])}")
    ax.set_title("Compressed scores only (no rescoring), all-MiniLM-L6-v2")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="scifact,dbpedia-5k")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="re-time the 1M scans only; keep the quality rows of results/frontier.json",
    )
    parser.add_argument("--only", default=None, help="substring filter on method labels")
    parser.add_argument(
        "--unlabelled", action="store_true", help="also recall@10 on wiki-50k (documents as queries)"
    )
    parser.add_argument(
        "--from-json", action="store_true", help="rewrite the tables and plot from results/frontier.json"
    )
    args = parser.parse_args(argv)
    if args.speed_only:
        results = json.loads((ROOT / "results" / "frontier.json").read_text())
        results["speed_load"] = " / ".join(f"{v:.1f}" for v in os.getloadavg())
        results["speed"] = speed()
        results["speed_command"] = "python benches/bench_frontier.py --speed-only"
        write_outputs(results, results.get("command", "python benches/bench_frontier.py"))
        return 0
    if args.from_json:
        results = json.loads((ROOT / "results" / "frontier.json").read_text())
        if args.unlabelled:
            results["unlabelled"] = unlabelled_check()
        write_outputs(results, results.get("command", "python benches/bench_frontier.py"))
        return 0
    sets = args.datasets.split(",")
    data = {s: load(s) for s in sets}
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{_cpu()}, {os.cpu_count()} logical cores, engine {_core.cpu_features()}",
        "load": " / ".join(f"{v:.1f}" for v in os.getloadavg()),
        "python": platform.python_version(),
        "datasets": sets,
        "rows": [],
    }
    for group, label, search in method_table(not args.no_peers):
        if args.only and args.only not in label:
            continue
        row = {"group": group, "method": label, "sets": {}}
        t = time.perf_counter()
        for s in sets:
            ids, nbytes = search(data[s]["docs"], data[s]["queries"], K_SEARCH)
            ids = np.asarray(ids, dtype=np.int64)
            row["bytes"] = nbytes
            row["sets"][s] = {
                "plain": evaluate(ids, data[s], False),
                "rescored": evaluate(ids, data[s], True),
            }
        row["mean"] = {
            key: {
                m: float(np.mean([row["sets"][s][key][m] for s in sets]))
                for m in ("recall10", "ndcg10", "ndcg10_exp")
            }
            for key in ("plain", "rescored")
        }
        results["rows"].append(row)
        per = " ".join(
            f"{s} {row['sets'][s]['plain']['recall10']:.3f}/{row['sets'][s]['plain']['ndcg10']:.4f}"
            for s in sets
        )
        print(
            f"{label:45s} {row['bytes']:4d} B  {per}  mean R@10 {row['mean']['plain']['recall10']:.3f}  ({time.perf_counter() - t:.1f} s)",
            flush=True,
        )
    if args.unlabelled:
        results["unlabelled"] = unlabelled_check()
    if args.speed:
        results["speed_load"] = " / ".join(f"{v:.1f}" for v in os.getloadavg())
        results["speed"] = speed()
    if args.only:
        return 0  # a filtered run prints only; the files always hold a whole sweep
    results["command"] = "python benches/bench_frontier.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    write_outputs(results, results["command"])
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
