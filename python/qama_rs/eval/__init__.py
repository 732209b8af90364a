"""Evaluation harness: metrics as MTEB computes them, factory specs at Matryoshka prefixes, tables and plots.

``evaluate("scifact", "LloydMax2", dims=128)`` embeds (cached), builds the spec's index on the documents
(:func:`~qama_rs.eval.prefix.prefix_index`: each family's prefix rule), searches and returns NDCG@10 with a
bootstrap 95 % CI; ``build_tables(["scifact", "dbpedia-5k"])`` writes the paper's tables and the Pareto plot
under ``results/``. Method names (``qama eval --method fp32``) are the command line's (`qama_rs.cli.methods`);
the same NDCG@10 from mteb's own evaluator is `qama_rs.integrations.mteb.evaluate_mteb`.
"""

from __future__ import annotations

from qama_rs.eval.metrics import bootstrap_ci, ndcg_at_10
from qama_rs.eval.prefix import PrefixIndex, prefix_index
from qama_rs.eval.runner import evaluate, evaluate_dims, format_result

__all__ = [
    "PrefixIndex",
    "bootstrap_ci",
    "build_tables",
    "evaluate",
    "evaluate_dims",
    "format_result",
    "ndcg_at_10",
    "prefix_index",
]


def __getattr__(name):
    # matplotlib takes seconds to import; load the tables module only when asked for.
    if name == "build_tables":
        from qama_rs.eval.tables import build_tables

        return build_tables
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
