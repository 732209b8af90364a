"""The evaluation commands: ``qama eval``, ``qama tables``, ``qama diagnose`` and ``qama reproduce``.

    qama eval --dataset scifact --method lloyd_max_gauss --json
    qama eval --dataset scifact --method quantile --bits 1 --dims 96
    qama eval --dataset scifact --method qama --bits 2 --head runs/scifact
    qama tables --head pretrained
    qama diagnose --dataset scifact
    qama reproduce --datasets scifact dbpedia-5k --two-stage scifact

``--method`` names resolve to factory specs here (`qama_rs.cli.methods`); the evaluation layer
(`qama_rs.eval`) takes the spec.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import time

from qama_rs.cli.methods import method_label, resolve_method
from qama_rs.cli.options import BITS_CHOICES, parse_bits, positive_int

__all__ = ["add_parsers", "cmd_diagnose", "cmd_eval", "cmd_reproduce", "cmd_tables"]


def _load_head(path: str, option: str = "--head"):
    from qama_rs.qama.model import QamaModel

    try:
        return QamaModel.load(path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{option} {path}: {err}") from None


def cmd_eval(args: argparse.Namespace) -> int:
    from qama_rs.eval.runner import evaluate, format_result

    spec = resolve_method(args.method, parse_bits(args.bits), head=args.head)
    head = None
    if args.head:
        head = _load_head(args.head)
        with contextlib.suppress(AttributeError):
            head.path = args.head  # names the head in the spec the results print: QAMA(DIR),...
    results = []
    for dataset in args.dataset:
        result = evaluate(
            dataset, spec, dims=args.dims, name=method_label(args.method, spec), head=head, model=args.model,
            n_resamples=args.resamples,
        )  # fmt: skip
        result.pop("per_query", None)
        results.append(result)
        if not args.json:
            print(format_result(result))
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from qama_rs.eval.tables import build_tables

    head = None
    if args.head:
        from qama_rs.qama.model import QamaModel

        head = QamaModel.pretrained() if args.head == "pretrained" else _load_head(args.head)
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


def cmd_diagnose(args: argparse.Namespace) -> int:
    from qama_rs.eval.diagnose import diagnose

    command = "qama " + " ".join(shlex.quote(a) for a in args.argv)
    diagnose(args.dataset, out_dir=args.out, model=args.model, command=command)
    print(f"diagnostics written to {args.out}/diagnostics.{{md,json,png}}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """The training-free codecs against the README's reference figures, and the two-stage sweep, as Markdown."""
    from qama_rs.eval.reproduce import REFERENCE, evaluate, two_stage_curve

    for name in args.datasets:
        t0 = time.time()
        ref = REFERENCE.get(name, {})
        print(f"\n## {name}: NDCG@10 (test)\n")
        print("| method | scoring | bytes/doc | NDCG@10 | 95 % CI | ties by id | reference |")
        print("|---|---|---:|---:|---|---:|---:|")
        for method, scoring, nbytes, (value, lo, hi), by_id in evaluate(name):
            key = method if scoring != "hamming" else f"{method} hamming"
            ref_value = ref.get(key, ref.get(method) if scoring != "hamming" else None)
            tie = "" if by_id is None else f"{by_id:.4f}"
            ref_text = "" if ref_value is None else f"{ref_value:.4f}"
            print(f"| {method} | {scoring} | {nbytes} | {value:.4f} | {lo:.3f}–{hi:.3f} | {tie} | {ref_text} |")
        print(f"\n({time.time() - t0:.1f} s)")
    for name in args.two_stage:
        print(f"\n## {name}: two-stage search, k = 10\n")
        print("| stages | k' | NDCG@10 | bytes scanned / doc | of float32 |")
        print("|---|---:|---:|---:|---:|")
        for label, kp, value, per_doc, frac in two_stage_curve(name):
            print(f"| {label} | {kp} | {value:.4f} | {per_doc:.1f} | 1/{1 / frac:.1f} |")
    return 0


def add_parsers(sub) -> None:
    """Adds ``eval``, ``tables``, ``diagnose`` and ``reproduce`` to the ``qama`` sub-command parser."""
    ev = sub.add_parser("eval", help="evaluate one method: NDCG@10 with a bootstrap 95%% CI")
    ev.add_argument("--dataset", action="append", required=True, metavar="PATH", help="BEIR name or folder (repeatable)")
    ev.add_argument(
        "--method", required=True,
        help="fp32, fp16, int8, quantile, sign, qama, two_stage, a training-free method, or a factory spec",
    )  # fmt: skip
    ev.add_argument("--bits", default=None, choices=BITS_CHOICES, help="bits per dimension (32 = float32; default: the method's own)")
    ev.add_argument("--dims", type=positive_int, default=None, help="Matryoshka prefix (default: all dimensions)")
    ev.add_argument("--head", metavar="DIR", help="trained head (from `qama train`) for --method qama")
    ev.add_argument("--model", help="base embedding model path or .npy (default: bundled all-MiniLM-L6-v2)")
    ev.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples for the CI (default 1000)")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a result line")
    ev.set_defaults(func=cmd_eval)

    tables = sub.add_parser("tables", help="regenerate results/ tables and plots")
    tables.add_argument("--dataset", action="append", metavar="PATH", help="default: scifact and dbpedia-5k")
    tables.add_argument("--head", metavar="DIR", help="trained head for the QAMA columns, or \"pretrained\" (the shipped head)")
    tables.add_argument("--model", help="base embedding model (default: bundled all-MiniLM-L6-v2)")
    tables.add_argument("--out", default="results", help="output folder (default: results)")
    tables.set_defaults(func=cmd_tables)

    diag = sub.add_parser("diagnose", help="embedding shape statistics and per-method score distortion")
    diag.add_argument("--dataset", default="scifact", help="BEIR dataset name or folder (default: scifact)")
    diag.add_argument("--model", help="base embedding model (default: bundled all-MiniLM-L6-v2)")
    diag.add_argument("--out", default="results", help="output folder (default: results)")
    diag.set_defaults(func=cmd_diagnose)

    rep = sub.add_parser(
        "reproduce", help="training-free codecs against the reference figures, and the two-stage sweep (Markdown)"
    )
    rep.add_argument(
        "--datasets", nargs="*", default=["scifact", "dbpedia-5k"], metavar="DATASET",
        help="datasets of the codec table (default: scifact dbpedia-5k)",
    )  # fmt: skip
    rep.add_argument(
        "--two-stage", nargs="*", default=["scifact"], dest="two_stage", metavar="DATASET",
        help="datasets of the two-stage sweep (default: scifact)",
    )  # fmt: skip
    rep.set_defaults(func=cmd_reproduce)
