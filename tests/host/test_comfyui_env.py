"""The opt-in real-ComfyUI tests find ComfyUI's Python the way users run it, or skip saying why (never crash)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.comfyui_env import comfyui_or_skip, find_comfyui


def _fake_checkout(path, importable=False):
    (path / "comfy").mkdir(parents=True)
    (path / "main.py").write_text("")
    if importable:  # enough of ComfyUI's layout for the import probe: folder_paths + comfy.cli_args
        (path / "comfy" / "cli_args.py").write_text("")
        (path / "folder_paths.py").write_text("import comfy.cli_args\n")
    return path


@pytest.fixture()
def env(monkeypatch):
    monkeypatch.delenv("COMFYUI_PYTHON", raising=False)
    monkeypatch.delenv("COMFYUI_DIR", raising=False)
    return monkeypatch


def test_no_comfyui_dir_skips(env):
    assert find_comfyui()[1] is None
    with pytest.raises(pytest.skip.Exception, match="set COMFYUI_DIR"):
        comfyui_or_skip()


def test_checkout_without_venv_skips_with_the_reason_instead_of_crashing(env, tmp_path):
    """The reported bug: COMFYUI_DIR set, no $COMFYUI_DIR/.venv -> FileNotFoundError in test_lora_comfyui_real."""
    from tests.lora import test_lora_comfyui_real

    env.setenv("COMFYUI_DIR", str(_fake_checkout(tmp_path / "ComfyUI")))
    _dir, python, why = find_comfyui()
    assert python is None and "COMFYUI_PYTHON" in why and "cannot import ComfyUI" in why
    with pytest.raises(pytest.skip.Exception, match="no Python for ComfyUI"):
        test_lora_comfyui_real.test_real_comfyui_matches_core_lora_loader(tmp_path / "work")


def test_not_a_checkout_and_a_bad_comfyui_python_skip(env, tmp_path):
    env.setenv("COMFYUI_DIR", str(tmp_path))
    assert "not a ComfyUI checkout" in find_comfyui()[2]
    env.setenv("COMFYUI_DIR", str(_fake_checkout(tmp_path / "ComfyUI")))
    env.setenv("COMFYUI_PYTHON", str(tmp_path / "no_python"))
    assert "not an executable" in find_comfyui()[2]


def test_python_is_found_from_env_venv_or_the_current_interpreter(env, tmp_path):
    comfy = _fake_checkout(tmp_path / "ComfyUI", importable=True)
    env.setenv("COMFYUI_DIR", str(comfy))
    # The current interpreter imports the (fake) checkout's modules and has torch: it is used.
    assert find_comfyui()[1] == sys.executable
    # The checkout's own venv wins over it ...
    venv_py = comfy / ".venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    os.symlink(sys.executable, venv_py)
    assert find_comfyui()[1] == str(venv_py)
    # ... and COMFYUI_PYTHON over both.
    env.setenv("COMFYUI_PYTHON", sys.executable)
    assert comfyui_or_skip() == (comfy.resolve(), sys.executable)
    assert subprocess.run([find_comfyui()[1], "-c", "pass"]).returncode == 0
