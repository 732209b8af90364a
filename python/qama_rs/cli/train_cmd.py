"""``qama train``: a QAMA head from the documents of one or more datasets (`qama_rs.qama.train.train`).

    qama train --dataset scifact --no-labelled --out runs/scifact
    qama train --dataset D --config config.json --epochs 3 --seed 1 --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qama_rs.cli.options import positive_int
from qama_rs.errors import QamaError
from qama_rs.qama.config import ABLATION_STEPS

__all__ = ["add_parsers", "cmd_train"]


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from qama_rs.qama.config import QamaConfig, ablation_config, supervised_config
    from qama_rs.qama.train import train

    if args.config and args.supervised:
        raise QamaError("give --config or --supervised, not both")
    config = QamaConfig.load(args.config) if args.config else supervised_config() if args.supervised else QamaConfig()
    if args.ablation:
        config = ablation_config(args.ablation, config)
    if args.epochs is not None:
        config.optim.epochs = args.epochs
    if args.seed is not None:
        config.optim.seed = args.seed
    config.validate()
    torch.set_num_threads(args.threads)
    out = train(
        config,
        args.dataset,
        args.out,
        model=args.model,
        labelled=not args.no_labelled,
        resume=args.resume,
        progress=not args.quiet,
        # The built-in configs are sized for 384-d MiniLM; a config file says its own width.
        fit_width=args.config is None,
    )
    summary = json.loads((Path(out) / "config.json").read_text())["training"]
    print(
        f"trained {summary['steps']} steps on {summary['documents']} documents in {summary['seconds']} s -> {out}"
    )
    return 0


def add_parsers(sub) -> None:
    """Adds ``train`` to the ``qama`` sub-command parser."""
    parser = sub.add_parser(
        "train", help="train a QAMA head on document embeddings", description="Train a QAMA head on document embeddings."
    )
    parser.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="PATH",
        help="BEIR dataset name or folder (repeatable); its documents are the training data",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder for head.safetensors + config.json"
    )
    parser.add_argument("--config", metavar="FILE", help="config JSON (default: the built-in QamaConfig)")
    parser.add_argument(
        "--ablation", choices=ABLATION_STEPS, help="train this ablation step's config instead"
    )
    parser.add_argument("--epochs", type=int, metavar="N", help="override optim.epochs")
    parser.add_argument(
        "--seed", type=int, metavar="N", help="override optim.seed (also the validation hold-out and rotation start)"
    )
    parser.add_argument("--model", help="base embedding model (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--no-labelled", action="store_true", help="ignore train-split qrels pairs")
    parser.add_argument(
        "--supervised",
        action="store_true",
        help="train the FFN head with the full QAMA objective (supervised_config); the default is the "
        "documents-only config (PCA skip + code rotations + thresholds), which measured best without labels",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="torch intra-op threads (default 1: on a shared 2-core machine two spinning OpenMP threads made "
        "a step 4x slower; raise it on an idle many-core machine)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_train)
