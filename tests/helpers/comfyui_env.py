"""Where the opt-in real-ComfyUI tests find ComfyUI and its Python, or why they skip (one helper for both files).

ComfyUI is not on PyPI and these machines may not have it: tests/host/test_comfyui_integration.py and
tests/lora/test_lora_comfyui_real.py run only when ``COMFYUI_DIR`` names a ComfyUI checkout. Its interpreter is found
the way users run ComfyUI: ``COMFYUI_PYTHON`` when set, else the checkout's own venv (``.venv`` or ``venv``), else
the interpreter running the tests when it can import ComfyUI's modules from ``COMFYUI_DIR`` (a user who installed
ComfyUI's requirements into their environment). Anything else is a skip that says what to set.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

VENV_PYTHONS = (".venv/bin/python", "venv/bin/python", ".venv/Scripts/python.exe", "venv/Scripts/python.exe")
# What "can run ComfyUI" means for the probe: its path-based modules import and torch is there.
_PROBE = "import sys; sys.path.insert(0, sys.argv[1]); import folder_paths, comfy.cli_args, torch"


@functools.lru_cache(maxsize=None)
def _can_import_comfy(python: str, comfy_dir: str) -> str | None:
    """None when ``python`` imports ComfyUI from ``comfy_dir``, else the reason it cannot."""
    try:
        proc = subprocess.run([python, "-c", _PROBE, comfy_dir], cwd=comfy_dir, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


def find_comfyui() -> tuple[Path | None, str | None, str]:
    """(COMFYUI_DIR, its python, "") when both are usable, else (dir or None, None, the reason to skip)."""
    raw = os.environ.get("COMFYUI_DIR", "").strip()
    if not raw:
        return None, None, "set COMFYUI_DIR to a ComfyUI 0.3.64 checkout to run the real-ComfyUI tests"
    comfy_dir = Path(raw).expanduser().resolve()
    if not (comfy_dir / "main.py").is_file() or not (comfy_dir / "comfy").is_dir():
        return comfy_dir, None, f"COMFYUI_DIR={raw} is not a ComfyUI checkout (no main.py and comfy/ there)"
    explicit = os.environ.get("COMFYUI_PYTHON", "").strip()
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            return comfy_dir, None, f"COMFYUI_PYTHON={explicit} is not an executable file"
        return comfy_dir, explicit, ""
    for rel in VENV_PYTHONS:
        if (comfy_dir / rel).is_file():
            return comfy_dir, str(comfy_dir / rel), ""
    why = _can_import_comfy(sys.executable, str(comfy_dir))
    if why is None:
        return comfy_dir, sys.executable, ""
    return comfy_dir, None, (f"no Python for ComfyUI: COMFYUI_PYTHON is unset, {comfy_dir} has no "
                             f"{' or '.join(VENV_PYTHONS[:2])}, and this interpreter ({sys.executable}) cannot import "
                             f"ComfyUI from it ({why}); set COMFYUI_PYTHON to the python that runs ComfyUI")


def comfyui_or_skip() -> tuple[Path, str]:
    """(COMFYUI_DIR, python) or ``pytest.skip`` with the reason."""
    import pytest

    comfy_dir, python, why = find_comfyui()
    if python is None:
        pytest.skip(why)
    return comfy_dir, python
