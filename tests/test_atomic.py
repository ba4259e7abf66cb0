"""Atomic writes: a failure mid-write keeps the old file and leaves no temporary file behind."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from emovid_core import atomic


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    atomic.write_text(target, "old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]


def test_json_bytes_and_safetensors_round_trip(tmp_path):
    assert atomic.write_json(tmp_path / "a.json", {"é": 1}).read_text(encoding="utf-8") == '{\n  "é": 1\n}\n'
    assert atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    t = torch.arange(6.0).reshape(2, 3).t()  # non-contiguous on purpose
    path = atomic.save_safetensors({"w": t}, tmp_path / "w.safetensors", {"k": "v"})
    assert torch.equal(load_file(path)["w"], t)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin", "w.safetensors"]
