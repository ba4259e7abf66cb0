#!/usr/bin/env bash
# Set up the pack's virtual environment (idempotent) and run one job in it.
#   bash scripts/dev.sh demo [ARGS]   -> emovid demo (headless, tiny built-in model, synthetic data)
#   bash scripts/dev.sh test [ARGS]   -> ruff + pytest, then the pixel-layer tests again on the OpenCV fallback
#   bash scripts/dev.sh setup         -> only set up .venv
# Needs only Python >= 3.10 (3.11 recommended). Honours EMOVID_VENV (default: <repo>/.venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EMOVID_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
cd "$ROOT"

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating virtual environment in $VENV"
    "$PY" -m venv "$VENV"
  fi
  local vpy="$VENV/bin/python"
  # A CPU torch first: an unpinned torch pulled in as a dependency would be a multi-GB CUDA build.
  if ! "$vpy" -c "import torch" >/dev/null 2>&1; then
    echo "[setup] installing torch==2.13.0 (CPU)"
    "$vpy" -m pip install -q "torch==2.13.0" || "$vpy" -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  fi
  local stamp="$VENV/.emovid-installed"
  local want
  want="$(cat pyproject.toml requirements.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing ComfyUI-EmoVid and its dependencies"
    # transformers<5: ComfyUI's own requirements cap it, so test against what a ComfyUI install has.
    # [fast]: numba for the fused pixel kernels; the tests run both those and the OpenCV fallback (below).
    # [cluster]: Ray, so tests/cluster/ runs a real two-node cluster.
    "$vpy" -m pip install -q -e ".[dev,fast,cluster]" "transformers<5"
    echo "$want" > "$stamp"
  fi
}

cmd="${1:-}"; shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/emovid" demo "$@" ;;
  test)
    setup
    "$VENV/bin/ruff" check .
    "$VENV/bin/python" -m pytest -q "$@"
    # The suite above used the numba kernels (auto); the OpenCV fallback must give the same results.
    if [ $# -eq 0 ]; then
      echo "[test] pixel layer, attributes and grading again with EMOVID_PIXELS=opencv"
      EMOVID_PIXELS=opencv exec "$VENV/bin/python" -m pytest -q tests/attributes tests/grading
    fi ;;
  *) echo "usage: bash scripts/dev.sh {demo|test|setup} [ARGS]" >&2; exit 2 ;;
esac
