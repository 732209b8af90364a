"""Probe: pseudo-queries cropped from documents (inverse cloze) — (a) as the label-free validation queries,
(b) added to the documents the code rotation is fitted on. Symmetric Hamming at 384 d through the engine.

python train/lab/probe_pseudo.py scifact dbpedia-5k
"""

import sys
from pathlib import Path

import numpy as np
from common import LAB_CELLS, Bench

import qama_rs
from qama_rs.data.embed import embed_texts
from qama_rs.qama.pseudo_queries import crop_queries
from qama_rs.qama.rotation import quantization_rotation
from qama_rs.qama.validation import float_neighbours, holdout_rows, label_free_recall

LEVELS = {"1bit": 2, "1.5bit": 3, "2bit": 4}


def crops_of(bench):
    cache = Path(__file__).resolve().parents[2] / "runs" / f"crops-{bench.name}.npy"
    cache.parent.mkdir(exist_ok=True)
    if cache.is_file():
        return np.load(cache)
    texts, _ = crop_queries(bench.ds.doc_texts, seed=0)
    emb = embed_texts(texts, progress=True)
    np.save(cache, emb)
    return emb


def crop_recall(docs_f, crops_f, quantizer, target):
    index = qama_rs.Index(quantizer)
    index.add(np.ascontiguousarray(docs_f, np.float32))
    _, ids = index.search(np.ascontiguousarray(crops_f, np.float32), 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, target, strict=True)]))



def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        docs = b.docs
        crops = crops_of(b).astype(np.float32)
        rows = holdout_rows(len(docs), min(1000, len(docs) // 10))
        doc_target = float_neighbours(docs, rows)
        crop_target = np.argsort(-(crops @ docs.T), axis=1)[:, :10]
        fit = np.setdiff1d(np.arange(len(docs)), rows)
        for scheme in ("1bit", "1.5bit", "2bit"):
            levels = [LEVELS[scheme]] * 384
            cands = {"raw axes": np.eye(384), "random": quantization_rotation(docs[fit], levels, 0, cells=LAB_CELLS),
                     "itq(docs)": quantization_rotation(docs[fit], levels, 20, cells=LAB_CELLS),
                     "itq(docs+crops)": quantization_rotation(np.vstack([docs[fit], crops]), levels, 20, cells=LAB_CELLS)}
            for cname, r in cands.items():
                d, q, c = (docs @ r).astype(np.float32), (b.queries @ r).astype(np.float32), (crops @ r).astype(np.float32)
                quant = qama_rs.Quantizer.fit(d, scheme)
                v_doc = label_free_recall(d, quant, rows, doc_target)
                v_crop = crop_recall(d, c, quant, crop_target)
                nd, rc = b.hamming(q, d, scheme, quantizer=quant)
                print(f"{name} {scheme:6s} {cname:16s} val(docs) {v_doc:.3f} val(crops) {v_crop:.3f}  test NDCG {nd:.4f} recall {rc:.3f}", flush=True)


if __name__ == "__main__":
    main()
