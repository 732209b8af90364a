"""Research diagnostics behind ``qama diagnose``: why a quantizer works or not on a given embedding.

Per-dimension shape (kurtosis, skewness), how far the corpus median sits from zero (``‖m‖²/d``: sign
binarization assumes it is ~0), inter-dimension correlation, how much variance a Matryoshka prefix keeps
(raw prefix vs PCA), and per training-free method: relative score distortion against the Gaussian
rate-distortion bound ``D(R) = 2^(-2R)`` and Kendall τ between quantized and float32 scores.
Calibration uses documents only; queries only probe the scores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

#: Training-free quantizer (its row label) -> the factory spec that builds and scores it.
DEFAULT_METHODS = {
    "binary": "Binary",
    "binary_median": "BinaryMedian",
    "lloyd_max_gauss": "LloydMax2",
    "quaternary": "Quaternary",
    "lloyd_max_4bit": "LloydMax4",
    "int8": "Int8",
}
PREFIX_DIMS = (48, 96, 128, 192, 384)


def _matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D array with at least 2 rows, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be floating point, got {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x.astype(np.float64)


def embedding_stats(docs, prefix_dims=PREFIX_DIMS) -> dict:
    """Shape statistics of document embeddings ``(n, d)``."""
    from scipy import stats

    x = _matrix(docs, "docs")
    d = x.shape[1]
    median = np.median(x, axis=0)
    corr = np.corrcoef(x, rowvar=False)
    off_diagonal = np.abs(corr[~np.eye(d, dtype=bool)]) if d > 1 else np.zeros(1)
    centred = x - x.mean(axis=0)
    eigen = np.clip(np.linalg.eigvalsh(centred.T @ centred / len(x))[::-1], 0, None)
    total = eigen.sum()
    dim_var = centred.var(axis=0)
    prefixes = [m for m in prefix_dims if m <= d]
    kurtosis = stats.kurtosis(x, axis=0, fisher=True)
    skewness = stats.skew(x, axis=0)
    return {
        "n": int(x.shape[0]),
        "dims": int(d),
        "kurtosis_excess": {"mean": float(kurtosis.mean()), "max": float(kurtosis.max())},
        "skewness_abs": {"mean": float(np.abs(skewness).mean()), "max": float(np.abs(skewness).max())},
        "median_offset": float(median @ median / d),
        "mean_abs_correlation": float(off_diagonal.mean()),
        "variance_kept": {
            str(m): {"prefix": float(dim_var[:m].sum() / dim_var.sum()), "pca": float(eigen[:m].sum() / total)}
            for m in prefixes
        },
        "_kurtosis": kurtosis.tolist(),
        "_pca_curve": (np.cumsum(eigen) / total).tolist(),
    }


def method_distortion(docs, queries, methods=DEFAULT_METHODS, n_queries: int = 100, seed: int = 0) -> list[dict]:
    """``methods`` maps a training-free quantizer's label to the factory spec that builds and scores it
    (see :data:`DEFAULT_METHODS`). For each method: bits/dim, relative score MSE ``E[(s − a·ŝ)²] / Var(s)`` over sampled queries × all
    documents (scores centred per query, ``a`` the best single scale), the Gaussian rate-distortion value
    ``2^(-2R)`` at the same rate, and the mean Kendall τ per query.

    ``2^(-2R)`` bounds the per-dimension MSE of independent unit Gaussians; it is a reference, not a bound, for
    scores of real embeddings, whose correlated dimensions can do better."""
    from scipy import stats

    from qama_rs.index import index_factory

    x = _matrix(docs, "docs").astype(np.float32)
    q = _matrix(queries, "queries").astype(np.float32)
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} dims, docs {x.shape[1]}")
    rng = np.random.default_rng(seed)
    q = q[rng.choice(len(q), size=min(n_queries, len(q)), replace=False)]
    exact = q @ x.T
    exact = exact - exact.mean(axis=1, keepdims=True)
    rows = []
    for name, spec in dict(methods).items():
        # The engine's scores of every document (asymmetric, through the factory index), in row order.
        index = index_factory(x.shape[1], spec)
        index.train(x)
        index.add(x)
        top_scores, order = index.search(q, len(x))
        approx = np.empty_like(exact)
        np.put_along_axis(approx, order, top_scores, axis=1)
        # Only differences between one query's scores matter for ranking: centre each query's scores (a
        # centred query, as binary_median uses, shifts them by a constant), and fit one scale per method
        # (standardized codes score on another scale).
        approx = approx - approx.mean(axis=1, keepdims=True)
        scale = float((approx * exact).sum() / max((approx * approx).sum(), 1e-30))
        error = exact - scale * approx
        taus = [stats.kendalltau(exact[i], approx[i]).statistic for i in range(len(q))]
        rate = _bits_per_dim(index)
        rows.append({
            "method": name,
            "bits_per_dim": rate,
            "relative_score_mse": float((error**2).mean() / exact.var()),
            "gaussian_bound": float(2.0 ** (-2.0 * rate)),
            "kendall_tau": float(np.mean(taus)),
        })
    return rows


def _bits_per_dim(index) -> float:
    """The rate of a trained index's codec per input dimension: the fitted training-free quantizer's own
    (a rotation's padding counts), else the stored bits over the dimensions."""
    impl = getattr(index.codec, "impl", None)
    if hasattr(impl, "bits_per_dim"):
        return float(impl.bits_per_dim) * impl.input_dim / index.dims
    return 8.0 * index.bytes_per_vector / index.dims


def diagnose(dataset="scifact", out_dir: str | os.PathLike[str] = "results", model=None, command: str | None = None) -> dict:
    """Embed (cached) ``dataset``, compute every diagnostic, write ``diagnostics.{json,md,png}``."""
    from qama_rs.data.beir import load_beir
    from qama_rs.data.embed import dataset_embeddings

    data = load_beir(dataset, split="test")
    emb = dataset_embeddings(data, model)
    stats = embedding_stats(emb.docs)
    rows = method_distortion(emb.docs, emb.queries)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"dataset": data.name, "command": command, "embedding": stats, "methods": rows}
    _write_text(out / "diagnostics.json", json.dumps(payload, indent=1) + "\n")
    lines = [
        f"# Diagnostics: {data.name} ({stats['n']} documents, {stats['dims']} dims)",
        "",
        f"- excess kurtosis per dim: mean {stats['kurtosis_excess']['mean']:.3f}, max {stats['kurtosis_excess']['max']:.3f}",
        f"- |skewness| per dim: mean {stats['skewness_abs']['mean']:.3f}, max {stats['skewness_abs']['max']:.3f}",
        f"- median offset ‖m‖²/d: {stats['median_offset']:.3e}",
        f"- mean |correlation| between dims: {stats['mean_abs_correlation']:.3f}",
        "",
        "| prefix dims | variance kept (raw prefix) | variance kept (PCA) |",
        "|---:|---:|---:|",
    ]
    for m, kept in stats["variance_kept"].items():
        lines.append(f"| {m} | {kept['prefix']:.3f} | {kept['pca']:.3f} |")
    lines += [
        "",
        "| method | bits/dim | relative score MSE (centred per query) | Gaussian D(R) = 2^(-2R), iid reference | Kendall τ vs float32 |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['bits_per_dim']:g} | {r['relative_score_mse']:.4f} | {r['gaussian_bound']:.4f} "
            f"| {r['kendall_tau']:.4f} |"
        )
    if command:
        lines += ["", f"Reproduce: `{command}`"]
    _write_text(out / "diagnostics.md", "\n".join(lines) + "\n")
    _plot(stats, out / "diagnostics.png")
    return payload


def _write_text(path: Path, text: str) -> None:
    from qama_rs.engine.quantizer import atomic_write

    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _plot(stats: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.hist(stats["_kurtosis"], bins=40)
    left.set_xlabel("excess kurtosis per dimension")
    left.set_ylabel("dimensions")
    curve = stats["_pca_curve"]
    right.plot(range(1, len(curve) + 1), curve, label="PCA")
    kept = stats["variance_kept"]
    right.plot([int(m) for m in kept], [v["prefix"] for v in kept.values()], "o-", label="raw prefix")
    right.set_xlabel("dimensions kept")
    right.set_ylabel("fraction of variance")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
