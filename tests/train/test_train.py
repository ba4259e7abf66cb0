"""Training the emotion LoRA on the tiny Wan2.1 models (CPU, 1 thread) from the synthetic sample set.

What is asserted is behaviour on real data paths: clips decoded from real video files, real (tiny) encoders and
transformer, real safetensors files loaded back through the pack's own LoRA loader.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from emovid_core.dataset.filters import Filter
from emovid_core.train import TrainConfig, open_dataset, resolve_model, select_clips, train
from emovid_core.train import models as train_models
from emovid_core.train.data import LatentCache, default_cache_dir
from emovid_core.train.loop import flow_loss, flow_schedule, read_losses, sample_generator

TINY = dict(frames=9, width=32, height=32, rank=4, dtype="float32", lr=1e-3)


def _config(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw}).check()


def _selection(sample_root, config, n=None, **flt):
    sel = select_clips(open_dataset(sample_root), config, Filter(**flt) if flt else None, progress=False)
    if n:
        sel.items = sel.items[:n]
    return sel


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _probe_input(model, kind: str):
    """A fixed transformer input (latents, timestep, text) for comparing two models' outputs."""
    g = torch.Generator().manual_seed(5)
    c = model.config
    x = torch.randn(1, c.in_channels, 3, 4, 4, generator=g)
    kw = dict(hidden_states=x, timestep=torch.tensor([700.0]), encoder_hidden_states=torch.randn(1, 20, c.text_dim, generator=g),
              return_dict=False)
    if kind == "i2v":
        kw["encoder_hidden_states_image"] = torch.randn(1, 17, c.image_dim, generator=g)
    return kw


def _lora_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


# ----------------------------------------------------------------------------------------------- the recipe


def test_flow_schedule_is_diffsynths():
    s = flow_schedule(5.0, 1000)
    assert len(s.timesteps) == 1000
    assert float(s.sigmas[0]) == 1.0 and 0 < float(s.sigmas[-1]) < 0.01
    assert abs(float(s.sigmas.mean()) - 0.75) < 0.02  # high-noise heavy after the shift
    assert abs(float(s.weights.mean()) - 1.0) < 1e-5 and float(s.weights.min()) == 0.0
    assert 2.0 < float(s.weights.max()) < 2.15


def test_memory_estimate_counts_the_real_models():
    from emovid_core.train import memory
    from emovid_core.wan.variants import get_variant

    for kind in ("t2v", "i2v"):  # exact against the real modules
        m = resolve_model(tiny=kind)
        assert memory.transformer_params(m.transformer_config()) == sum(
            p.numel() for p in m.load_transformer("cpu", torch.float32).parameters())

    v = get_variant("t2v-14b")
    params = memory.transformer_params(v.config("transformer"))
    assert abs(params - 14.29e9) / 14.29e9 < 0.005
    assert memory.lora_params(5120, 13824, 40, 32) == 153_354_240  # DiffSynth's rank-32 LoRA on 14B
    assert memory.lora_params(1536, 8960, 30, 32) == 43_745_280
    est = memory.estimate(params=params, dim=5120, ffn_dim=13824, num_layers=40, rank=32, frames=81, width=832, height=480,
                          batch=1, dtype="bfloat16", checkpointing=True)
    assert est.tokens == 21 * 30 * 52
    no_ckpt = memory.estimate(params=params, dim=5120, ffn_dim=13824, num_layers=40, rank=32, frames=81, width=832,
                              height=480, batch=1, dtype="bfloat16", checkpointing=False)
    assert no_ckpt.activations > 5 * est.activations


# ------------------------------------------------------------------------------------------- training runs


