"""Shared fixtures. Tests import emovid_core from the checkout and load the pack's nodes headless."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("EMOVID_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def pack_nodes():
    """The pack's NODE_CLASS_MAPPINGS, loaded headless exactly as `emovid run` loads them."""
    from emovid_core.schema import load_pack_nodes

    return load_pack_nodes()[0]


@pytest.fixture()
def out_dir(tmp_path):
    """An output folder installed as the runtime output directory for the test."""
    from emovid_core import runtime

    out = tmp_path / "out"
    with runtime.configured(output_dir=out):
        yield out
