"""The ``qama`` command: one sub-command per job; each delegates to the module that owns the work.

    qama demo      embed scifact → fit a documents-only head → encode → search → NDCG table (README's first command)
    qama train     train a QAMA head (qama_rs.qama.train)
    qama eval      one method on one or more datasets, a result line or JSON (qama_rs.eval)
    qama tables    regenerate every table and plot under results/ (qama_rs.eval.tables)
    qama diagnose  embedding statistics and quantizer distortion (qama_rs.eval.diagnose)
    qama info      version, CPU, engine backend, data root and cache dir
    qama index     build an index file of your own corpus / embeddings (`index build`), describe one (`index info`)
    qama search    search an index file: a TREC run for a query file, or ranked ids for one query
    qama frontier  choose the codec for a byte budget on pseudo-queries drawn from the documents
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from collections.abc import Sequence

# Everything here runs offline: no model or dataset hub is reachable, and nothing may download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BITS_CHOICES = ("1", "1.5", "2", "hybrid", "8", "16", "32")


def _bits(value: str):
    """``--bits`` as the registry takes it: a number, or the string ``"hybrid"``."""
    if value == "hybrid":
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


def _cmd_demo(args: argparse.Namespace) -> int:
    from qama_rs.cli.demo import run_demo

    run_demo(dataset=args.dataset, out_dir=args.out, epochs=args.epochs, retrain=args.retrain)
    return 0


def _cmd_train(argv: Sequence[str]) -> int:
    from qama_rs.qama.train import train_main

    return train_main(list(argv))


def _cmd_eval(args: argparse.Namespace) -> int:
    from qama_rs.eval.runner import evaluate, format_result

    head = None
    if args.head:
        from qama_rs.qama.model import QamaModel

        head = QamaModel.load(args.head)
        with contextlib.suppress(AttributeError):
            head.path = args.head  # names the head in the spec the results print: QAMA(DIR),...
    elif args.method == "qama":
        raise SystemExit("qama eval: --method qama needs --head DIR (a trained head from `qama train`)")
    results = []
    for dataset in args.dataset:
        result = evaluate(
            dataset, args.method, dims=args.dims, bits=None if args.bits is None else _bits(args.bits), head=head,
            model=args.model, n_resamples=args.resamples,
        )
        result.pop("per_query", None)
        results.append(result)
        if not args.json:
            print(format_result(result))
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    return 0


def _cmd_tables(args: argparse.Namespace) -> int:
    from qama_rs.eval.tables import build_tables

    head = None
    if args.head:
        from qama_rs.qama.model import QamaModel

        head = QamaModel.pretrained() if args.head == "pretrained" else QamaModel.load(args.head)
    command = "qama " + " ".join(shlex.quote(a) for a in args.argv)
    if args.head and args.head != "pretrained":
        # Name the training run too, from what the head recorded about its data.
        trained_on = [d.get("path", d.get("name")) for d in (head.training or {}).get("data", [])]
        if trained_on:
            datasets = " ".join(f"--dataset {shlex.quote(str(d))}" for d in trained_on)
            command = f"qama train {datasets} --out {shlex.quote(args.head)} && {command}"
    build_tables(
        args.dataset or ("scifact", "dbpedia-5k"), head=head, out_dir=args.out, model=args.model, command=command
    )
    print(f"tables written under {args.out}/")
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from qama_rs.eval.diagnose import diagnose

    command = "qama " + " ".join(shlex.quote(a) for a in args.argv)
    diagnose(args.dataset, out_dir=args.out, model=args.model, command=command)
    print(f"diagnostics written to {args.out}/diagnostics.{{md,json,png}}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from qama_rs._core import __version__
    from qama_rs.data.beir import data_root
    from qama_rs.data.embed import cache_root
    from qama_rs.engine.cpu import cpu_description

    print(f"qama-rs {__version__}")
    print(f"cpu: {cpu_description()}")
    print(f"data root: {data_root()}")
    print(f"embedding cache: {cache_root()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qama", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="end-to-end demo on scifact: embed, fit a documents-only head, encode, search, NDCG")
    demo.add_argument("--dataset", default="scifact", help="BEIR dataset name or folder (default: scifact)")
    demo.add_argument("--out", default=os.path.join("runs", "demo"), help="where the demo head is written")
    demo.add_argument(
        "--epochs",
        type=int,
        default=0,
        help="FFN training epochs (default 0: the documents-only head, which measured best without labels)",
    )
    demo.add_argument("--retrain", action="store_true", help="train again even if OUT already holds a head")
    demo.set_defaults(func=_cmd_demo)

    # `qama train` owns its own parser (qama_rs.qama.train.build_parser); see _dispatch.
    sub.add_parser("train", help="train a QAMA head (see `qama train --help`)", add_help=False)
    sub.add_parser(
        "frontier",
        help="choose the codec for a byte budget from documents alone (see `qama frontier --help`)",
        add_help=False,
    )

    ev = sub.add_parser("eval", help="evaluate one method: NDCG@10 with a bootstrap 95%% CI")
    ev.add_argument("--dataset", action="append", required=True, metavar="PATH", help="BEIR name or folder (repeatable)")
    ev.add_argument(
        "--method", required=True,
        help="fp32, fp16, int8, quantile, sign, qama, two_stage, a training-free method, or a factory spec",
    )
    ev.add_argument("--bits", default=None, choices=BITS_CHOICES, help="bits per dimension (32 = float32; default: the method's own)")
    ev.add_argument("--dims", type=int, default=None, help="Matryoshka prefix (default: all dimensions)")
    ev.add_argument("--head", metavar="DIR", help="trained head (from `qama train`) for --method qama")
    ev.add_argument("--model", help="base embedding model path or .npy (default: bundled all-MiniLM-L6-v2)")
    ev.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the CI (default 1000)")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a result line")
    ev.set_defaults(func=_cmd_eval)

    tables = sub.add_parser("tables", help="regenerate results/ tables and plots")
    tables.add_argument("--dataset", action="append", metavar="PATH", help="default: scifact and dbpedia-5k")
    tables.add_argument("--head", metavar="DIR", help="trained head for the QAMA columns, or \"pretrained\" (the shipped head)")
    tables.add_argument("--model", help="base embedding model (default: bundled all-MiniLM-L6-v2)")
    tables.add_argument("--out", default="results", help="output folder (default: results)")
    tables.set_defaults(func=_cmd_tables)

    diag = sub.add_parser("diagnose", help="embedding shape statistics and per-method score distortion")
    diag.add_argument("--dataset", default="scifact", help="BEIR dataset name or folder (default: scifact)")
    diag.add_argument("--model", help="base embedding model (default: bundled all-MiniLM-L6-v2)")
    diag.add_argument("--out", default="results", help="output folder (default: results)")
    diag.set_defaults(func=_cmd_diagnose)

    info = sub.add_parser("info", help="version, CPU and engine backend, data and cache folders")
    info.set_defaults(func=_cmd_info)

    from qama_rs.cli.index_cmd import add_index_parsers

    add_index_parsers(sub, BITS_CHOICES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return _cmd_train(argv[1:])
    if argv and argv[0] == "frontier":
        # `qama frontier` owns its parser (qama_rs.quantizers.budget.main), like `qama train`.
        from qama_rs.quantizers.budget import main as frontier_main

        return frontier_main(argv[1:])
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        # Bad input: one clear line, not a traceback.
        command = args.command + (f" {args.index_command}" if getattr(args, "index_command", None) else "")
        print(f"qama {command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
