"""``emovid eval train-probe`` and ``emovid eval table3`` end to end, through the real CLI, on real video files:
the planted-signal probe, resume, output safety, missing videos, I2V's SD score, and --generate before/after a
tiny LoRA on the synthetic sample set."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch

from emovid_core.dataset import load_dataset
from emovid_core.emotions import EMOTIONS
from emovid_core.evaluation.classifiers import NOT_COMPARABLE
from emovid_core.host.cli import main


def _videos(root, out, split="test"):
    """The split's clips as a folder of videos named by clip id (what `emovid queue` or --generate leaves)."""
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(root)
    for c in ds.clips:
        if c.split == split:
            (out / f"{c.clip_id}.gif").symlink_to(ds.clip_file(c))
    return out


def _run(*args):
    code = main(["eval", *map(str, args)])
    assert code == 0
    return code


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_planted_signal_probe_reaches_ea8_90_on_held_out_clips(planted_root, tiny_clip, tmp_path, capsys):
    probe = tmp_path / "probe.safetensors"
    _run("train-probe", "--dataset", planted_root, "--vision", tiny_clip, "--out", probe)
    meta = json.loads(probe.with_suffix(".json").read_text())
    ds = load_dataset(planted_root)
    train_ids = {c.clip_id for c in ds.clips if c.split == "train"}
    assert meta["train_clips"] + meta["val_clips"] == len(train_ids) == 72  # the train split only, never the benchmark
    assert meta["emotions"] == list(EMOTIONS) and meta["vision"] == str(tiny_clip.resolve())

    out = tmp_path / "table3"
    _run("table3", "--dataset", planted_root, "--classifier", f"probe:{probe}", "--videos", _videos(planted_root, tmp_path / "v"),
         "--out", out)
    report = json.loads((out / "table3.json").read_text())
    (row,) = report["rows"]
    assert row["clips"] == row["scored"] == 48 and row["unparsed"] == 0
    assert row["metrics"]["ea8"] >= 90.0, row["confusion"]  # colour encodes the label: the plumbing must keep it
    assert row["metrics"]["ea2"] >= row["metrics"]["ea8"]
    clips = _rows(out / "per_clip.csv")
    assert len(clips) == 48 and not {r["clip_id"] for r in clips} & train_ids
    for r in clips:  # the label order: each clip's probabilities peak where its predicted label says
        probs = [float(r[f"p_{e}"]) for e in EMOTIONS]
        assert EMOTIONS[probs.index(max(probs))] == r["predicted"]
        assert r["emotion"] == r["clip_id"].split("_")[1]
    hits = sum(int(r["ea8_hit"]) for r in clips)
    assert row["metrics"]["ea8"] == pytest.approx(100 * hits / 48)
    assert report["comparability"] == NOT_COMPARABLE and "not released" in capsys.readouterr().out
    md = (out / "table3.md").read_text()
    assert "| paper | WanVideo (before) | 594.3 | 0.2982 | – | 0.0091 | 84.17 | 44.16 |" in md
    assert "| paper | WanVideo (after) | 573.7 | 0.3021 | – | 0.0143 | 88.33 | 48.33 |" in md
    assert f"| ours | ours | – | – | – | {row['metrics']['flicker']:.4f} | {row['metrics']['ea2']:.2f} | {row['metrics']['ea8']:.2f} |" in md
    assert "FVD↓ not measured: no local feature network given" in md and NOT_COMPARABLE in md
    for png in ("confusion.png", "per_emotion_accuracy.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_reuses_cached_clips_and_gives_the_same_table(planted_root, tiny_clip, tmp_path, capsys):
    videos = _videos(planted_root, tmp_path / "v")
    out = tmp_path / "t3"
    args = ("table3", "--dataset", planted_root, "--classifier", f"clip:{tiny_clip}", "--videos", f"base={videos}", "--out", out,
            "--clip", tiny_clip, "--fvd-features", tiny_clip)
    _run(*args)
    first = {n: (out / n).read_text() for n in ("per_clip.csv", "table3.json", "table3.md")}
    assert "48 clips scored, 0 reused" in capsys.readouterr().out
    report = json.loads(first["table3.json"])
    m = report["rows"][0]["metrics"]
    assert m["clip_score"] is not None and m["sd_score"] is None and m["fvd"] == pytest.approx(0.0, abs=1e-6)  # same videos as real

    _run(*args)  # a finished run again: everything from the cache, the same files
    assert "0 clips scored, 48 reused" in capsys.readouterr().out
    assert {n: (out / n).read_text() for n in first} == first

    cache = out / "cache" / "base.jsonl"
    lines = cache.read_text().splitlines(keepends=True)
    cache.write_text("".join(lines[:20]) + lines[20][: len(lines[20]) // 2])  # a run killed while writing clip 21
    _run(*args)
    assert "28 clips scored, 20 reused" in capsys.readouterr().out
    assert {n: (out / n).read_text() for n in first} == first

    victim = sorted(videos.iterdir())[0]
    target = victim.resolve()
    victim.unlink()
    shutil.copy(target, victim)  # a regenerated video (new file): only it is scored again
    _run(*args)
    assert "1 clips scored, 47 reused" in capsys.readouterr().out


def test_outputs_never_replace_a_users_files_and_missing_videos_are_named(planted_root, tiny_clip, tmp_path, capsys):
    videos = _videos(planted_root, tmp_path / "v")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "table3.md").write_text("my notes")
    args = ["table3", "--dataset", planted_root, "--classifier", f"clip:{tiny_clip}", "--videos", videos, "--out", out]
    assert main(["eval", *map(str, args)]) == 2
    assert "table3.md exists and was not written by this command; pass --force" in capsys.readouterr().err
    assert (out / "table3.md").read_text() == "my notes"
    gone = sorted(videos.iterdir())[:3]
    for g in gone:
        g.unlink()
    assert main(["eval", *map(str, args), "--force"]) == 2
    err = capsys.readouterr().err
    assert "3 of 48 benchmark clips have no video" in err and gone[0].stem in err and "--skip-missing" in err
    _run(*args, "--force", "--skip-missing")
    row = json.loads((out / "table3.json").read_text())["rows"][0]
    assert (row["scored"], row["missing_videos"]) == (45, 3)
    _run(*args, "--skip-missing")  # its own files now: no --force needed
    assert main(["eval", "table3", "--dataset", str(planted_root), "--classifier", "nvila:/x", "--videos", str(videos),
                 "--out", str(out)]) == 2
    assert "must be clip:DIR" in capsys.readouterr().err


def test_i2v_reports_sd_score_against_the_clips_first_frame(planted_root, tiny_clip, tmp_path):
    out = tmp_path / "i2v"
    _run("table3", "--task", "i2v", "--dataset", planted_root, "--classifier", f"clip:{tiny_clip}", "--clip", tiny_clip,
         "--videos", _videos(planted_root, tmp_path / "v"), "--out", out, "--frames", 4)
    report = json.loads((out / "table3.json").read_text())
    m = report["rows"][0]["metrics"]
    assert m["clip_score"] is None and 0.5 < m["sd_score"] <= 1.0  # the videos are the clips themselves: close to the first frame
    assert "CLIP↑ not measured: a T2V metric" in (out / "table3.md").read_text()
    assert "| paper | WanVideo (after) | 517.8 | – | 0.7193 | 0.0324 | 94.58 | 76.25 |" in (out / "table3.md").read_text()
    assert report["classifier"]["frames"] == 4


@pytest.mark.slow
def test_generate_before_and_after_a_tiny_lora_on_the_sample_set(tiny_clip, tmp_path, capsys):
    from emovid_core.dataset.synthetic import make_sample
    from emovid_core.lora import from_tensors, write_lora
    from emovid_core.wan.tiny import TINY_CONFIGS

    sample = make_sample(tmp_path / "sample", per_cell=1, extra_per_cell=0).root  # 24 benchmark clips
    cfg = TINY_CONFIGS["transformer_t2v"]
    dim, g = cfg["num_attention_heads"] * cfg["attention_head_dim"], torch.Generator().manual_seed(0)
    mods = {f"blocks.{b}.{n}": (torch.randn(4, cfg["ffn_dim"] if n == "ffn.2" else dim, generator=g) * 0.5,
                                torch.randn(dim, 4, generator=g) * 0.5, 4.0)
            for b in range(cfg["num_layers"]) for n in ("self_attn.q", "ffn.2")}
    lora = tmp_path / "tiny_emotion_lora.safetensors"
    write_lora(from_tensors(mods), lora, fmt="comfy")
    out = tmp_path / "gen"
    _run("table3", "--dataset", sample, "--classifier", f"clip:{tiny_clip}", "--clip", tiny_clip, "--generate",
         "--pipeline", "tiny-t2v", "--lora", lora, "--steps", 2, "--guidance", 1, "--out", out)
    text = capsys.readouterr().out
    assert "48 clips scored" in text and "before: EA-2" in text and "after: EA-2" in text
    report = json.loads((out / "table3.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["before", "after"] and report["task"] == "t2v"
    assert all(r["scored"] == 24 and r["metrics"]["clip_score"] is not None for r in report["rows"])
    before, after = sorted((out / "videos" / "before").iterdir()), sorted((out / "videos" / "after").iterdir())
    assert len(before) == len(after) == 24 and before[0].read_bytes() != after[0].read_bytes()  # the LoRA changed the videos
    assert len(_rows(out / "per_clip.csv")) == 48
    _run("table3", "--dataset", sample, "--classifier", f"clip:{tiny_clip}", "--clip", tiny_clip, "--generate",
         "--pipeline", "tiny-t2v", "--lora", lora, "--steps", 2, "--guidance", 1, "--out", out)
    assert "0 clips scored, 48 reused" in capsys.readouterr().out  # nothing generated or scored again


def test_score_command_prints_one_line_per_video_and_writes_json(planted_root, tiny_clip, tmp_path, capsys):
    videos = sorted(_videos(planted_root, tmp_path / "v").iterdir())[:2]
    out = tmp_path / "scores.json"
    _run("score", *videos, "--classifier", f"clip:{tiny_clip}", "--json", out, "--frames", 3)
    text = capsys.readouterr().out
    assert text.startswith("classifier clip:") and "(3 frames per clip)" in text and NOT_COMPARABLE in text
    data = json.loads(out.read_text())
    assert [v["video"] for v in data["videos"]] == [str(v) for v in videos]
    for v in data["videos"]:
        assert v["emotion"] in EMOTIONS and f"{v['video']}: {v['emotion']} ({v['valence']}) p=" in text
        assert sum(v["probabilities"].values()) == pytest.approx(1.0)
    assert main(["eval", "score", str(videos[0]), "--classifier", f"clip:{tiny_clip}", "--json", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err


def test_generate_i2v_starts_from_each_clips_first_frame(planted_root, tiny_clip, tmp_path):
    from emovid_core.dataset import write_table

    ds = load_dataset(planted_root)
    keep = {"ani_fear_03", "mov_awe_04", "sti_sadness_03"}  # a 3-clip benchmark keeps the tiny I2V run short
    table = tmp_path / "three.csv"
    write_table(table, [c.replace(split="test" if c.clip_id in keep else "") for c in ds.clips])
    out = tmp_path / "i2v"
    _run("table3", "--dataset", planted_root, "--metadata", table, "--classifier", f"clip:{tiny_clip}", "--clip", tiny_clip,
         "--generate", "--pipeline", "tiny-i2v", "--steps", 2, "--guidance", 1, "--out", out)
    report = json.loads((out / "table3.json").read_text())
    assert report["task"] == "i2v" and [r["name"] for r in report["rows"]] == ["before"]  # no --lora: one row
    (row,) = report["rows"]
    assert row["scored"] == 3 and row["metrics"]["sd_score"] is not None and row["metrics"]["clip_score"] is None
    assert sorted(p.stem for p in (out / "videos" / "before").iterdir()) == sorted(keep)


def test_videos_are_found_by_clip_id_and_by_comfyui_save_names(tmp_path):
    from emovid_core.evaluation.table3 import index_videos

    for name in ("a.mp4", "b_00001.mp4", "b_00003.webm", "b_00002.mp4", "c_00001_.mp4", "d_00001.mp4", "d.gif",
                 "x_00001.mp4", "e.txt", "f_1.mp4"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "g").mkdir()  # an image folder named by clip id
    found = index_videos(tmp_path, ["a", "b", "c", "d", "e", "f", "g", "x", "x_00001"])
    assert {k: v.name for k, v in found.items()} == {
        "a": "a.mp4", "b": "b_00003.webm",  # the newest save of the prefix
        "c": "c_00001_.mp4",  # core Save Video's trailing underscore
        "d": "d.gif",  # an exact name wins over a counter
        "g": "g", "x_00001": "x_00001.mp4",  # a name that is itself a clip id belongs to that clip, not to "x"
    }
