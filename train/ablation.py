"""The paper's ablation ladder: train every step's config and tabulate NDCG@10.

    python train/ablation.py --dataset scifact --out runs/ablation [--steps ffn,variance] [--no-labelled]
    python train/ablation.py --write-configs     # regenerate train/configs/<step>.json

Each step adds one component to the previous one (see `qama_rs.qama.config.ablation_config`):
thresholds → ffn → quantization → matryoshka → orthogonality → bottleneck → variance.
The configs live in ``train/configs/<step>.json`` so that ``qama train --config`` can use them directly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
sys.path.insert(0, str(HERE))

COLUMNS = [
    ("float32", "384"),
    ("float32", "192"),
    ("float32", "96"),
    ("float32", "48"),
    ("1bit", "384"),
    ("1.5bit", "384"),
    ("2bit", "384"),
    ("hybrid", "384"),
    ("2bit", "96"),
    ("1bit", "96"),
]


def write_configs() -> None:
    from qama_rs.qama.config import ABLATION_STEPS, ablation_config

    CONFIGS.mkdir(exist_ok=True)
    for step in ABLATION_STEPS:
        ablation_config(step).save(CONFIGS / f"{step}.json")
        print(CONFIGS / f"{step}.json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", help="training dataset (repeatable)")
    parser.add_argument("--eval-dataset", default="scifact")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--steps", help="comma-separated subset of the ladder")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--no-labelled", action="store_true", help="ignore train-split qrels pairs")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument("--write-configs", action="store_true")
    args = parser.parse_args(argv)
    if args.write_configs:
        write_configs()
        return 0
    if not args.dataset or args.out is None:
        parser.error("--dataset and --out are required unless --write-configs")

    import torch

    from evaluate import evaluate
    from qama_rs.qama.config import ABLATION_STEPS, QamaConfig
    from qama_rs.qama.train import train

    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps.split(",") if args.steps else list(ABLATION_STEPS)
    header = "| step | train s | " + " | ".join(f"{s} {d}" for s, d in COLUMNS) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(COLUMNS)]
    for step in steps:
        config = QamaConfig.load(CONFIGS / f"{step}.json")
        if args.epochs is not None:
            config.optim.epochs = args.epochs
        started = time.perf_counter()
        out = train(config, args.dataset, args.out / step, labelled=not args.no_labelled, progress=False)
        seconds = time.perf_counter() - started
        report = evaluate(str(out), args.eval_dataset)
        (args.out / step / "eval.json").write_text(json.dumps(report, indent=1) + "\n")
        scores = report["ndcg@10"]
        lines.append(
            f"| {step} | {seconds:.0f} | " + " | ".join(f"{scores[s][d]:.4f}" for s, d in COLUMNS) + " |"
        )
        print(lines[-1], flush=True)
    print(" ".join(sys.argv))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
