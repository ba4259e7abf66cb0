#!/usr/bin/env bash
# Test both ends of the supported dependency range (README: Install into ComfyUI, tested ranges).
#   bash scripts/check_dep_range.sh [oldest|newest]...    (default: both)
# Each end gets a fresh virtual environment with the pack installed from pyproject.toml plus the pins below, then
# runs the tests that exercise diffusers/transformers/peft. The everyday venv (scripts/dev.sh) is the third point:
# newest diffusers with transformers 4.x, the pairing a ComfyUI 0.3.64 install has.
#   oldest: diffusers 0.35.0 + transformers 4.51.0 (the declared minimums). Measured below them: diffusers 0.33 has
#           no pos_embed_seq_len (the shipped configs set it), 0.34's own Wan LoRA loader rejects ComfyUI-format
#           .alpha keys, transformers 4.50's umt5 from_pretrained keeps other tensors in fp32 than the single files.
#   newest: diffusers 0.39.0 (last before huggingface-hub>=1.23) + the newest transformers pip picks (5.x)
# Honours EMOVID_DEPCHECK_DIR (where the venvs live; default: a temporary folder, removed at the end) and PYTHON.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
ENDS=("$@"); [ ${#ENDS[@]} -eq 0 ] && ENDS=(oldest newest)
TESTS=(tests/wan/test_wan.py tests/nodes/test_wan_nodes.py tests/lora/test_lora_diffusers.py tests/emotion/test_emotion_conditioning.py tests/test_packaging.py)
if [ -n "${EMOVID_DEPCHECK_DIR:-}" ]; then WORK="$EMOVID_DEPCHECK_DIR"; mkdir -p "$WORK"; else WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT; fi

pins() {
  case "$1" in
    oldest) echo "diffusers==0.35.0 transformers==4.51.0" ;;
    newest) echo "diffusers==0.39.0" ;;
    *) echo "unknown end '$1' (use oldest or newest)" >&2; exit 2 ;;
  esac
}

status=0
for end in "${ENDS[@]}"; do
  venv="$WORK/$end"
  echo "[dep-range] $end: $(pins "$end") in $venv"
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  # A CPU torch first (an unpinned one would be a multi-GB CUDA build), as scripts/dev.sh does.
  "$venv/bin/python" -m pip install -q "torch==2.13.0"
  t0=$(date +%s)
  # shellcheck disable=SC2046
  "$venv/bin/python" -m pip install -q -e "$ROOT[dev]" $(pins "$end")
  echo "[dep-range] $end: resolved and installed in $(( $(date +%s) - t0 )) s"
  "$venv/bin/python" -m pip list --format=freeze 2>/dev/null | grep -iE '^(diffusers|transformers|huggingface.hub|tokenizers|peft|accelerate|opencv.*)==' | tr '\n' ' '; echo
  if ! (cd "$ROOT" && EMOVID_CACHE="$(mktemp -d)" EMOVID_NO_PROGRESS=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}"); then
    echo "[dep-range] $end: FAILED" >&2; status=1
  fi
done
exit $status
