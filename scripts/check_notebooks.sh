#!/usr/bin/env bash
# Executes every notebook under notebooks/ against a run folder and fails if any cell fails.
# Needs Python with: pip install polars matplotlib nbclient nbformat ipykernel
# Usage: scripts/check_notebooks.sh [RUN_DIR]   (default out/demo/run, written by `ascqr demo`)
set -euo pipefail
cd "$(dirname "$0")/.."
export ASCQR_RUN="${1:-out/demo/run}"
if [ ! -f "$ASCQR_RUN/manifest.json" ]; then
  echo "no run folder at $ASCQR_RUN: run \`cargo run --release -- demo\` first, or pass a folder written by \`ascqr run\`" >&2
  exit 2
fi
python3 - <<'PY'
import sys, nbformat
from pathlib import Path
from nbclient import NotebookClient
failed = 0
for path in sorted(Path("notebooks").glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3").execute()
        print(f"ok      {path}")
    except Exception as e:  # nbclient raises CellExecutionError with the cell's traceback
        failed += 1
        print(f"FAILED  {path}\n{e}", file=sys.stderr)
sys.exit(1 if failed else 0)
PY
