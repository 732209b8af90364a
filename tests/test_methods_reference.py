"""The training-free quantizers reproduce the README's reference figures on SciFact (slow: real embeddings)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scifact_rows():
    from qama_rs.eval.reproduce import REFERENCE, evaluate

    rows = {(method, scoring): value for method, scoring, _, (value, _, _), _ in evaluate("scifact")}
    return rows, REFERENCE["scifact"]


@pytest.mark.parametrize(
    "method, scoring, key",
    [
        ("float32", "exact", "float32"),
        ("int8", "asym", "int8"),
        ("binary", "asym", "binary"),
        ("binary_median", "asym", "binary_median"),
        ("lloyd_max_gauss", "asym", "lloyd_max_gauss"),
        ("binary", "hamming", "binary hamming"),
    ],
)
def test_scifact_reference_figures(scifact_rows, method, scoring, key):
    rows, reference = scifact_rows
    assert rows[(method, scoring)] == pytest.approx(reference[key], abs=0.002)


def test_two_stage_keeps_99_percent_of_float32_at_a_twentieth_of_the_bytes():
    from qama_rs.eval.reproduce import two_stage_curve

    float32 = 0.6451
    hits = [
        (kp, value, frac)
        for label, kp, value, _, frac in two_stage_curve("scifact")
        if label == "hamming→lloyd_max_gauss" and frac <= 1 / 20 and value >= 0.99 * float32
    ]
    assert hits, "no k' reaches 99 % of float32 NDCG@10 within 1/20 of the float32 bytes"
