"""Tables of the documents-only QAMA heads (results/qama_docs_only.{md,json}): every number is a factory
index (Rust engine: symmetric Hamming on thermometer codes, asymmetric kernel, float32 Flat) on the test
queries, NDCG@10 with its bootstrap 95 % CI and recall@10 against the exact float32 top-10.

    qama train --dataset scifact --no-labelled --out runs/doconly-scifact
    qama train --dataset dbpedia-5k --no-labelled --out runs/doconly-dbpedia-5k
    qama train --dataset D --no-labelled --seed S --out runs/doconly-D-seedS     # S = 1, 2: the seed rows
    python train/docs_only_tables.py            # + the shipped pretrained head (train/pretrain.py)

Another base model (no pretrained head for it: those rows are left out; widths scale with the model's):

    qama train --dataset D --no-labelled [--seed S] --model M --out runs/M-name/doconly-D[-seedS]
    python train/docs_only_tables.py --model M --runs runs/M-name --name qama_docs_only_M-name
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lab"))

from qama_rs.engine import atomic_write, cpu_description
from qama_rs.eval.metrics import bootstrap_ci
from qama_rs.eval.runner import evaluate

SCHEMES = {"1bit": "Thermo1", "1.5bit": "Thermo1.5", "2bit": "Thermo2", "hybrid": "Hybrid"}
# Retention of the base float32 NDCG@10 the QAMA paper reports for MiniLM (symmetric Hamming), and our aim.
PAPER = {"1bit": 0.896, "1.5bit": 0.957, "hybrid": 0.971, "2bit": 0.976}
AIM = {"1bit": 0.92, "1.5bit": 0.97, "hybrid": 0.98, "2bit": 0.99}


#: The base model of every row (None: the bundled all-MiniLM-L6-v2); set once by `main` from --model.
MODEL: str | None = None


@functools.cache
def run(dataset: str, spec: str) -> dict:
    """One factory index evaluated on the test queries (cached: the seed-0 head appears in two rows). Callers
    must not modify the returned dict."""
    r = evaluate(dataset, spec, n_resamples=1000, model=MODEL)
    return {k: r[k] for k in ("spec", "dims", "ndcg@10", "ci95", "recall@10", "bytes_per_vector", "per_query")}


def paired_difference(row: dict, baseline: dict) -> dict:
    """NDCG@10 of ``row`` minus ``baseline``'s on the same queries, with a paired bootstrap 95 % CI (queries
    resampled together): whether a gap is more than query noise."""
    diffs = [row["per_query"][q] - baseline["per_query"][q] for q in baseline["per_query"]]
    return {"delta": row["ndcg@10"] - baseline["ndcg@10"], "delta_ci95": bootstrap_ci(diffs, n_resamples=1000)}


def training_seconds(head: Path) -> float:
    """Wall time of the head's training run, as `qama train` recorded it in its config.json."""
    return float(json.loads((head / "config.json").read_text())["training"]["seconds"])


def seed_mean(dataset: str, spec_of, seeds: list[int]) -> dict:
    """One row for the doc-only heads of several rotation seeds: per-query NDCG@10 averaged over the seeds
    (so its bootstrap CI and paired difference are those of the seed-averaged head), mean recall@10, and the
    seeds' NDCG@10 range — a single head's NDCG moves by up to ~.03 with its seed at the same recall."""
    results = [run(dataset, spec_of(seed)) for seed in seeds]
    per_query = {q: sum(r["per_query"][q] for r in results) / len(results) for q in results[0]["per_query"]}
    ndcgs = [r["ndcg@10"] for r in results]
    return {"spec": spec_of(seeds[0]).replace(f"doconly-{dataset}", f"doconly-{dataset}[-seedS]"),
            "dims": results[0]["dims"], "ndcg@10": sum(ndcgs) / len(ndcgs), "per_query": per_query,
            "ci95": bootstrap_ci(per_query, n_resamples=1000), "seed_range": [min(ndcgs), max(ndcgs)],
            "recall@10": sum(r["recall@10"] for r in results) / len(results),
            "bytes_per_vector": results[0]["bytes_per_vector"]}


