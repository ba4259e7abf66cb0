"""Resumable training state: LoRA weights, AdamW state, the step reached and the RNG states, in safetensors + JSON.

No pickle anywhere (the pack reads and writes safetensors only): tensors go to safetensors, everything else
(step, param groups, Python's and NumPy's RNG state) to ``state.json``. The folder is replaced atomically (a new
folder, then renames), so Ctrl-C or a crash while saving leaves the previous state whole.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

STATE_DIR = "resume"
STATE_FORMAT = 1


def trainable(model) -> dict:
    """name -> parameter for the parameters being trained (the LoRA A/B weights)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def save_state(out: str | Path, model, optimizer, step: int, info: dict) -> Path:
    """Write ``out/resume/`` for a run that has completed ``step`` optimizer steps."""
    import numpy as np
    import torch

    from ..atomic import save_safetensors, write_json

    out = Path(out)
    final = out / STATE_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{STATE_DIR}-", dir=out))
    try:
        params = trainable(model)
        save_safetensors({n: p.detach().to("cpu").contiguous() for n, p in params.items()}, tmp / "lora.safetensors")
        sd = optimizer.state_dict()
        tensors = {}
        for idx, st in sd["state"].items():
            for k, v in st.items():
                tensors[f"state.{idx}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().to("cpu").contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = s
        save_safetensors(tensors, tmp / "optimizer.safetensors")
        groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
        np_state = np.random.get_state()
        py_state = random.getstate()
        write_json(tmp / "state.json", {
            "format": STATE_FORMAT, "step": int(step), "param_names": list(params), "param_groups": groups, **info,
            "rng": {"python": [py_state[0], list(py_state[1]), py_state[2]],
                    "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]},
        })
        old = out / f".{STATE_DIR}-old"
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_state_info(out: str | Path) -> dict:
    """``state.json`` of ``out/resume`` (or of ``out`` itself when it is the resume folder)."""
    folder = state_folder(out)
    try:
        info = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder} holds no readable training state ({exc}); resume from the --out folder of an "
                         "`emovid train` run") from None
    if info.get("format") != STATE_FORMAT:
        raise ValueError(f"{folder}: training state format {info.get('format')!r} is not {STATE_FORMAT}")
    return info


def state_folder(out: str | Path) -> Path:
    p = Path(out).expanduser()
    return p if (p / "state.json").is_file() else p / STATE_DIR


def load_state(out: str | Path, model, optimizer) -> dict:
    """Restore LoRA weights, optimizer and RNG states from ``out/resume``; returns its ``state.json``."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    folder = state_folder(out)
    info = read_state_info(out)
    params = trainable(model)
    saved = load_file(str(folder / "lora.safetensors"))
    if sorted(saved) != sorted(params) or list(params) != info["param_names"]:
        raise ValueError(f"{folder}: the saved LoRA has {len(saved)} tensors that do not match the {len(params)} being trained "
                         "(another model, rank or target set?); resume with the settings of the original run")
    with torch.no_grad():
        for n, p in params.items():
            if tuple(saved[n].shape) != tuple(p.shape):
                raise ValueError(f"{folder}: {n} has shape {tuple(saved[n].shape)}, the model needs {tuple(p.shape)}")
            p.copy_(saved[n].to(p.device, p.dtype))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("state."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in info["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    py = info["rng"]["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = info["rng"]["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    return info
