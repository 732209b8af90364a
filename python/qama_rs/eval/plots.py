"""Pareto plot: NDCG@10 against bytes per vector, one line per method across Matryoshka prefixes."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

__all__ = ["pareto_plot"]


def pareto_plot(payload: dict, path: str | os.PathLike[str]) -> Path:
    """Write a PNG of mean NDCG@10 (over the payload's datasets) vs bytes/vector, log-scaled x axis.

    ``payload`` is the dict :func:`qama_rs.eval.tables.build_tables` returns (``tables.json``). Points on
    the upper-left frontier are the best quality per byte; the frontier itself is drawn in grey.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    series: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    labels: dict[str, str] = {}
    for table in ("training_free", "main"):
        grid = payload["tables"][table]
        for column in grid["columns"]:
            labels[column["key"]] = column["label"]
        for row in grid["rows"]:
            for key, cell in row["cells"].items():
                if (
                    cell is not None
                    and (cell["bytes_per_vector"], cell["ndcg@10"], row["dims"]) not in series[key]
                ):
                    series[key].append((cell["bytes_per_vector"], cell["ndcg@10"], row["dims"]))
    if not series:
        raise ValueError("payload holds no results to plot")

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=130)
    everything = []
    # Up to 20 distinguishable colours; trained (QAMA) series solid with circles, the rest dashed with squares.
    colours = plt.get_cmap("tab20").colors
    for i, (key, points) in enumerate(sorted(series.items())):
        points.sort()
        xs, ys, _ = zip(*points, strict=True)
        trained = key.startswith("qama")
        ax.plot(
            xs, ys, color=colours[i % len(colours)], marker="o" if trained else "s", markersize=4,
            linewidth=1.6 if trained else 1.1, linestyle="-" if trained else "--", label=labels.get(key, key),
        )
        everything.extend(points)
    # Frontier: points no cheaper-or-equal point beats.
    frontier, best = [], -1.0
    for x, y, _ in sorted(everything, key=lambda p: (p[0], -p[1])):
        if y > best:
            frontier.append((x, y))
            best = y
    fx, fy = zip(*frontier, strict=True)
    ax.step(fx, fy, where="post", color="grey", alpha=0.4, linewidth=3, zorder=0, label="Pareto frontier")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("bytes per vector (log scale)")
    ax.set_ylabel("NDCG@10 (mean over " + ", ".join(payload["datasets"]) + ")")
    ax.set_title("Quality vs storage across Matryoshka prefixes " + "/".join(str(d) for d in payload["dims"]))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