def head_folder(runs: str, dataset: str, seed: int) -> str:
    """Seed 0 is the head the tables name (``runs/doconly-D``); others ``runs/doconly-D-seedS``."""
    return f"{runs}/doconly-{dataset}" + (f"-seed{seed}" if seed else "")


def stored(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "per_query"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=["scifact", "dbpedia-5k"])
    parser.add_argument("--runs", default="runs", help="folder holding doconly-<dataset> heads")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--model", help="base model folder (default: the bundled all-MiniLM-L6-v2, with the "
                        "pretrained head's rows)")
    parser.add_argument("--name", default="qama_docs_only", help="file name of the tables under --out")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="rotation seeds of the doc-only heads averaged in the 'mean of seeds' rows "
                        "(qama train --seed S --out runs/doconly-D-seedS)")
    args = parser.parse_args()
    global MODEL
    MODEL = args.model
    seeds = sorted(set(args.seeds) | {0})
    span = f"mean of seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else "seed 0"
    heads = {ds: f"{args.runs}/doconly-{ds}" for ds in args.datasets}
    # The pretrained head is MiniLM's; widths are the model's full width and its 1/2, 1/4, 1/8.
    sources = (("pretrained head", "pretrained"),) if MODEL is None else ()
    rows: dict[str, list[dict]] = {}
    for ds in args.datasets:
        base = run(ds, "Flat")
        width = base["dims"]
        sources_of = (("doc-only head", heads[ds]), *sources)
        out = rows.setdefault(ds, [])
        out.append({"group": "float", "name": "base float32", **stored(base)})
        for level in (width, width // 2, width // 4, width // 8):
            out.append({"group": "float", "name": "plain truncation", **stored(run(ds, f"Prefix{level},Flat")), "dims": level})
            for label, source in sources_of:
                label = f"{label} ({ds})" if source == heads[ds] else f"{label} (wiki-50k)"
                out.append({"group": "float", "name": label, **stored(run(ds, f"QAMA({source},{level}),Flat")), "dims": level})
        for bits, peer in ((1, "Binary"), (2, "LloydMax2")):
            entries = [(f"training-free {peer}, float query", run(ds, peer))]
            for label, source in sources_of:
                entries.append((f"{label}, learned codes, float query", run(ds, f"QAMA({source}),QamaAsym{bits}")))
            if len(seeds) > 1:
                entries.insert(2, (f"doc-only head, {span}, learned codes, float query", seed_mean(
                    ds, lambda s, b=bits, d=ds: f"QAMA({head_folder(args.runs, d, s)}),QamaAsym{b}", seeds)))
            for label, r in entries:
                out.append({"group": "asymmetric", "scheme": f"{bits}bit", "name": label,
                            "retention": r["ndcg@10"] / base["ndcg@10"], **stored(r),
                            **paired_difference(r, entries[0][1])})
        for dims in (width, width // 4):
            for scheme, codec in SCHEMES.items():
                prefix = "" if dims == width else f"Prefix{dims},"
                untrained = run(ds, f"{prefix}{codec}")
                entries = [("untrained quantile", untrained)]
                level = "" if dims == width else f",{dims}"
                for label, source in sources_of:
                    entries.append((label, run(ds, f"QAMA({source}{level}),{codec}")))
                if len(seeds) > 1:
                    entries.insert(2, (f"doc-only head, {span}", seed_mean(
                        ds, lambda s, lv=level, c=codec, d=ds: f"QAMA({head_folder(args.runs, d, s)}{lv}),{c}", seeds)))
                for other in args.datasets:
                    if other != ds and dims == width:
                        entries.append((f"transfer: doc-only head of {other}", run(ds, f"QAMA({heads[other]}),{codec}")))
                for label, r in entries:
                    out.append({"group": f"hamming-{dims}", "scheme": scheme, "name": label,
                                "retention": r["ndcg@10"] / base["ndcg@10"], **stored(r), "dims": dims,
                                **paired_difference(r, untrained)})
                print(ds, dims, scheme, [(label, round(r["ndcg@10"], 4), r["recall@10"]) for label, r in entries], flush=True)
    from qama_rs.qama.model import PRETRAINED_DEFAULT, PRETRAINED_ROOT

    seconds = {ds: training_seconds(Path(head)) for ds, head in heads.items()}
    if sources:
        seconds["pretrained"] = training_seconds(PRETRAINED_ROOT / PRETRAINED_DEFAULT)
    command = " ".join(["python train/docs_only_tables.py", *sys.argv[1:]])
    document = {"command": command, "cpu": cpu_description(), "rows": rows, "training_seconds": seconds,
                "model": MODEL or "all-MiniLM-L6-v2 (bundled)"}
    atomic_write(args.out / f"{args.name}.json", lambda f: f.write(json.dumps(document, indent=1).encode()))
    atomic_write(args.out / f"{args.name}.md", lambda f: f.write(markdown(document).encode()))


def markdown(document: dict) -> str:
    pretrained = "pretrained" in document["training_seconds"]
    heads = ("`qama train --dataset D --no-labelled --out runs/doconly-D`; pretrained: `python train/pretrain.py`"
             if pretrained else "`qama train --dataset D --no-labelled --model M [--seed S] --out RUNS/doconly-D[-seedS]`")
    lines = ["# QAMA without labels: documents-only" + (" and pretrained heads" if pretrained else " heads"), "",
             f"Command: `{document['command']}` (heads: {heads}). CPU: " + document["cpu"] + ".", "",
             "NDCG@10 [bootstrap 95 % CI] / recall@10 against the exact float32 top-10; bytes = stored bytes per "
             "vector. Symmetric Hamming (Rust engine) on thermometer codes; the untrained baseline is per-dimension "
             "quantile codes of the same bytes on the raw (or plainly truncated) embedding. Δ = NDCG@10 minus the first "
             "row of its group (the untrained codes, or the training-free float-query codec) on the same queries, "
             "[paired bootstrap 95 % CI]: a CI that holds 0 is a tie within query noise. The pretrained head's "
             "code rotation and thresholds are refitted on the indexed documents when the index is built.", "",
             f"Base model: {document.get('model', 'all-MiniLM-L6-v2 (bundled)')}.", "",
             "Training time on 2 cores, as each run recorded it in its config.json: " + ", ".join(
                 f"documents-only head of {ds} {sec:.0f} s" for ds, sec in document["training_seconds"].items()
                 if ds != "pretrained") + (f"; the pretrained head (wiki-50k, `python train/pretrain.py`) "
             f"{document['training_seconds']['pretrained']:.0f} s, once." if pretrained
             else "; no pretrained head exists for this model."), ""]
    for ds, rows in document["rows"].items():
        base = rows[0]["ndcg@10"]
        lines += [f"## {ds} (base float32 {base:.4f})", "", "| codes (symmetric Hamming unless 'float query') | scheme | dims | spec | bytes | NDCG@10 | % of float32 | Δ NDCG@10 | recall@10 |",
                  "|---|---|---:|---|---:|---:|---:|---:|---:|"]
        for r in rows:
            if r["group"] == "float":
                continue
            lo, hi = r["ci95"]
            dlo, dhi = r["delta_ci95"]
            delta = "—" if r["delta"] == 0 and dlo == dhi == 0 else f"{r['delta']:+.4f} [{dlo:+.3f}, {dhi:+.3f}]"
            name = r["name"] + (" (seeds {:.4f}–{:.4f})".format(*r["seed_range"]) if "seed_range" in r else "")
            lines.append(f"| {name} | {r['scheme']} | {r['dims']} | `{r['spec']}` | {r['bytes_per_vector']:g} | "
                         f"{r['ndcg@10']:.4f} [{lo:.3f}, {hi:.3f}] | {100 * r['retention']:.1f} % | {delta} | "
                         f"{r['recall@10']:.3f} |")
        lines += ["", "Paper retention (all-MiniLM-L12-v2, mean of 5 BEIR tasks, symmetric Hamming): " + ", ".join(
            f"{s} {100 * v:.1f} %" for s, v in PAPER.items()) + ".", "",
            "| float output | dims | spec | NDCG@10 | recall@10 |", "|---|---:|---|---:|---:|"]
        for r in rows:
            if r["group"] == "float":
                lo, hi = r["ci95"]
                lines.append(f"| {r['name']} | {r['dims']} | `{r['spec']}` | {r['ndcg@10']:.4f} [{lo:.3f}, {hi:.3f}] | {r['recall@10']:.3f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
