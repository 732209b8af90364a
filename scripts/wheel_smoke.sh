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
from qama_rs.engine import AsymmetricIndex, Index, Quantizer, TwoStageIndex
from qama_rs.index import index_factory
from qama_rs.quantizers import make_method

assert "site-packages" in qama_rs.__file__, qama_rs.__file__  # the installed wheel, not the checkout
for absent in ("scipy", "torch", "maturin", "pymilvus"):
    assert importlib.util.find_spec(absent) is None, f"{absent} is installed in the clean venv"

rng = np.random.default_rng(0)
docs = rng.standard_normal((2000, 64)).astype(np.float32)
queries = docs[:20] + 0.05 * rng.standard_normal((20, 64)).astype(np.float32)
for name in ("lloyd_max_gauss", "binary_median", "int8"):
    method = make_method(name).fit(docs)
    index = AsymmetricIndex(method.reconstruction_values)
    index.add_codes(method.encode(docs))
    scores, ids = index.search(method.prepare_query(queries), 5)
    assert ids.shape == (20, 5) and (ids[:, 0] == np.arange(20)).mean() >= 0.9, name
    print(f"{name}: fit, encode and asymmetric search ok ({method.bytes_per_vector} B/vector)")

quantizer = Quantizer.fit(docs, "2bit")
hamming = Index(quantizer)
hamming.add(docs)
D, I = hamming.search(queries, 5)
assert (I[:, 0] == np.arange(20)).all()
two_stage = TwoStageIndex(hamming, docs, k_prime=50)
D, I = two_stage.search(queries, 5)
assert (I[:, 0] == np.arange(20)).all()
print(f"Quantizer/Index/TwoStageIndex ok; backend {qama_rs.best_backend()}; {qama_rs.cpu_description()}")

for spec in ("LloydMax2", "Thermo2", "Sign,Rescore(LloydMax2,50)"):
    unified = index_factory(64, spec)
    unified.train(docs)
    unified.add(docs)
    D, I = unified.search(queries, 5)
    assert (I[:, 0] == np.arange(20)).all(), spec
print("unified Index (index_factory: LloydMax2, Thermo2, Sign + Rescore) ok")
print(f"wheel smoke test passed (Python {sys.version.split()[0]}, NumPy {np.__version__})")
EOF
