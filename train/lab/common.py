"""Shared pieces of the documents-only experiments (train/lab): the probes' command line, data, symmetric Hamming
scoring through the Rust engine, NDCG@10 and recall@10 against the exact float32 top-10, the PCA frame with the
label-free validation split, and crops of the documents (inverse-cloze pseudo-queries)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import qama_rs
from qama_rs.data.beir import load_beir, resolve_dataset
from qama_rs.data.embed import dataset_embeddings
from qama_rs.eval.metrics import ndcg_at_10, run_from_topk

SCHEMES = ("1bit", "1.5bit", "2bit", "hybrid")

# The lab's recorded numbers (train/README.md) were measured with ITQ fitted to Gaussian Lloyd-Max cells, the
# default before round 4; the shipped default is "quantile" (probe_rotation.py --cells compares the two).
LAB_CELLS = "lloyd_max"


def listed(kind=str, choices=None):
    """An argparse type: a comma-separated list of ``kind`` values (each one of ``choices`` when given)."""

    def parse(text: str) -> tuple:
        values = tuple(kind(v) for v in text.split(","))
        wrong = [v for v in values if choices is not None and v not in choices]
        if wrong:
            raise argparse.ArgumentTypeError(f"{wrong[0]!r} is not one of {', '.join(map(str, choices))}")
        return values

    return parse


def cli(doc: str, schemes: tuple[str, ...] | None = SCHEMES) -> argparse.ArgumentParser:
    """A probe's command line: the dataset names, ``--schemes`` (default ``schemes``; none when ``None``);
    the probe adds its own flags."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="BEIR datasets to measure on, e.g. scifact dbpedia-5k")
    if schemes is not None:
        parser.add_argument("--schemes", type=listed(choices=SCHEMES), default=schemes,
                            help=f"comma-separated schemes (default {','.join(schemes)})")
    return parser


class Bench:
    """One dataset's test queries, documents, qrels and exact float32 top-10."""

    def __init__(self, name: str):
        ds = load_beir(resolve_dataset(name), split="test")
        emb = dataset_embeddings(ds, progress=False)
        self.name = name
        self.ds = ds
        keep = [i for i, q in enumerate(emb.query_ids) if q in ds.qrels]
        self.query_ids = [emb.query_ids[i] for i in keep]
        self.queries = emb.queries[keep]
        self.docs = emb.docs
        self.doc_ids = emb.doc_ids
        self.qrels = ds.qrels
        self.float_top = np.argsort(-(self.queries @ self.docs.T), axis=1)[:, :10]

    def score(self, ids: np.ndarray) -> tuple[float, float]:
        """(NDCG@10, recall@10 vs the float32 top-10) of a ranked id matrix (q, >=10)."""
        ndcg, _ = ndcg_at_10(self.qrels, run_from_topk(self.query_ids, self.doc_ids, ids[:, :10]))
        hits = [len(set(a) & set(b)) for a, b in zip(ids[:, :10], self.float_top, strict=True)]
        return ndcg, float(np.mean(hits)) / 10

    def hamming(self, q_feat: np.ndarray, d_feat: np.ndarray, scheme: str, quantizer=None):
        """Symmetric Hamming search of thermometer codes (quantile thresholds fitted on the documents)."""
        quantizer = quantizer or qama_rs.Quantizer.fit(np.ascontiguousarray(d_feat, np.float32), scheme)
        index = qama_rs.Index(quantizer)
        index.add(np.ascontiguousarray(d_feat, np.float32))
        _, ids = index.search(np.ascontiguousarray(q_feat, np.float32), 100)
        return self.score(ids)

    def cosine(self, q_feat: np.ndarray, d_feat: np.ndarray):
        qn = q_feat / np.linalg.norm(q_feat, axis=1, keepdims=True)
        dn = d_feat / np.linalg.norm(d_feat, axis=1, keepdims=True)
        return self.score(np.argsort(-(qn @ dn.T), axis=1)[:, :100])


def pca_axes(x):
    """Principal axes of the centred covariance, by decreasing variance (columns)."""
    c = np.cov(x - x.mean(0), rowvar=False)
    w, v = np.linalg.eigh(c)
    return v[:, np.argsort(w)[::-1]]


def hybrid_features(z):
    """The hybrid scheme's quantizer input: three quarters kept, the last quarter summed in pairs / sqrt 2."""
    kept = 3 * z.shape[1] // 4
    tail = z[:, kept:].reshape(len(z), -1, 2).sum(-1) / np.sqrt(2.0)
    return np.concatenate([z[:, :kept], tail], 1)


