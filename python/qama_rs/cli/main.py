"""The ``qama`` command: one sub-command per job; each delegates to the module that owns the work.

    qama demo       embed scifact → fit a documents-only head → encode → search → NDCG table (README's first command)
    qama train      train a QAMA head (qama_rs.qama.train)
    qama eval       one method on one or more datasets, a result line or JSON (qama_rs.eval)
    qama tables     regenerate every table and plot under results/ (qama_rs.eval.tables)
    qama diagnose   embedding statistics and quantizer distortion (qama_rs.eval.diagnose)
    qama reproduce  the training-free codecs against the reference figures (qama_rs.eval.reproduce)
    qama info       version, CPU, engine backend, data root and cache dir
    qama index      build an index file of your own corpus / embeddings (`index build`), describe one (`index info`)
    qama search     search an index file: a TREC run for a query file, or ranked ids for one query
    qama frontier   choose the codec for a byte budget on pseudo-queries drawn from the documents
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# Everything here runs offline: no model or dataset hub is reachable, and nothing may download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__all__ = ["build_parser", "main"]


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
    """The whole ``qama`` parser: each command family's module adds its sub-commands."""
    from qama_rs.cli import demo, eval_cmd, frontier_cmd, index_cmd, train_cmd

    parser = argparse.ArgumentParser(prog="qama", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parsers(sub)
    train_cmd.add_parsers(sub)
    eval_cmd.add_parsers(sub)
    info = sub.add_parser("info", help="version, CPU and engine backend, data and cache folders")
    info.set_defaults(func=_cmd_info)
    index_cmd.add_parsers(sub)
    frontier_cmd.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
