"""``qama frontier``: the codec for a byte budget, chosen on pseudo-queries drawn from the documents
(`qama_rs.quantizers.budget.choose_codec`).

    qama frontier --dataset scifact --budget 48
"""

from __future__ import annotations

import argparse
import sys

from qama_rs.cli.options import positive_int
from qama_rs.errors import QamaError

__all__ = ["add_parsers", "cmd_frontier"]


def cmd_frontier(args: argparse.Namespace) -> int:
    """Prints the candidates' pseudo-query recall (progress on stderr), the table and the choice."""
    from qama_rs.data.beir import load_beir, resolve_dataset
    from qama_rs.data.embed import dataset_embeddings
    from qama_rs.quantizers.budget import choose_codec, format_table

    docs = dataset_embeddings(load_beir(resolve_dataset(args.dataset)), progress=False).docs
    if len(docs) < args.queries + 20:
        raise QamaError(
            f"--queries {args.queries}: {args.dataset} has {len(docs)} documents; the chooser holds out --queries "
            "of them and needs at least 20 more"
        )
    spec, table = choose_codec(
        docs,
        args.budget,
        args.queries,
        args.seed,
        progress=lambda r: print(f"  {r['spec']}: {r['recall10']:.3f}", file=sys.stderr),
    )
    print(format_table(table, spec))
    print(f"\nchosen for {args.budget} B: {spec}")
    return 0


def add_parsers(sub) -> None:
    """Adds ``frontier`` to the ``qama`` sub-command parser."""
    parser = sub.add_parser(
        "frontier",
        help="choose the codec for a byte budget from documents alone",
        description="choose the codec for a byte budget",
    )
    parser.add_argument(
        "--dataset", required=True, help="BEIR dataset name or folder (documents only are read)"
    )
    parser.add_argument("--budget", type=positive_int, required=True, help="bytes per vector (codes + factors)")
    parser.add_argument("--queries", type=positive_int, default=200, help="held-out documents used as queries")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split (default 0)")
    parser.set_defaults(func=cmd_frontier)
