"""Inputs that used to give a wrong result with exit 0 (or a raw traceback) now get a clear, named refusal.

NaN/inf LoRAs, NaN or 0..255 IMAGE frames at Save Video, still clips in Frame Attributes, decompression-bomb
images and dataset clips whose file is gone: each on real files, asserting the message and that nothing was
written or left behind.
"""

from __future__ import annotations

import json
import math
import shutil
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from emovid_core import attributes, video_io
from emovid_core.host.cli import main
from emovid_core.lora import NonFiniteLoraError, inspect_lora, load_lora, load_lora_cached, write_lora
from emovid_core.lora.testing import random_lora

# ------------------------------------------------------------------------------------------------- LoRA NaN/inf


def _diffsynth_with(tmp_path, poison: dict[str, float]) -> tuple:
    """A real DiffSynth-format LoRA file; ``poison`` sets one value of the named keys to NaN/inf."""
    lora = random_lora(rank=4, alpha=None, seed=5)
    clean = tmp_path / "clean.safetensors"
    write_lora(lora, clean, "diffsynth")
    from safetensors.torch import load_file

    sd = load_file(str(clean))
    for key, value in poison.items():
        sd[key] = sd[key].clone()
        sd[key].view(-1)[3] = value
    bad = tmp_path / "diverged.safetensors"
    save_file(sd, str(bad))
    return bad, sd


def test_lora_with_nan_or_inf_weights_is_refused_at_load_naming_the_module(tmp_path):
    bad, _ = _diffsynth_with(tmp_path, {"blocks.1.ffn.0.lora_B.default.weight": float("nan"),
                                        "blocks.0.self_attn.q.lora_A.default.weight": float("inf")})
    for load in (load_lora, load_lora_cached):
        with pytest.raises(NonFiniteLoraError) as exc:
            load(bad)
        msg = str(exc.value)
        assert "diverged.safetensors: 2 module(s) hold NaN or inf values" in msg
        assert "blocks.0.self_attn.q (down)" in msg and "blocks.1.ffn.0 (up)" in msg and "earlier checkpoint" in msg
    lora = load_lora(bad, check_finite=False)
    assert lora.non_finite == {"blocks.0.self_attn.q": ["down"], "blocks.1.ffn.0": ["up"]}
    assert inspect_lora(lora).non_finite == lora.non_finite


def test_lora_with_an_inf_alpha_is_refused(tmp_path):
    lora = random_lora(rank=4, alpha=2.0, seed=6, layers=1)
    path = tmp_path / "kohya.safetensors"
    write_lora(lora, path, "kohya")
    from safetensors.torch import load_file

    sd = load_file(str(path))
    sd["lora_unet_blocks_0_cross_attn_k.alpha"] = torch.tensor(float("inf"))
    save_file(sd, str(path))
    with pytest.raises(NonFiniteLoraError, match=r"1 module\(s\) hold NaN or inf values: blocks.0.cross_attn.k \(alpha\)"):
        load_lora(path)


