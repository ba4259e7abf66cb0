"""Shared fixtures for the whole suite. Tests import emovid_core from the checkout and load the pack's nodes headless.

Layout (docs/testing.md): one folder per package (tests/lora/, tests/dataset/, tests/host/, ...), each with a
conftest.py saying what it holds and, where its files share builders or assertions, a utils.py imported as
``from tests.lora.utils import ...``; helpers several folders use live in tests/helpers/; cross-cutting rules
(architecture, docs, packaging, a new machine, atomic writes, refusals) stay at this level. A new folder needs no
__init__.py: pytest runs with --import-mode=importlib (pyproject.toml).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# A new machine for every cache, in one place, before anything imports the pack (or torch, diffusers, matplotlib):
# the pack's own cache (the tiny models), Hugging Face's and every XDG cache (matplotlib's font list, torch's) live in
# one temporary folder made for this session and removed after it. The suite never reads or writes the user's
# ~/.cache, so a model left there by an earlier run can never make a red run green (tests/test_new_machine.py).
TEST_CACHE = Path(tempfile.mkdtemp(prefix="emovid-test-cache-"))
atexit.register(shutil.rmtree, TEST_CACHE, ignore_errors=True)
os.environ["EMOVID_CACHE"] = str(TEST_CACHE / "emovid")
os.environ["HF_HOME"] = str(TEST_CACHE / "huggingface")
os.environ["XDG_CACHE_HOME"] = str(TEST_CACHE / "xdg")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("EMOVID_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def pack_nodes():
    """The pack's NODE_CLASS_MAPPINGS, loaded headless exactly as `emovid run` loads them."""
    from emovid_core.host.schema import load_pack_nodes

    return load_pack_nodes()[0]


@pytest.fixture()
def out_dir(tmp_path):
    """An output folder installed as the runtime output directory for the test."""
    from emovid_core import runtime

    out = tmp_path / "out"
    with runtime.configured(output_dir=out):
        yield out


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory):
    """The synthetic EmoVid sample set (emovid dataset make-sample), written once per test session."""
    from emovid_core.dataset.synthetic import make_sample

    root = tmp_path_factory.getbasetemp() / "emovid_sample"
    make_sample(root)
    return root


@pytest.fixture(scope="session")
def indexed_root(sample_root, tmp_path_factory):
    """A copy of the sample set with its index (the paper's attributes measured), written once per session."""
    import shutil

    from emovid_core.dataset.indexer import index_dataset

    root = tmp_path_factory.getbasetemp() / "emovid_sample_indexed"
    if not (root / "emovid_index.csv").is_file():
        shutil.copytree(sample_root, root, dirs_exist_ok=True)
        index_dataset(root, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models are overhead-bound: one torch thread is faster, and far steadier on a shared 2-core machine.
    Use it per module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``); the count is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
