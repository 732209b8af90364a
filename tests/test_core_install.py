"""The core install (numpy + tqdm, no extras) runs the engine and every training-free quantizer.

scipy is a dev/eval dependency only: the Gaussian Lloyd-Max tables are computed with the standard
library's erf/erfc/NormalDist and must match the scipy (``ndtr``/``ndtri``) computation they replace.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from qama_rs.quantizers.lloyd_max import _gaussian_table, _initial_gaussian_levels, _Phi, _phi

# Packages outside `pip install qama-rs` (extras and dev tools): the core path must not import them.
OPTIONAL_PACKAGES = (
    "scipy",
    "torch",
    "sentence_transformers",
    "mteb",
    "matplotlib",
    "pandas",
    "faiss",
    "usearch",
    "pymilvus",
    "milvus_lite",
    "sklearn",
    "safetensors",
    "pytrec_eval",
)


def _scipy_table(n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """The Lloyd-Max iteration exactly as it ran on scipy's ndtr/ndtri (the pre-existing code)."""
    levels = ndtri((np.arange(n_levels) + 0.5) / n_levels)
    for _ in range(100_000):
        bounds = 0.5 * (levels[:-1] + levels[1:])
        edges = np.concatenate(([-np.inf], bounds, [np.inf]))
        mass = ndtr(edges[1:]) - ndtr(edges[:-1])
        new = (_phi(edges[:-1]) - _phi(edges[1:])) / mass
        if np.max(np.abs(new - levels)) < 1e-13:
            levels = new
            break
        levels = new
    levels = 0.5 * (levels - levels[::-1])
    return 0.5 * (levels[:-1] + levels[1:]), levels


def test_normal_cdf_matches_scipy():
    z = np.concatenate([np.linspace(-38.0, 38.0, 100_001), [-np.inf, np.inf, 0.0, -0.7071, 0.7071]])
    ours, theirs = _Phi(z), ndtr(z)
    assert np.max(np.abs(ours - theirs)) <= 4.5e-16
    # Tail masses keep relative precision (the Lloyd iteration divides by them).
    tail = (theirs > 1e-300) & (z < -1.0)
    assert np.max(np.abs(ours[tail] - theirs[tail]) / theirs[tail]) <= 1e-13


@pytest.mark.parametrize("n_levels", [2, 3, 4, 5, 7, 8, 16, 256])
def test_initial_levels_match_scipy_ndtri(n_levels):
    expected = ndtri((np.arange(n_levels) + 0.5) / n_levels)
    np.testing.assert_allclose(_initial_gaussian_levels(n_levels), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("n_levels", [2, 3, 4, 8, 16, 32])
def test_gaussian_tables_equal_scipy_ones(n_levels):
    bounds, levels = _gaussian_table(n_levels)
    ref_bounds, ref_levels = _scipy_table(n_levels)
    np.testing.assert_allclose(bounds, ref_bounds, rtol=0, atol=1e-12)
    np.testing.assert_allclose(levels, ref_levels, rtol=0, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("n_levels", [64, 128, 256])
def test_wide_gaussian_tables_close_to_scipy_ones(n_levels):
    # From 64 levels on the Lloyd fixed point is approached so slowly (128 and 256 stop at the
    # 100,000-iteration cap in both versions) that ulp-level differences between scipy's and the
    # standard library's erfc add up along the slow mode: measured 1.5e-12 (64), 2.7e-12 (128),
    # 5.2e-12 (256), against level spacings above 1e-2.
    bounds, levels = _gaussian_table(n_levels)
    ref_bounds, ref_levels = _scipy_table(n_levels)
    np.testing.assert_allclose(bounds, ref_bounds, rtol=0, atol=1e-11)
    np.testing.assert_allclose(levels, ref_levels, rtol=0, atol=1e-11)


def test_core_path_imports_no_optional_package():
    """In a fresh interpreter where every optional package fails to import, the engine, every
    registered training-free quantizer and the index factory still fit, encode and search."""
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in {OPTIONAL_PACKAGES!r}:
                    raise ModuleNotFoundError(f"{{name}} is not part of the core install")

        sys.meta_path.insert(0, Block())
        import numpy as np
        import qama_rs
        from qama_rs.index import available_codecs, index_factory

        rng = np.random.default_rng(0)
        x = rng.standard_normal((600, 64)).astype(np.float32)
        # Every codec name of the registry (the quantizer classes by their names too; a bits family at
        # 2 bits) and the factory's transforms and refinements.
        codecs = [name.replace("{{b}}", "2") for name in available_codecs() if not name.startswith("QamaAsym")]
        specs = [*codecs, "Hadamard,LloydMax2", "Orthogonal,Int8", "Sign,Rescore(LloydMax2,50)", "Thermo1,RFlat(50)"]
        for spec in specs:
            index = index_factory(64, spec)
            index.train(x)
            index.add(x)
            D, I = index.search(x[:5], 3)
            assert (I[:, 0] == np.arange(5)).all(), spec
        q = qama_rs.Quantizer.fit(x, "2bit")
        D, I = qama_rs.search(q.encode(x[:4]), q.encode(x), 1)
        assert (I[:, 0] == np.arange(4)).all() and (D[:, 0] == 0).all()
        print("core-ok", len(specs))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "core-ok" in done.stdout