def levels_of(scheme, width):
    """Levels per quantizer input of a scheme (hybrid: 4 / 3 / 2 / 2 by quarter, the last pair-reduced)."""
    if scheme == "hybrid":
        q = width * 8 // 7 // 4
        return np.array([4] * q + [3] * q + [2] * q + [2] * (q // 2))
    return np.full(width, {"1bit": 2, "1.5bit": 3, "2bit": 4}[scheme])


def quantizer(features, levels):
    """Engine quantizer with equal-mass (quantile) thresholds per feature."""
    width = levels.max() - 1
    t = np.full((features.shape[1], width), np.inf, np.float32)
    for j, count in enumerate(levels):
        t[j, : count - 1] = np.quantile(features[:, j], np.arange(1, count) / count)
    return qama_rs.Quantizer(t, levels)


def rotate(features, rotation):
    """``features @ rotation`` as the engine's float32."""
    return (features @ rotation).astype(np.float32)


class Frame:
    """A bench's documents and queries in the corpus PCA frame (centred axes ``axes`` applied to the uncentred
    embeddings, as the head's skip; ``pca=False`` keeps the base model's raw axes), with the label-free
    validation split: held-out rows (10 %, at most 1,000), the rows to fit on, and the held-out rows' float32
    top-10."""

    def __init__(self, bench, pca=True):
        from qama_rs.qama.validation import float_neighbours, holdout_rows

        self.bench = bench
        self.axes = pca_axes(bench.docs) if pca else None
        self.docs, self.queries = (bench.docs @ self.axes, bench.queries @ self.axes) if pca else (
            bench.docs, bench.queries)
        self.rows = holdout_rows(len(self.docs), min(1000, len(self.docs) // 10))
        self.fit = np.setdiff1d(np.arange(len(self.docs)), self.rows)
        self.target = float_neighbours(bench.docs, self.rows)

    def scheme(self, scheme):
        """(document inputs, query inputs, levels per input) of a scheme's quantizer."""
        reduce = hybrid_features if scheme == "hybrid" else (lambda z: z)
        fd = reduce(self.docs)
        return fd, reduce(self.queries), levels_of(scheme, fd.shape[1])

    def scores(self, xd, xq, scheme, quant):
        """(label-free validation recall, test NDCG@10, test recall@10) of the codes of ``quant`` for the
        documents' and queries' quantizer inputs ``xd`` / ``xq``."""
        from qama_rs.qama.validation import label_free_recall

        val = label_free_recall(xd, quant, self.rows, self.target)
        return (val, *self.bench.hamming(xq, xd, scheme, quantizer=quant))

    def evaluate(self, scheme, rotation, make_quantizer=quantizer):
        """`scores` of a scheme's inputs rotated by ``rotation``, quantized by ``make_quantizer(xd, levels)``
        (default: equal-mass thresholds)."""
        fd, fq, levels = self.scheme(scheme)
        xd, xq = rotate(fd, rotation), rotate(fq, rotation)
        return self.scores(xd, xq, scheme, make_quantizer(xd, levels))


def frames(datasets, pca=True) -> Iterator[Frame]:
    """The `Frame` of each named dataset, loaded one at a time."""
    for name in datasets:
        yield Frame(Bench(name), pca)


def crops_of(bench):
    """Embeddings of one crop of each document (``qama_rs.qama.pseudo_queries.crop_queries``, seed 0), cached
    under ``runs/`` at the repository root: embedding them takes minutes on a CPU."""
    from qama_rs.data.embed import embed_texts
    from qama_rs.qama.pseudo_queries import crop_queries

    cache = Path(__file__).resolve().parents[2] / "runs" / f"crops-{bench.name}.npy"
    cache.parent.mkdir(exist_ok=True)
    if cache.is_file():
        return np.load(cache)
    texts, _ = crop_queries(bench.ds.doc_texts, seed=0)
    emb = embed_texts(texts, progress=True)
    np.save(cache, emb)
    return emb


def crop_recall(docs_f, crops_f, quant, target):
    """Recall@10 of the symmetric Hamming search of crop queries ``crops_f`` among ``docs_f`` against
    ``target`` (each crop's float32 top-10 among the documents)."""
    index = qama_rs.Index(quant)
    index.add(np.ascontiguousarray(docs_f, np.float32))
    _, ids = index.search(np.ascontiguousarray(crops_f, np.float32), 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, target, strict=True)]))
