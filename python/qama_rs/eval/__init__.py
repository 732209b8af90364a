"""Evaluation harness: metrics as MTEB computes them, search methods, mteb integration, tables and plots.

``evaluate("scifact", "fp32", dims=128)`` embeds (cached), fits the method on the documents, searches and
returns NDCG@10 with a bootstrap 95 % CI; ``build_tables(["scifact", "dbpedia-5k"])`` writes the paper's
tables and the Pareto plot under ``results/``; ``evaluate_mteb`` gets the same NDCG@10 from mteb's own
retrieval evaluator.
"""

from __future__ import annotations

from qama_rs.eval.methods import Method, available_methods, get_method, register_method
from qama_rs.eval.metrics import bootstrap_ci, ndcg_at_10
from qama_rs.eval.runner import evaluate, evaluate_dims, format_result

__all__ = [
    "Method",
    "available_methods",
    "bootstrap_ci",
    "build_tables",
    "evaluate",
    "evaluate_dims",
    "evaluate_mteb",
    "format_result",
    "get_method",
    "ndcg_at_10",
    "register_method",
]


def __getattr__(name):
    # mteb and matplotlib take seconds to import; load those modules only when asked for.
    if name == "evaluate_mteb":
        from qama_rs.eval.backend import evaluate_mteb

        return evaluate_mteb
    if name == "build_tables":
        from qama_rs.eval.tables import build_tables

        return build_tables
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
