#!/usr/bin/env bash
# Installs qama-rs with every extra into ./.venv (created if missing), building the Rust extension
# in release mode. Idempotent; pip's cache (~/.cache/pip) is reused, so a re-run takes seconds
# plus the Rust build. Set QAMA_VENV to use another environment folder.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${QAMA_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# The CPU-only machines here run the PyPI torch build (it carries CUDA libraries; pip caches them).
"$venv/bin/python" -m pip install --quiet --progress-bar off -e ".[dev]"
echo "qama-rs installed into $venv ($("$venv/bin/python" -c 'import qama_rs; print(qama_rs.__version__)'))"
