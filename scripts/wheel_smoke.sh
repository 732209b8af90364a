#!/usr/bin/env bash
# Builds the release wheel (manylinux2014 = manylinux_2_17, x86_64, abi3) and the sdist, installs the
# wheel ALONE into a fresh venv (no build tools, no extras: numpy and tqdm only) and runs a smoke test
# of the core install from outside the source tree. Called from .ci/run after scripts/setup.sh.
#
# This machine's glibc (2.36) is newer than 2.17, so maturin links through zig (`ziglang` from PyPI,
# in the dev extra) to target glibc 2.17; the wheel is cross-built into target/x86_64-unknown-linux-gnu,
# so it never invalidates the dev build in target/release. Outputs: target/wheel-smoke/dist/.
#   QAMA_VENV: the dev environment with maturin + ziglang (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(cd "${QAMA_VENV:-.venv}" && pwd)"
# maturin finds zig as `python -m ziglang` on PATH: the dev venv's python must come first.
export PATH="$venv/bin:$PATH"
out=target/wheel-smoke
rm -rf "$out"
mkdir -p "$out/dist"

echo "== wheel (maturin build --release --zig, compatibility from pyproject.toml: manylinux2014)"
"$venv/bin/maturin" build --release --zig --compatibility manylinux2014 -i "$venv/bin/python" \
  --out "$out/dist" --quiet
"$venv/bin/maturin" sdist --out "$out/dist" >"$out/sdist.log" 2>&1 || { cat "$out/sdist.log" >&2; exit 1; }
ls -1 "$out/dist"
shopt -s nullglob
wheels=("$out"/dist/qama_rs-*-cp310-abi3-*manylinux_2_17_x86_64*.whl)
sdists=("$out"/dist/qama_rs-*.tar.gz)
if [ "${#wheels[@]}" -ne 1 ] || [ "${#sdists[@]}" -ne 1 ]; then
  echo "expected one abi3 manylinux_2_17 x86_64 wheel and one sdist in $out/dist" >&2
  exit 1
fi
wheel="$(cd "$(dirname "${wheels[0]}")" && pwd)/$(basename "${wheels[0]}")"

echo "== fresh venv with the wheel alone"
"$venv/bin/python" -m venv --clear "$out/venv"
"$out/venv/bin/python" -m pip install --quiet --progress-bar off "$wheel"
# Nothing but the wheel and its two dependencies (numpy, tqdm) may be installed.
extra="$("$out/venv/bin/python" -m pip list --format=freeze --exclude-editable |
  grep -viE '^(qama-rs|qama_rs|numpy|tqdm|pip|setuptools|wheel)==' || true)"
if [ -n "$extra" ]; then
  echo "the core install pulled in more than numpy and tqdm:" >&2
  echo "$extra" >&2
  exit 1
fi

echo "== smoke test (outside the source tree)"
cd "$out"
venv/bin/python - <<'EOF'
import importlib.util
import sys

import numpy as np

import qama_rs
from qama_rs import Quantizer, index_factory

assert "site-packages" in qama_rs.__file__, qama_rs.__file__  # the installed wheel, not the checkout
for absent in ("scipy", "torch", "maturin", "pymilvus", "langchain_core", "llama_index"):
    assert importlib.util.find_spec(absent) is None, f"{absent} is installed in the clean venv"

rng = np.random.default_rng(0)
docs = rng.standard_normal((2000, 64)).astype(np.float32)
queries = docs[:20] + 0.05 * rng.standard_normal((20, 64)).astype(np.float32)
# Every codec family through the one index: float-query per-dimension codes, byte tables, Hamming codes,
# two-stage rescoring, a partitioned index (k-means in Rust), and a filter inside the scan.
for spec in ("LloydMax2", "BinaryMedian", "Int8", "pca_nibble_scaled(budget_bytes=16)", "pca_pq(m=8)", "Thermo2",
             "Sign,Rescore(LloydMax2,50)", "IVF16,pca_nibble_scaled(budget_bytes=16)"):
    index = index_factory(64, spec)
    index.train(docs)
    index.add(docs)
    D, I = index.search(queries, 5, nprobe=16) if index.nlist else index.search(queries, 5)
    assert I.shape == (20, 5) and (I[:, 0] == np.arange(20)).mean() >= 0.9, spec
    _, F = index.search(queries, 5, allowed=np.arange(0, 2000, 2))
    assert (F % 2 == 0).all() and (F >= 0).all(), spec
    print(f"{spec}: train, add, search, filtered search ok ({index.bytes_per_vector} B/vector)")

quantizer = Quantizer.fit(docs, "2bit")
D, I = qama_rs.search(quantizer.encode(queries), quantizer.encode(docs), 5)
assert (I[:, 0] == np.arange(20)).all()
print(f"Quantizer + qama_rs.search ok; isa {qama_rs.best_isa()}; {qama_rs.cpu_description()}")
print(f"wheel smoke test passed (Python {sys.version.split()[0]}, NumPy {np.__version__})")
EOF