def test_t2v_ten_steps_write_a_diffsynth_lora_that_reproduces_the_trained_model(sample_root, tmp_path):
    from emovid_core.lora import apply_lora_stack_to_diffusers, load_lora

    cfg = _config(steps=10, save_every=5)
    sel = _selection(sample_root, cfg, types="animation")
    model = resolve_model(tiny="t2v")
    out = tmp_path / "run"
    res = train(cfg, sel, model, out, device="cpu", progress=False, return_model=True)
    assert res.steps == 10 and not res.interrupted and len(res.losses) == 10
    assert {"step-5.safetensors", "step-10.safetensors", "training.json", "loss.csv", "loss.png", "resume"} <= set(_files(out))
    rec = json.loads((out / "training.json").read_text())
    assert rec["status"] == "done" and rec["seed"] == 0 and rec["config"]["rank"] == 4
    assert rec["dataset"]["clips"] == sel.clip_ids and len(rec["dataset"]["clips"]) == 24
    assert {"torch", "diffusers", "peft", "accelerate"} <= set(rec["versions"])
    rows = list(csv.DictReader((out / "loss.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 11))
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    keys = _lora_tensors(out / "step-10.safetensors")
    assert all(k.startswith("blocks.") and k.endswith((".lora_A.default.weight", ".lora_B.default.weight")) for k in keys)
    assert len(keys) == 2 * 2 * 10  # 2 blocks x 10 target linears x A/B, no alpha (DiffSynth)
    lora = load_lora(out / "step-10.safetensors")
    assert lora.source_format == "diffsynth" and not lora.unused_keys
    assert {m.split(".", 2)[2] for m in lora.modules} == {
        "self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q", "cross_attn.k", "cross_attn.v",
        "cross_attn.o", "ffn.0", "ffn.2"}

    base = model.load_transformer("cpu", torch.float32).eval()
    probe = _probe_input(base, "t2v")
    with torch.no_grad():
        before = base(**probe)[0]
        report = apply_lora_stack_to_diffusers(base, [(out / "step-10.safetensors", "emo", 1.0)])
        loaded = base(**probe)[0]
        trained = res.transformer.eval()(**probe)[0]
    assert not report.entries[0].report.skipped and len(report.entries[0].report.applied) == 20
    assert torch.equal(loaded, trained)  # base + loaded LoRA == the trained model, exactly
    assert (loaded - before).abs().max() > 1e-4  # and the LoRA changes the output


def test_i2v_trains_on_the_first_frame_and_loads_on_the_i2v_model(sample_root, tmp_path):
    from emovid_core.lora import apply_lora_stack_to_diffusers

    cfg = _config(steps=3, comfy_copy=True)
    sel = _selection(sample_root, cfg, n=4, types="movie")
    model = resolve_model(tiny="i2v")
    res = train(cfg, sel, model, tmp_path / "i2v", device="cpu", progress=False, return_model=True)
    assert res.steps == 3
    entry = LatentCache(default_cache_dir(), model.encoder_identity, "i2v", cfg).load(sel.items[0])
    assert entry["condition"].shape[0] == 20 and entry["condition"].shape[1:] == entry["latents"].shape[1:]
    assert entry["image_embeds"].shape == (17, 16)  # tiny CLIP: 16 patches + class token, hidden 16
    keys = _lora_tensors(tmp_path / "i2v" / "step-3.safetensors")
    assert not [k for k in keys if "k_img" in k or "v_img" in k]
    comfy = _lora_tensors(tmp_path / "i2v" / "step-3.comfy.safetensors")
    assert all(k.startswith("diffusion_model.blocks.") for k in comfy) and any(k.endswith(".alpha") for k in comfy)
    base = model.load_transformer("cpu", torch.float32).eval()
    probe = _probe_input(base, "i2v")
    with torch.no_grad():
        report = apply_lora_stack_to_diffusers(base, [(tmp_path / "i2v" / "step-3.comfy.safetensors", "emo", 1.0)])
        assert not report.entries[0].report.skipped
        assert torch.equal(base(**probe)[0], res.transformer.eval()(**probe)[0])


def test_overfitting_one_clip_lowers_its_loss_clearly(sample_root, tmp_path):
    cfg = _config(steps=60, lr=1e-2, rank=8, gradient_checkpointing=False, lr_schedule="constant")
    sel = _selection(sample_root, cfg, n=1, types="animation")
    model = resolve_model(tiny="t2v")
    res = train(cfg, sel, model, tmp_path / "fit", device="cpu", progress=False, return_model=True)
    entry = LatentCache(default_cache_dir(), model.encoder_identity, "t2v", cfg).load(sel.items[0])
    sched = flow_schedule()
    tr = res.transformer.eval()

    def loss():  # the same 16 (timestep, noise) draws before and after
        with torch.no_grad():
            return sum(float(flow_loss(tr, entry, sched, sample_generator(99, 0, i), "cpu", torch.float32, "t2v")[0])
                       for i in range(16)) / 16

    after = loss()
    tr.disable_adapters()
    before = loss()
    assert after < 0.85 * before, (before, after)


def test_interrupt_saves_a_checkpoint_and_resume_equals_an_uninterrupted_run(sample_root, tmp_path, monkeypatch):
    cfg = _config(steps=8, epochs=3)
    sel = _selection(sample_root, cfg, n=3, types="sticker")  # 3 steps per epoch: the run crosses two epoch boundaries
    model = resolve_model(tiny="t2v")
    whole = train(cfg, sel, model, tmp_path / "whole", device="cpu", progress=False)
    assert _files(tmp_path / "whole")[:3] == ["epoch-1.safetensors", "epoch-2.safetensors", "loss.csv"]

    from emovid_core.train import loop

    def ctrl_c_in_step_5(schedule, step):  # called once per step, after the backward passes: Ctrl-C mid-step
        if step == 4:
            raise KeyboardInterrupt
        return real(schedule, step)

    real = loop.lr_factor
    monkeypatch.setattr(loop, "lr_factor", ctrl_c_in_step_5)
    part = train(cfg, sel, model, tmp_path / "cut", device="cpu", progress=False)
    monkeypatch.undo()
    assert part.interrupted and part.steps == 4
    state = json.loads((tmp_path / "cut" / "resume" / "state.json").read_text())
    assert state["step"] == 4 and state["interrupted"] is True
    assert json.loads((tmp_path / "cut" / "training.json").read_text())["status"] == "interrupted"
    rest = train(cfg, sel, model, tmp_path / "cut", device="cpu", progress=False, resume=True)
    assert rest.steps == 8 and rest.losses == whole.losses[4:]
    a, b = _lora_tensors(tmp_path / "whole" / "step-8.safetensors"), _lora_tensors(tmp_path / "cut" / "step-8.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "whole" / "loss.csv").read_text().splitlines()[1:] != []
    steps_logged = [r["step"] for r in csv.DictReader((tmp_path / "cut" / "loss.csv").open())]
    assert steps_logged == [str(i) for i in range(1, 9)]
    with pytest.raises(ValueError, match="different settings: lr"):
        train(_config(steps=8, epochs=3, lr=5e-4), sel, model, tmp_path / "cut", device="cpu", progress=False, resume=True)


def test_cache_is_reused_so_training_needs_no_encoder(sample_root, tmp_path, monkeypatch):
    cfg = _config(steps=2)
    sel = _selection(sample_root, cfg, n=2, types="movie", emotions="fear")
    model = resolve_model(tiny="t2v")
    cache = tmp_path / "cache"
    first = train(cfg, sel, model, tmp_path / "a", cache_dir=cache, device="cpu", progress=False)
    assert first.encoded == 2

    def no_encoders(*a, **k):
        raise AssertionError("the encoders were loaded although every clip is cached")

    monkeypatch.setattr(train_models.ModelSource, "load_encoders", no_encoders)
    again = train(cfg, sel, model, tmp_path / "b", cache_dir=cache, device="cpu", progress=False)
    assert again.encoded == 0 and again.losses == first.losses
    monkeypatch.undo()
    bigger = train(_config(steps=2, width=48), sel, model, tmp_path / "c", cache_dir=cache, device="cpu", progress=False)
    assert bigger.encoded == 2  # another size is another cache entry


def test_sample_videos_per_emotion_at_each_checkpoint_leave_training_unchanged(sample_root, tmp_path, monkeypatch):
    from emovid_core import video_io

    cfg = _config(steps=2, save_every=1, sample_emotions=("fear", "awe"), sample_steps=2)
    sel = _selection(sample_root, cfg, n=3, types="movie")
    model = resolve_model(tiny="t2v")
    loads = []
    real = train_models.ModelSource.load_encoders
    monkeypatch.setattr(train_models.ModelSource, "load_encoders", lambda self, *a: loads.append(1) or real(self, *a))
    res = train(cfg, sel, model, tmp_path / "s", cache_dir=tmp_path / "cache", device="cpu", progress=False)
    assert len(loads) == 1  # the sample prompts were encoded with the clips; no text encoder at the checkpoints
    for step in ("step-1", "step-2"):
        for emotion in ("fear", "awe"):
            info = video_io.probe(tmp_path / "s" / "samples" / step / f"{emotion}.mp4")
            assert (info.frames, info.width, info.height) == (9, 32, 32)
    plain = train(_config(steps=2, save_every=1), sel, model, tmp_path / "p", cache_dir=tmp_path / "cache", device="cpu",
                  progress=False)
    assert plain.losses == res.losses
    a, b = _lora_tensors(tmp_path / "s" / "step-2.safetensors"), _lora_tensors(tmp_path / "p" / "step-2.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------- the command


def _cli(*argv) -> tuple[int, str, str]:
    import contextlib
    import io

    from emovid_core.host.cli import main

    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        rc = main(list(argv))
    return rc, o.getvalue(), e.getvalue()


def test_cli_refuses_before_loading_any_model(sample_root, tmp_path, monkeypatch):
    def loaded(*a, **k):
        raise AssertionError("a model was loaded before the checks")

    monkeypatch.setattr(train_models.ModelSource, "load_encoders", loaded)
    monkeypatch.setattr(train_models.ModelSource, "load_transformer", loaded)
    base = ["train", "--dataset", str(sample_root), "--tiny", "t2v", "--frames", "9", "--size", "32x32"]
    rc, _, err = _cli(*base, "--out", str(tmp_path / "o"), "--type", "sticker", "--caption", "no such caption")
    assert rc == 2 and "no clips left: 72 → type=sticker 24 → caption" in err
    rc, _, err = _cli(*base, "--out", str(tmp_path / "o"), "--task", "i2v")
    assert rc == 2 and "--task i2v needs a Wan2.1 I2V model" in err
    rc, _, err = _cli(*base[:-4], "--frames", "33", "--size", "32x32", "--short-clips", "skip", "--out", str(tmp_path / "o"))
    assert rc == 2 and "no clip has 33 frames" in err and "--short-clips cut" in err
    rc, _, err = _cli(*base[:-4], "--frames", "30", "--out", str(tmp_path / "o"))
    assert rc == 2 and "--frames 30 must be 4k+1" in err and "29 or 33" in err
    rc, _, err = _cli(*base, "--size", "40x32", "--out", str(tmp_path / "o"))
    assert rc == 2 and "width 40 is not a multiple of 16" in err
    (tmp_path / "file").write_text("x")
    rc, _, err = _cli(*base, "--out", str(tmp_path / "file" / "run"))
    assert rc == 2 and "is a file, not a folder" in err
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "epoch-1.safetensors").write_bytes(b"mine")
    rc, _, err = _cli(*base, "--out", str(taken))
    assert rc == 2 and "epoch-1.safetensors exists and was not written by this command; pass --force" in err
    assert (taken / "epoch-1.safetensors").read_bytes() == b"mine"
    rc, _, err = _cli(*base, "--resume", str(tmp_path / "nothing"))
    assert rc == 2 and "holds no readable training state" in err


def test_short_clips_are_counted_before_training(sample_root):
    cfg = _config(frames=17)
    sel = _selection(sample_root, cfg)
    short = [it for it in sel.items if it.frames < 17]
    assert short and all((it.frames - 1) % 4 == 0 for it in sel.items)
    assert any(f"{len(short)} of 72 clip(s) have fewer than 17 frames: cut to their largest 4k+1" in n for n in sel.notes)
    skipped = _selection(sample_root, _config(frames=17, short_clips="skip"))
    assert len(skipped.items) == 72 - len(short) and len(skipped.skipped) == len(short)


def test_cli_trains_from_a_diffsynth_export_with_the_paper_mix_prompt(sample_root, tmp_path):
    from emovid_core.dataset import export_diffsynth, load_dataset

    ds = load_dataset(sample_root)
    export_diffsynth(ds, [c for c in ds.clips if c.type == "animation"][:3], tmp_path / "ds", link="copy")
    out = tmp_path / "run"
    rc, stdout, err = _cli("train", "--dataset", str(tmp_path / "ds"), "--tiny", "t2v", "--out", str(out), "--frames", "9",
                           "--size", "32x32", "--rank", "4", "--dtype", "float32", "--epochs", "1")
    assert rc == 0, err
    assert "done: 3/3 steps" in stdout and (out / "epoch-1.safetensors").is_file()
    rec = json.loads((out / "training.json").read_text())
    assert rec["dataset"]["metadata"].endswith("metadata.csv") and len(rec["dataset"]["clips"]) == 3


def test_paper_mix_and_emotion_sentence_prompts(sample_root):
    cfg = _config()
    sel = select_clips(open_dataset(sample_root), cfg, mix="paper", progress=False)
    assert any("training mix" in n for n in sel.notes)
    assert all(it.clip.split != "test" for it in sel.items)
    it = sel.items[0]
    assert it.prompt.endswith(f'The video is in the "{it.clip.emotion}" emotion.') and it.prompt.startswith(it.clip.caption)
    plain = select_clips(open_dataset(sample_root), _config(emotion_sentence=False), progress=False)
    assert plain.items[0].prompt == plain.items[0].clip.caption


def test_memory_check_names_the_options_to_change(sample_root, tmp_path, monkeypatch):
    from emovid_core.train import memory

    monkeypatch.setattr(memory, "available", lambda device: (2**20, "available RAM"))
    cfg = _config(steps=1)
    with pytest.raises(ValueError, match=r"will not fit; try --dtype bfloat16, fewer --frames \(now 9\), a smaller --size \(now 32x32\)"):
        train(cfg, _selection(sample_root, cfg, n=1), resolve_model(tiny="t2v"), tmp_path / "m", device="cpu", progress=False)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)



def _netns_ok() -> bool:
    import subprocess

    try:
        return subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _netns_ok(), reason="needs `unshare -n` (root) so the two processes talk over loopback only")
def test_accelerate_launch_two_processes_match_one_process_with_the_doubled_batch(sample_root, tmp_path):
    """Data parallel through `accelerate launch` (torchrun, gloo on CPU) inside a network namespace with only `lo`."""
    import os
    import subprocess
    import sys

    from emovid_core.wan.tiny import cache_root

    args = ["train", "--dataset", str(sample_root), "--tiny", "t2v", "--frames", "9", "--size", "32x32", "--rank", "4",
            "--dtype", "float32", "--steps", "3", "--type", "sticker", "--lr", "1e-3", "--batch"]
    rc, _, err = _cli(*args, "2", "--out", str(tmp_path / "one"))
    assert rc == 0, err
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1", "--main_process_port", "29531",
              "-m", "emovid_core", *args, "1", "--out", str(tmp_path / "two")]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "EMOVID_CACHE": str(cache_root()), "CUDA_VISIBLE_DEVICES": ""}
    script = "ip link set lo up && exec " + " ".join(f"'{a}'" for a in launch)
    proc = subprocess.run(["unshare", "-n", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: 3/3 steps (12 per epoch)" in proc.stdout and proc.stdout.count("done:") == 1  # rank 0 reports
    one, two = (_lora_tensors(tmp_path / d / "step-3.safetensors") for d in ("one", "two"))
    assert one.keys() == two.keys()
    # Same samples, timesteps and noise; the two processes' float32 sums differ only in rounding (< 1e-6 here).
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5
    la, lb = (read_losses(tmp_path / d / "loss.csv") for d in ("one", "two"))
    assert [s for s, _ in la] == [s for s, _ in lb] and all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(la, lb))
