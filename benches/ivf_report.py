"""The report of ``bench_ivf.py``: the speed bar (qama-rs beside faiss IVF-FastScan at no more bytes and no
less recall), the RESULTS.md section, the best point per memory budget, the QPS-recall plot, and the
writing of results/ivf.json, results/ivf.png and the bench_ivf section of benches/RESULTS.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ivf_common import JITTER_NOTE, ROOT, K
from qama_rs.engine import atomic_write

BAR = 1.5  # the speed bar: qama-rs QPS / faiss IVF-FastScan QPS at no more memory and no less recall
PARTITION_RECALL = 0.01  # the partition bar: recall within this of the flat scan of the same codes,
PARTITION_SPEEDUP = 5.0  # at this many times its QPS
MARKERS = ("<!-- bench_ivf:start -->", "<!-- bench_ivf:end -->")


# ---------------------------------------------------------------------------------------------- summary
def fastscan(p: dict) -> bool:
    return p["library"] == "faiss" and p.get("kind") in ("fastscan", "refine")


def bar_rows(points: list[dict], mode: str) -> list[dict]:
    """Each faiss IVF-FastScan point with recall >= 0.5 beside the fastest qama-rs point (in ``mode``) with no
    more bytes per vector and at least its recall."""
    ours = [p for p in points if p["library"] == "qama-rs"]
    rows = []
    for f in sorted((p for p in points if fastscan(p) and p["recall10"] >= 0.5), key=lambda p: (p["bytes_per_vector"], p["recall10"])):
        cands = [p for p in ours if p["bytes_per_vector"] <= f["bytes_per_vector"] and p["recall10"] >= f["recall10"]]
        best = max(cands, key=lambda p: p[f"{mode}_qps"]) if cands else None
        rows.append({"faiss": f, "qama": best, "ratio": best[f"{mode}_qps"] / f[f"{mode}_qps"] if best else None})
    return rows


def _params(p: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in p["params"].items()) or "flat"


def _qps(x: float) -> str:
    return f"{x:,.0f}"


def section(results: dict) -> str:
    pts = results["points"]
    d = results["data"]
    lines = [
        "## Sub-linear search: qama-rs IVF beside faiss IVF-FastScan, ScaNN, SVS, usearch and Qdrant (issue #20)",
        "",
        f"`{results['command']}` — {results['date']}, {results['runtime_min']:.0f} min",
        "",
        f"- CPU: {results['cpu']}",
        f"- load average (1/5/15 min) at start {results['load_start']}, at end {results['load_end']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        f"- data: {d['description']}; k = {K}; recall@10 against the exact float32 inner-product top-10",
        "- one query at a time: a loop of single-query calls (faiss 1 OpenMP thread; ScaNN, usearch and SVS Vamana one "
        "thread; qama-rs on its 2-thread pool: a query alone runs on the calling thread, joined by a pool thread when "
        "one is free; faiss with 2 OpenMP threads is no faster one query at a time: thread checks below); batch: all "
        "queries in one call, 2 threads",
        "- bytes/vector all-in: qama-rs `Index.memory_bytes / ntotal` (codes, factors, list labels, ids, centroids, "
        "refinement store, spare capacity); faiss `serialize_index` (codes in 32-row blocks, 8-byte ids, centroids, "
        "codebooks, links, refinement store); usearch `serialized_length`; SVS saved files; ScaNN and Qdrant computed "
        "from their layouts (the JSON says how, per point)",
    ]
    if "quiet_s" in results:
        lines.append(
            f"- each point is timed after one warm call and {results['quiet_s']} s idle: NumPy's OpenBLAS threads spin "
            "for ~0.1 s after a product (a build's training), and took a core from the first batch timed after a build"
        )
    if "grids" in results:
        g = results["grids"]
        lines.append(
            f"- grids: nlist {g['nlist']}; nprobe {g['nprobe']} for every IVF library, and for qama-rs also the points "
            f"between ({g['nprobe_qama']}: its curve sampled densely, as `Index.tune` picks any nprobe); the bar "
            "compares each faiss point with the best qama-rs point at no more bytes and no less recall"
        )
    if d.get("jittered"):
        lines.append(f"- **{JITTER_NOTE}**: recall on tiled near-duplicates is not a quality figure")
    for note in results.get("notes", []):
        lines.append(f"- note: {note}")
    lines.append("")
    for mode, title in (("single", "one query at a time"), ("batch", f"batch of {d['n_queries']:,} queries, 2 threads")):
        rows = bar_rows(pts, mode)
        matched = [r for r in rows if r["ratio"] is not None]
        met = [r for r in matched if r["ratio"] >= BAR]
        ratios = sorted(r["ratio"] for r in matched)
        med = f"{ratios[len(ratios) // 2]:.2f}x" if ratios else "—"
        lines += [
            f"### The bar, {title}: qama-rs QPS / faiss IVF-FastScan QPS at no more bytes and no less recall",
            "",
            f"{len(rows)} faiss IVF-FastScan points (`IVF…,PQ{{m}}x4fs` with and without `Refine(SQ8)`, "
            f"`IVF…,RaBitQfs{{b}}`) with recall@10 ≥ 0.5; a qama-rs point qualifies for {len(matched)}; ratio ≥ {BAR}x "
            f"for {len(met)}; median ratio {med}.",
            "",
            *paired_summary(results.get("paired_bar", {}).get(mode)),
            "| faiss point | params | B/vec | R@10 | QPS | best qama-rs point (≤ B/vec, ≥ R@10) | params | B/vec | R@10 | QPS | ratio |",
            "|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
        ]
        for r in rows:
            f, o = r["faiss"], r["qama"]
            cells = [f"`{f['config']}`", _params(f), f"{f['bytes_per_vector']:.1f}", f"{f['recall10']:.3f}", _qps(f[f"{mode}_qps"])]
            if o is None:
                cells += ["none", "", "", "", "", "—"]
            else:
                cells += [f"`{o['config']}`", _params(o), f"{o['bytes_per_vector']:.1f}", f"{o['recall10']:.3f}",
                          _qps(o[f"{mode}_qps"]), f"**{r['ratio']:.2f}x**" if r["ratio"] >= BAR else f"{r['ratio']:.2f}x"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += partition_bar(pts)
    libs = sorted({p["library"] for p in pts}, key=lambda s: (s != "qama-rs", s))
    lines += [
        "### Fastest point of each library at recall@10 ≥ R within B bytes/vector all-in (one-query QPS / batch QPS)",
        "",
        "| B/vec ≤ | R@10 ≥ | " + " | ".join(libs) + " |",
        "|---:|---:|" + "---|" * len(libs),
    ]
    for budget in (48, 64, 128, 256, 1024, math.inf):
        for target in (0.7, 0.8, 0.9):
            cells = []
            for lib in libs:
                ok = [p for p in pts if p["library"] == lib and p["bytes_per_vector"] <= budget and p["recall10"] >= target]
                if not ok:
                    cells.append("—")
                    continue
                s = max(ok, key=lambda p: p["single_qps"])
                b = max(ok, key=lambda p: p["batch_qps"])
                cells.append(f"{_qps(s['single_qps'])} / {_qps(b['batch_qps'])}")
            lines.append(f"| {'any' if budget == math.inf else budget} | {target} | " + " | ".join(cells) + " |")
    lines += ["", "Each cell's configs are in `results/ivf.json` (`best_per_budget`).", ""]
    if results.get("filtered"):
        lines += [
            "### Filtered search: `search(xq, 10, allowed=...)` (random allowed subsets, seeded)",
            "",
            "recall@10 against the exact top-10 of the allowed rows; '10 results' = share of queries given 10 ids.",
            "",
            "| library | index | allowed | form | nprobe | R@10 | 10 results | one-query QPS | batch QPS |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in results["filtered"]:
            lines.append(
                f"| {r['library']} | `{r['config']}` | {r['selectivity']} | {r['allowed_form']} | {r['nprobe'] or '—'} | "
                f"{r['recall10']:.3f} | {r['full_k_fraction']:.3f} | {_qps(r['single_qps'])} | {_qps(r['batch_qps'])} |"
            )
        lines.append("")
        lines += filter_costs(pts, results["filtered"])
    checks = results.get("thread_checks", {})
    if checks:
        lines += ["### Thread checks (one query at a time)", ""]
        fq = checks.get("faiss", {})
        if "single_qps_1_threads" in fq:
            lines.append(
                f"- faiss `{fq['spec']}`: one-query QPS by nprobe with 1 / 2 OpenMP threads: "
                + "; ".join(f"{p}: {_qps(a)} / {_qps(fq['single_qps_2_threads'][p])}" for p, a in fq["single_qps_1_threads"].items())
            )
        qq = checks.get("qama", {})
        if "single_qps_1_thread" in qq:
            two = {p["params"].get("nprobe"): p["single_qps"] for p in pts if p["config"] == qq["spec"]}
            lines.append(
                f"- qama-rs `{qq['spec']}`: one-query QPS by nprobe with `RAYON_NUM_THREADS=1` (a child process) / the "
                "2-thread pool (main rows): "
                + "; ".join(f"{p}: {_qps(v)} / {_qps(two.get(int(p), float('nan')))}" for p, v in qq["single_qps_1_thread"].items())
            )
        elif qq:
            lines.append(f"- qama-rs thread check failed: {qq.get('error', '')[-200:]}")
        lines.append("")
    lines.append("Plot: `results/ivf.png` (QPS against recall@10, log QPS; one panel per mode).")
    return "\n".join(lines)


def partition_bar(pts: list[dict]) -> list[str]:
    """The partition bar: each qama-rs IVF point within ``PARTITION_RECALL`` of the flat scan of the same codes,
    with its QPS over the flat scan's (one query at a time / batch)."""
    ours = [p for p in pts if p["library"] == "qama-rs"]
    flats = {p["config"]: p for p in ours if not p["params"]}
    lines = [
        f"### The partition bar: recall within {PARTITION_RECALL} of the flat scan of the same codes, at ≥ "
        f"{PARTITION_SPEEDUP:g}x its QPS",
        "",
        "| codes | flat R@10 | flat QPS (one query / batch) | partition | nprobe | R@10 | one query | batch |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for config, flat in flats.items():
        close = [p for p in ours if p["params"] and p["config"].split(",", 1)[-1] == config
                 and p["recall10"] >= flat["recall10"] - PARTITION_RECALL]  # fmt: skip
        for p in sorted(close, key=lambda p: -p["single_qps"])[:3]:
            ratio = [p[f"{m}_qps"] / flat[f"{m}_qps"] for m in ("single", "batch")]
            cells = [f"**{r:.2f}x**" if r >= PARTITION_SPEEDUP else f"{r:.2f}x" for r in ratio]
            lines.append(
                f"| `{config}` | {flat['recall10']:.3f} | {_qps(flat['single_qps'])} / {_qps(flat['batch_qps'])} | "
                f"`{p['config'].split(',', 1)[0]}` | {p['params'].get('nprobe')} | {p['recall10']:.3f} | {cells[0]} | {cells[1]} |"
            )
    return [*lines, ""]


def paired_summary(pairs: list[dict] | None) -> list[str]:
    """The bar's pairs timed again alternately in one sitting (``paired_bar`` in bench_ivf), in a line."""
    if not pairs:
        return []
    ratios = sorted(p["ratio"] for p in pairs)
    met = sum(r >= BAR for r in ratios)
    return [
        f"Timed again in one sitting, each faiss point and its qama-rs match in turn (3 rounds, the order swapped "
        f"each round; the median ratio): ratio ≥ {BAR}x for {met} of {len(pairs)}; median ratio "
        f"{ratios[len(ratios) // 2]:.2f}x. Each pair's ratios are in `results/ivf.json` (`paired_bar`).",
        "",
    ]


def filter_costs(pts: list[dict], filtered: list[dict]) -> list[str]:
    """Each prepared qama-rs filter's cost against the unfiltered search of the same index and nprobe (below 1:
    the filtered search is cheaper): the median ratio of the two timed alternately (``paired_cost``), and the
    ratio of the two points' QPS, which were timed minutes apart."""
    plain = {(p["config"], p["params"].get("nprobe")): p for p in pts if p["library"] == "qama-rs"}
    lines = [
        "Cost of a prepared filter (`Allowed`) against the unfiltered search of the same index and nprobe "
        "(below 1: the filtered search is cheaper). *Alternated*: filtered / unfiltered time, the two searches "
        "alternated 7 times in one sitting (300 queries one at a time, all queries in one batch), the median "
        "ratio; this is the bar's measure. *Separate points*: unfiltered QPS / filtered QPS of the two rows above, "
        "timed minutes apart.",
        "",
        "| index | allowed | nprobe | alternated: one query | alternated: batch | separate points: one query | separate points: batch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in filtered:
        u = plain.get((r["config"], r["nprobe"]))
        if r["library"] != "qama-rs" or r["allowed_form"] != "prepared" or u is None:
            continue
        c = r.get("paired_cost")
        paired = "— | —" if c is None else f"{c['single']:.2f}x | {c['batch']:.2f}x"
        lines.append(
            f"| `{r['config']}` | {r['selectivity']} | {r['nprobe'] or '—'} | {paired} | "
            f"{u['single_qps'] / r['single_qps']:.2f}x | {u['batch_qps'] / r['batch_qps']:.2f}x |"
        )
    return [*lines, ""]


def best_per_budget(pts: list[dict]) -> list[dict]:
    out = []
    for budget in (48, 64, 128, 256, 1024, None):
        for target in (0.7, 0.8, 0.9):
            for lib in sorted({p["library"] for p in pts}):
                ok = [p for p in pts if p["library"] == lib and (budget is None or p["bytes_per_vector"] <= budget)
                      and p["recall10"] >= target]  # fmt: skip
                if ok:
                    s, b = max(ok, key=lambda p: p["single_qps"]), max(ok, key=lambda p: p["batch_qps"])
                    out.append({"budget": budget, "recall": target, "library": lib,
                                "single": [s["config"], s["params"], s["single_qps"]],
                                "batch": [b["config"], b["params"], b["batch_qps"]]})  # fmt: skip
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = results["points"]
    libs = sorted({p["library"] for p in pts}, key=lambda s: (s != "qama-rs", s))
    colours = dict(zip(libs, plt.cm.tab10.colors, strict=False))
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5), sharey=False)
    for ax, (mode, title) in zip(axes, (("single", "one query at a time"), ("batch", "batch, 2 threads")), strict=True):
        for lib in libs:
            for config in sorted({p["config"] for p in pts if p["library"] == lib}):
                curve = sorted((p for p in pts if p["library"] == lib and p["config"] == config), key=lambda p: p["recall10"])
                groups: dict = {}
                for p in curve:  # one line per fixed secondary parameter (k_factor, rescore depth)
                    groups.setdefault(p["params"].get("k_factor"), []).append(p)
                for g in groups.values():
                    ax.plot([p["recall10"] for p in g], [p[f"{mode}_qps"] for p in g], marker=".", ms=4,
                            lw=1.6 if lib == "qama-rs" else 0.8, ls="-" if lib == "qama-rs" else "--",
                            color=colours[lib], alpha=0.85)  # fmt: skip
        for lib in libs:
            ax.plot([], [], color=colours[lib], label=lib)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10 vs exact float32 top-10")
        ax.set_ylabel("queries per second")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    note = f" — {JITTER_NOTE}" if results["data"].get("jittered") else ""
    fig.suptitle(f"{results['data']['description'][:110]}{note}", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def update_results_md(text: str) -> None:
    path = ROOT / "benches" / "RESULTS.md"
    begin, end = MARKERS
    old = path.read_text()
    block = f"{begin}\n{text}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    atomic_write(path, lambda f: f.write(new.encode()))


def write_outputs(results: dict) -> None:
    out = ROOT / "results"
    results["best_per_budget"] = best_per_budget(results["points"])
    atomic_write(out / "ivf.json", lambda f: f.write(json.dumps(results, indent=1, default=_json).encode()))
    plot(results, out / "ivf.png")
    update_results_md(section(results))


def _json(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")
