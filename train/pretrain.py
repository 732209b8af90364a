"""Train the pretrained head shipped in the package, on documents only: the 50,000 Wikipedia passages of
``../shared/data/unlabelled/wiki-50k`` (their all-MiniLM-L6-v2 embeddings are precomputed there).

    python train/pretrain.py [--out python/qama_rs/qama/pretrained/all-MiniLM-L6-v2]

The config is the documents-only default (`QamaConfig()`: PCA skip, no FFN, code rotations chosen by the
label-free validation signal, quantile thresholds); weights are stored as float16 (train/README.md measures
that this costs nothing). Never trained on scifact or dbpedia-5k.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from qama_rs.data.beir import data_root
from qama_rs.qama.config import QamaConfig
from qama_rs.qama.model import PRETRAINED_DEFAULT, PRETRAINED_ROOT, QamaModel
from qama_rs.qama.train import TrainingData, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PRETRAINED_ROOT / PRETRAINED_DEFAULT)
    parser.add_argument("--scratch", type=Path, default=Path("runs/pretrain-wiki-50k"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = data_root() / "unlabelled" / "wiki-50k"
    docs = np.load(folder / "all-MiniLM-L6-v2.npy").astype(np.float32)
    started = time.perf_counter()
    data = TrainingData(docs=docs, description=[{"dataset": "wiki-50k", "documents": len(docs), "labelled": 0}])
    train(QamaConfig(), data, args.scratch, labelled=False)
    model = QamaModel.load(args.scratch)
    model.training["command"] = "python train/pretrain.py"
    model.save(args.out, dtype=torch.float16)
    seconds = time.perf_counter() - started
    print(json.dumps({"out": str(args.out), "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
