"""The suite behaves like a new machine: every cache is a fresh temporary folder (conftest), decided when used.

On a machine that never ran the pack there is no ~/.cache/emovid; tests that pass only because an earlier run left
the tiny models there hide a red CI run. These tests prove the cache location follows the environment at the moment
of use and that a run of the suite neither reads nor writes the user's home.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from emovid_core.wan.tiny import cache_root, ensure_tiny, tiny_dir
from emovid_core.wan.variants import all_variants, get_variant
from tests import conftest

ROOT = Path(__file__).resolve().parent.parent


def test_every_cache_points_at_the_sessions_temporary_folder():
    home = Path.home().resolve()
    for var in ("EMOVID_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        path = Path(os.environ[var]).resolve()
        assert path.is_relative_to(conftest.TEST_CACHE.resolve()), var
        assert not path.is_relative_to(home / ".cache"), var
    assert cache_root() == Path(os.environ["EMOVID_CACHE"])


def test_cache_location_is_decided_when_used_not_at_registration(tmp_path, monkeypatch):
    all_variants()  # the tiny variants are registered now, under the session cache
    before = get_variant("tiny-t2v").config_dir("transformer")
    assert before.is_relative_to(conftest.TEST_CACHE)
    monkeypatch.setenv("EMOVID_CACHE", str(tmp_path / "moved"))
    moved = get_variant("tiny-t2v").config_dir("transformer")
    assert moved == tiny_dir("t2v") / "transformer" and moved.is_relative_to(tmp_path / "moved")
    assert get_variant("tiny-i2v").config_dir("image_processor").is_relative_to(tmp_path / "moved")


def test_tiny_model_builds_in_the_test_cache():
    folder = ensure_tiny("t2v")
    assert folder.is_relative_to(conftest.TEST_CACHE)
    assert get_variant("tiny-t2v").config("transformer")["num_layers"] == 2


def test_a_run_on_a_new_machine_leaves_the_home_folder_untouched(tmp_path):
    """Run tests in a child pytest whose HOME is an empty folder, with no cache variable set: nothing appears there."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("EMOVID_CACHE", "HF_HOME", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    here = Path(__file__).resolve().relative_to(ROOT).as_posix()
    tests = [f"{here}::{name}" for name in ("test_tiny_model_builds_in_the_test_cache",
                                            "test_every_cache_points_at_the_sessions_temporary_folder")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert left == [], f"the run wrote into the home folder: {left}"