def test_lora_inspect_reports_non_finite_values_and_convert_refuses(tmp_path, capsys):
    bad, _ = _diffsynth_with(tmp_path, {"blocks.1.ffn.0.lora_B.default.weight": float("-inf")})
    assert main(["lora", "inspect", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "NOT USABLE: 1 module(s) hold NaN or inf values: blocks.1.ffn.0 (up)" in out and "format:" in out
    assert main(["lora", "inspect", str(bad), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["non_finite"] == {"blocks.1.ffn.0": ["up"]}
    out_file = tmp_path / "converted.safetensors"
    assert main(["lora", "convert", str(bad), str(out_file), "--to", "comfy"]) == 2
    assert "blocks.1.ffn.0 (up)" in capsys.readouterr().err and not out_file.exists()
    clean = tmp_path / "clean.safetensors"
    assert main(["lora", "inspect", str(clean)]) == 0 and "NOT USABLE" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------- Save Video


def _bad_frames(kind: str) -> torch.Tensor:
    frames = torch.rand(3, 16, 24, 3, generator=torch.Generator().manual_seed(1))
    if kind == "nan":
        frames[1, 4, 5, 0] = float("nan")
    elif kind == "inf":
        frames[2, 0, 0, 2] = float("inf")
    else:
        frames = frames * 255.0  # 0..255 data that was never divided
    return frames


@pytest.mark.parametrize("kind, text", [("nan", "frame 1 contains 1 NaN value(s)"), ("inf", "frame 2 contains 1 inf value(s)"),
                                        ("0..255", "frame 0 has values in [")])
def test_save_video_refuses_frames_frame_attributes_refuses_with_the_same_message(pack_nodes, out_dir, kind, text):
    frames = _bad_frames(kind)
    with pytest.raises(ValueError) as by_attributes:
        attributes.analyze(frames)
    for fmt in ("mp4", "gif"):
        with pytest.raises(ValueError) as by_save:
            pack_nodes["EmoVidSaveVideo"]().save(frames, 16.0, "bad/clip", fmt)
        assert str(by_save.value) == str(by_attributes.value) and text in str(by_save.value)
    if kind == "0..255":
        assert "divide by 255" in str(by_save.value)
    assert not out_dir.exists() or [p for p in out_dir.rglob("*") if p.is_file()] == []  # nothing, not even a .tmp
    fixed = frames / 255.0 if kind == "0..255" else torch.nan_to_num(frames, nan=0.0, posinf=1.0)
    assert video_io.probe(video_io.write_video(fixed, out_dir / "ok.mp4", fps=8.0)).frames == 3  # fixed frames save


# ------------------------------------------------------------------------------------------------- still clips


def test_a_still_clip_analyses_with_every_statistic_in_range(tmp_path, capsys):
    # This colour's identical hues put the hue resultant length a rounding error above 1: math domain error before.
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[:] = (250, 250, 10)
    report = attributes.analyze(np.repeat(frame[None], 25, axis=0), fps=16.0)
    hue = report.summary["hue"]
    assert hue["resultant_length"] <= 1.0 and hue["circular_std"] == 0.0
    assert 0.0 <= report.clip.hue_concentration <= 1.0 and 0.0 <= report.clip.brightness_raw <= 1.0
    curves = report.curves
    assert all(0.0 <= v <= 1.0 for name in ("brightness", "colorfulness", "hue_concentration") for v in curves[name])
    # A still image repeated, as a real image folder through the CLI.
    folder = tmp_path / "still"
    folder.mkdir()
    from PIL import Image

    for i in range(21):
        Image.fromarray(frame).save(folder / f"f{i:03d}.png")
    assert main(["analyze", str(folder), "--json", str(tmp_path / "still.json")]) == 0
    data = json.loads((tmp_path / "still.json").read_text())
    assert data["summary"]["hue"]["circular_std"] == 0.0 and math.isclose(data["clip"]["raw"]["hue"], report.clip.hue_raw)


# ------------------------------------------------------------------------------------------------- huge images


def _bomb_gif(path, w=20000, h=20000):
    """A real 60-byte GIF whose header declares 20000x20000 (400 Mpixels): Pillow's decompression-bomb size."""
    data = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    data += b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00" + b"\x3b"
    path.write_bytes(data)
    return path


def _bomb_png(path, w=30000, h=30000):
    import zlib

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_image_gets_the_memory_message(tmp_path, pack_nodes, capsys):
    gif = _bomb_gif(tmp_path / "huge.gif")
    folder = tmp_path / "frames"
    folder.mkdir()
    _bomb_png(folder / "f000.png")
    for path, pixels in ((gif, "400,000,000"), (folder, "900,000,000")):
        with pytest.raises(ValueError, match=rf"decoding an image of {pixels} pixels from .* needs about [\d.]+ GiB as an IMAGE, "
                                             r"over the limit of [\d.]+ GiB; .*resize the image"):
            video_io.probe(path)
        assert main(["analyze", str(path)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "needs about" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="decoding an image of 400,000,000 pixels"):  # the EmoVid Load Video node
        pack_nodes["EmoVidLoadVideo"]().load("", 0, 0, 1, 0.0, 0, 0, "center", False, path=str(gif))
    # The message is the one huge videos get from the memory guard.
    with pytest.raises(ValueError, match=r"^decoding 10 frames of 4000x4000 from .* needs about [\d.]+ GiB as an IMAGE, over the limit"):
        video_io.check_memory(10, 4000, 4000, "big.mp4", max_bytes=2**30)


# ------------------------------------------------------------------------------------------------- missing clips


def test_a_missing_dataset_clip_names_the_clip_the_path_and_the_fix_on_the_node_path(pack_nodes, sample_root, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(sample_root, root)
    ds, _ = pack_nodes["EmoVidDataset"]().open(str(root))
    clip = sorted(ds.clips, key=lambda c: c.clip_id)[0]
    ds.clip_path(clip).unlink()
    sample = pack_nodes["EmoVidSampleClip"]()
    inputs = dict(dataset=ds, emotion=clip.emotion, type=clip.type, label_source=clip.label_source, split="any",
                  mode="index", seed=0, index=0, max_frames=2, skip_first=0, every_nth=1, target_fps=0.0, width=0,
                  height=0, wan_4n1=False)
    from emovid_core.dataset import Filter, apply_filter

    pool, _ = apply_filter(ds.clips, Filter(emotions=clip.emotion, types=clip.type, label_sources=clip.label_source))
    inputs["index"] = [c.clip_id for c in pool].index(clip.clip_id)
    with pytest.raises(FileNotFoundError) as exc:
        sample.sample(**inputs)
    msg = str(exc.value)
    assert f"clip {clip.clip_id!r}" in msg and str(ds.clip_path(clip)) in msg and "re-index the dataset" in msg
    assert "[Errno 2]" not in msg
