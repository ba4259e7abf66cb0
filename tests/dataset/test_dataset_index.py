"""Dataset files on disk: the sample maker, the indexer (pool, resume, bad files), export, nodes and the CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from emovid_core import runtime
from emovid_core.dataset import load_dataset
from emovid_core.dataset.indexer import index_dataset, journal_path, measure_clip
from emovid_core.emotions import EMOTIONS

TYPES = ("animation", "movie", "sticker")


@pytest.fixture()
def sample_copy(sample_root, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(sample_root, dst)
    return dst


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------- sample maker


def test_sample_maker_layout_and_reuse(sample_root):
    from PIL import Image

    from emovid_core import video_io
    from emovid_core.dataset.synthetic import make_sample

    ds = load_dataset(sample_root)
    assert ds.metadata_path.name == "emovid_metadata.csv" and ds.rejects == []
    assert {(c.type, c.emotion) for c in ds.clips} == {(t, e) for t in TYPES for e in EMOTIONS}
    assert all(c.caption for c in ds.clips)
    for t in TYPES:
        for e in EMOTIONS:
            assert sum(1 for c in ds.clips if (c.type, c.emotion, c.label_source) == (t, e, "human")) >= 2
    sticker = next(c for c in ds.clips if c.type == "sticker")
    path = ds.clip_path(sticker)
    info = video_io.probe(path)
    assert path.suffix == ".gif" and info.has_alpha and 9 <= info.frames <= 25 and (info.width, info.height) == (64, 48)
    with Image.open(path) as im:
        durations = set()
        for i in range(im.n_frames):
            im.seek(i)
            durations.add(im.info["duration"])
    assert len(durations) > 1  # uneven frame timing
    movies = sorted((c for c in ds.clips if c.type == "movie"), key=lambda c: (c.film_id, c.segment))
    films = {}
    for c in movies:
        films.setdefault(c.film_id, []).append(c.segment)
    assert len(films) == 4 and all(segs == list(range(len(segs))) for segs in films.values())
    before = {p: p.stat().st_mtime_ns for p in sample_root.rglob("*") if p.is_file()}
    again = make_sample(sample_root)
    assert again.reused and again.clips == 72
    assert {p: p.stat().st_mtime_ns for p in sample_root.rglob("*") if p.is_file()} == before


def test_sample_maker_scales_per_cell_and_rewrites_incomplete_sets(tmp_path):
    from emovid_core.dataset import benchmark_split
    from emovid_core.dataset.synthetic import make_sample

    s = make_sample(tmp_path / "s", seed=3, per_cell=3, extra_per_cell=0, films=2, size=(32, 32))
    ds = load_dataset(s.root)
    assert len(ds.clips) == 72 and len(benchmark_split(ds.clips, per_cell=3)) == 72
    victim = next((s.root / "movie").rglob("*.mp4"))
    victim.unlink()
    again = make_sample(tmp_path / "s", seed=3, per_cell=3, extra_per_cell=0, films=2, size=(32, 32))
    assert not again.reused and victim.is_file()
    with pytest.raises(ValueError, match="even"):
        make_sample(tmp_path / "bad", size=(33, 32))


# ---------------------------------------------------------------------------------------------------- indexer


def test_index_with_a_process_pool_measures_every_clip(sample_copy):
    original = _sha(sample_copy / "emovid_metadata.csv")
    report = index_dataset(sample_copy, workers=2, progress=False)
    assert (report.indexed, report.measured, report.reused, report.failed) == (72, 72, 0, [])
    assert _sha(sample_copy / "emovid_metadata.csv") == original  # the user's table is never touched
    ds = load_dataset(sample_copy)
    assert ds.metadata_path.name == "emovid_index.csv" and len(ds.clips) == 72
    clip = next(c for c in ds.clips if c.type == "sticker")
    m = measure_clip(ds.clip_path(clip))
    assert (clip.brightness, clip.colorfulness, clip.hue, clip.frames) == (m["brightness"], m["colorfulness"], m["hue"], m["frames"])
    assert clip.width == 64 and clip.height == 48 and clip.duration > 0 and clip.caption and clip.split
    rep = json.loads((sample_copy / "emovid_index_report.json").read_text())
    assert rep["indexed"] == 72 and rep["unreadable"] == [] and rep["stride"] == 20


def test_measure_clip_is_the_paper_attribute_on_frames_0_20_40(sample_root):
    from emovid_core import attributes, video_io

    path = next(p for p in sorted(sample_root.rglob("*.mp4")) if video_io.probe(p).frames > 20)
    frames = video_io.read_frames(path, progress=False)
    ref = attributes.clip_attributes(frames, stride=20)  # attributes' own striding over all decoded frames
    m = measure_clip(path)
    assert (m["brightness"], m["colorfulness"], m["hue"]) == (ref.brightness, ref.colorfulness, ref.hue)
    assert m["raw"]["brightness"] == pytest.approx(ref.brightness_raw, abs=1e-9)


class _Cancel(Exception):
    pass


def test_index_resumes_after_an_interruption_with_the_same_result(sample_copy, tmp_path):
    full = tmp_path / "full"
    shutil.copytree(sample_copy, full)
    index_dataset(full, workers=1, progress=False)
    journal = journal_path(sample_copy / "emovid_index.csv")

    def cancel_after_five_files():
        # The user presses Cancel once five files are done (the check runs between and inside files).
        if journal.is_file() and len(journal.read_text().splitlines()) >= 5:
            raise _Cancel("user pressed cancel")

    with runtime.configured(interrupt_check=cancel_after_five_files), pytest.raises(_Cancel):
        index_dataset(sample_copy, workers=1, progress=False)
    assert not (sample_copy / "emovid_index.csv").exists()  # nothing half-written
    assert len(journal.read_text().splitlines()) == 5
    with open(journal, "a") as fh:
        fh.write('{"v": 1, "key": "cut sho')  # a line torn by a crash mid-write is ignored
    report = index_dataset(sample_copy, workers=1, progress=False)
    assert (report.reused, report.measured, report.indexed) == (5, 67, 72)
    assert (sample_copy / "emovid_index.csv").read_text() == (full / "emovid_index.csv").read_text()
    again = index_dataset(sample_copy, workers=1, progress=False)
    assert (again.reused, again.measured) == (72, 0)
    # A changed file is measured again (its mtime/size key no longer matches).
    victim = next((sample_copy / "animation").rglob("*.mp4"))
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
    assert index_dataset(sample_copy, workers=1, progress=False).measured == 1
    # The journal keeps one entry per current file (the torn line and the stale key are compacted away).
    assert len(journal.read_text().splitlines()) == 72


def test_cancel_stops_the_process_pool_and_the_rerun_completes(sample_copy, indexed_root):
    journal = journal_path(sample_copy / "emovid_index.csv")

    def cancel_after_ten_files():
        if journal.is_file() and len(journal.read_text().splitlines()) >= 10:
            raise _Cancel("user pressed cancel")

    with runtime.configured(interrupt_check=cancel_after_ten_files), pytest.raises(_Cancel):
        index_dataset(sample_copy, workers=2, progress=False)
    done = len(journal.read_text().splitlines())
    assert 10 <= done < 72 and not (sample_copy / "emovid_index.csv").exists()
    report = index_dataset(sample_copy, workers=2, progress=False)
    assert (report.reused, report.measured) == (done, 72 - done)
    assert (sample_copy / "emovid_index.csv").read_text() == (indexed_root / "emovid_index.csv").read_text()


def test_unreadable_files_are_reported_not_fatal(sample_copy, tmp_path):
    root = sample_copy
    (root / "movie" / "fear" / "corrupt.mp4").write_bytes(os.urandom(2048))
    (root / "movie" / "fear" / "empty.mp4").write_bytes(b"")
    outside = tmp_path / "outside.mp4"
    shutil.copy(next(root.rglob("*.mp4")), outside)
    os.symlink(outside, root / "movie" / "fear" / "escape.mp4")
    with open(root / "emovid_metadata.csv", "a", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["bad_corrupt", "movie/fear/corrupt.mp4", "movie", "fear"] + [""] * 13)
        w.writerow(["bad_empty", "movie/fear/empty.mp4", "movie", "fear"] + [""] * 13)
        w.writerow(["bad_missing", "movie/fear/missing.mp4", "movie", "fear"] + [""] * 13)
        w.writerow(["bad_escape", "movie/fear/escape.mp4", "movie", "fear"] + [""] * 13)
        w.writerow(["bad_dotdot", "../outside.mp4", "movie", "fear"] + [""] * 13)
        w.writerow(["bad_emotion", "movie/fear/x.mp4", "movie", "joyish"] + [""] * 13)
    report = index_dataset(root, workers=1, progress=False)
    assert report.indexed == 72
    failed = {f["clip_id"]: f["error"] for f in report.failed}
    assert set(failed) == {"bad_corrupt", "bad_empty", "bad_missing", "bad_escape"}
    assert failed["bad_missing"] == "file not found" and "outside the dataset root" in failed["bad_escape"]
    assert "corrupt.mp4" in failed["bad_corrupt"]
    assert [r.line for r in report.rejects] == [78, 79]
    rep = json.loads(report.report_path.read_text())
    assert len(rep["unreadable"]) == 4 and [r["line"] for r in rep["rejected_rows"]] == [78, 79]
    assert "4 unreadable file(s), 2 rejected row(s)" in str(report)


def test_index_imports_a_diffsynth_folder_and_refuses_to_overwrite_the_source(sample_root, tmp_path):
    root = tmp_path / "ds"
    for rel in ("movie/fear", "sticker/awe"):
        (root / rel).mkdir(parents=True)
    shutil.copy(next(sample_root.glob("movie/fear/*.mp4")), root / "movie/fear/heist_0001.mp4")
    shutil.copy(next(sample_root.glob("sticker/awe/*.gif")), root / "sticker/awe/wow.gif")
    (root / "metadata.csv").write_text('video,prompt\nmovie/fear/heist_0001.mp4,"A vault. The video is in the ""fear"" emotion."\n'
                                       "sticker/awe/wow.gif,A starry sky.\n")
    report = index_dataset(root, workers=1, progress=False, label_source="human")
    assert report.source.startswith("DiffSynth") and report.indexed == 2
    ds = load_dataset(root)
    heist = next(c for c in ds.clips if c.type == "movie")
    assert (heist.emotion, heist.caption, heist.film_id, heist.segment, heist.label_source) == ("fear", "A vault.", "heist", 1, "human")
    assert heist.brightness is not None and heist.frames > 0
    with pytest.raises(ValueError, match="never overwrites"):
        index_dataset(root, workers=1, progress=False, out=root / "metadata.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="nothing to index"):
        index_dataset(tmp_path / "empty", workers=1)


# ------------------------------------------------------------------------------------------------------ export


def test_export_diffsynth_links_clips_and_writes_the_paper_prompt(indexed_root, tmp_path):
    from emovid_core import prompts, video_io
    from emovid_core.dataset import Filter, apply_filter
    from emovid_core.dataset.export import export_diffsynth

    ds = load_dataset(indexed_root)
    train, _ = apply_filter(ds.clips, Filter(splits="train"))
    report = export_diffsynth(ds, train, tmp_path / "ex", link="symlink")
    with open(tmp_path / "ex" / "metadata.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(train) == report.clips == 18
    by_id = {c.clip_id: c for c in train}
    for row, clip in zip(rows, train):
        assert row["prompt"] == prompts.build_prompt(clip.caption, clip.emotion)
        assert row["prompt"].endswith(f'The video is in the "{clip.emotion}" emotion.')
        target = tmp_path / "ex" / row["video"]
        assert target.suffix in (".mp4",) and target.is_file()
        if ds.clip_path(clip).suffix == ".gif":
            assert not target.is_symlink() and video_io.probe(target).kind == "video"  # converted for DiffSynth
        else:
            assert target.is_symlink() and target.resolve() == ds.clip_path(clip)
    assert report.converted == sum(1 for c in by_id.values() if c.path.endswith(".gif")) > 0
    copy = export_diffsynth(ds, train[:2], tmp_path / "ex_copy", link="copy")
    assert copy.clips == 2 and not any(p.is_symlink() for p in (tmp_path / "ex_copy").rglob("*.mp4"))
    hard = export_diffsynth(ds, train[:1], tmp_path / "ex_hard", link="hardlink")
    linked = next((tmp_path / "ex_hard").rglob("*.mp4"))
    assert hard.clips == 1 and linked.stat().st_ino == ds.clip_path(train[0]).stat().st_ino
    with pytest.raises(ValueError, match="dataset root"):
        export_diffsynth(ds, train, indexed_root)
    again = export_diffsynth(ds, train[:3], tmp_path / "ex")  # re-exporting into our own export folder is fine
    assert again.clips == 3 and len((tmp_path / "ex" / "metadata.csv").read_text().splitlines()) == 4
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "metadata.csv").write_text("video,prompt\nx.mp4,a cat\n")
    with pytest.raises(ValueError, match="not written by an EmoVid export"):
        export_diffsynth(ds, train, tmp_path / "theirs")


# ------------------------------------------------------------------------------------------------------ nodes


def test_dataset_sample_and_stats_nodes_through_the_graph_runner(indexed_root, out_dir):
    from emovid_core.host.graph import run_workflow

    wf = {
        "1": {"class_type": "EmoVidDataset", "inputs": {"root": str(indexed_root)}},
        "2": {"class_type": "EmoVidSampleClip", "inputs": {
            "dataset": ["1", 0], "emotion": "fear", "type": "sticker", "label_source": "human", "split": "any",
            "mode": "index", "seed": 0, "index": 1, "max_frames": 0, "skip_first": 0, "every_nth": 1,
            "target_fps": 0.0, "width": 32, "height": 32, "wan_4n1": True}},
        "3": {"class_type": "EmoVidSaveVideo", "inputs": {"images": ["2", 0], "fps": ["2", 8],
                                                          "filename_prefix": "EmoVid/sample", "format": "mp4"}},
        "4": {"class_type": "EmoVidDatasetStats", "inputs": {"dataset": ["1", 0], "bins": 11, "consecutive_only": False}},
    }
    result = run_workflow(wf, out_dir=out_dir)
    frames, first, caption, emotion, clip_id, b, c, h, fps = (v[0] for v in result.outputs["2"])
    ds = load_dataset(indexed_root)
    expected = sorted(c.clip_id for c in ds.clips if (c.emotion, c.type, c.label_source) == ("fear", "sticker", "human"))[1]
    clip = next(x for x in ds.clips if x.clip_id == expected)
    assert (clip_id, emotion, caption) == (expected, "fear", clip.caption)
    assert (b, c, h) == (clip.brightness, clip.colorfulness, clip.hue)
    assert tuple(frames.shape[1:]) == (32, 32, 3) and (frames.shape[0] - 1) % 4 == 0
    assert first.shape == (1, 32, 32, 3) and float((first[0] - frames[0]).abs().max()) == 0.0
    assert any(p.suffix == ".mp4" for p in result.files)
    plots, stats_json = (v[0] for v in result.outputs["4"])
    assert plots.shape[0] == 4 and json.loads(stats_json)["n"] == 72
    assert "η²" in result.ui["4"]["text"][0]


def test_sample_clip_modes_errors_and_is_changed(pack_nodes, indexed_root, tmp_path):
    ds_node, sample_node = pack_nodes["EmoVidDataset"](), pack_nodes["EmoVidSampleClip"]()
    ds, summary = ds_node.open(str(indexed_root))
    assert summary.startswith("72 clips (24 animation, 24 movie, 24 sticker)")
    base = dict(dataset=ds, emotion="any", type="any", label_source="any", split="any", mode="benchmark", seed=0,
                index=0, max_frames=2, skip_first=0, every_nth=1, target_fps=0.0, width=0, height=0, wan_4n1=False)
    ids = [sample_node.sample(**{**base, "index": i})[4] for i in (0, 1, 47)]
    bench = [c.clip_id for c in ds.clips if c.split == "test"]
    assert set(ids) <= set(bench) and len(set(ids)) == 3
    with pytest.raises(ValueError, match="index 48 is past the 48 clip"):
        sample_node.sample(**{**base, "index": 48})
    r1 = sample_node.sample(**{**base, "mode": "random", "seed": 11})[4]
    assert r1 == sample_node.sample(**{**base, "mode": "random", "seed": 11})[4]
    from emovid_core.dataset import balanced_order

    bal = [sample_node.sample(**{**base, "mode": "balanced", "seed": 2, "index": i})[4] for i in range(3)]
    order = balanced_order(ds.clips, seed=2)[:3]
    assert bal == [c.clip_id for c in order] and len({(c.type, c.emotion) for c in order}) == 3
    with pytest.raises(ValueError, match="multiple of 16"):
        sample_node.sample(**{**base, "width": 40, "height": 32})
    with pytest.raises(ValueError, match="no clips left: 72 → emotion=fear 9 → type=sticker 3 → label_source=vlm 0"):
        sample_node.sample(**{**base, "mode": "index", "emotion": "fear", "type": "sticker", "label_source": "vlm"})
    # An index-less table: attributes are measured from the clip on demand.
    raw = tmp_path / "raw"
    shutil.copytree(indexed_root, raw)
    (raw / "emovid_index.csv").unlink()
    ds_raw, _ = ds_node.open(str(raw))
    out = sample_node.sample(**{**base, "dataset": ds_raw, "mode": "index", "index": 0})
    first = ds.clips[0]
    assert out[4] == first.clip_id and (out[5], out[6], out[7]) == (first.brightness, first.colorfulness, first.hue)
    cls = pack_nodes["EmoVidDataset"]
    before = cls.IS_CHANGED(str(raw))
    meta = raw / "emovid_metadata.csv"
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 10**9))
    assert cls.IS_CHANGED(str(raw)) != before and cls.IS_CHANGED(str(tmp_path / "nope")) == "missing"


# -------------------------------------------------------------------------------------------------------- CLI


def test_cli_make_sample_index_stats_filter_sample_split_export(tmp_path, capsys):
    from emovid_core.host.cli import main

    root = tmp_path / "cli"
    assert main(["dataset", "make-sample", str(root), "--index"]) == 0
    out = capsys.readouterr().out
    assert "wrote sample dataset" in out and "indexed 72 clip(s)" in out
    assert main(["dataset", "stats", str(root), "--json", str(tmp_path / "s.json"), "--plots", str(tmp_path / "plots"),
                 "--type", "movie"]) == 0
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["n"] == 24 and stats["selection"] == "72 → type=movie 24" and len(list((tmp_path / "plots").glob("*.png"))) == 4
    capsys.readouterr()
    assert main(["dataset", "filter", str(root), "--emotion", "fear", "--type", "sticker", "--range", "brightness=0.95..1"]) == 2
    assert "no clips left: 72 → emotion=fear 9 → type=sticker 3 → brightness=0.95..1.0 0" in capsys.readouterr().err
    assert main(["dataset", "filter", str(root), "--valence", "negative", "--out", str(tmp_path / "neg.csv")]) == 0
    assert len(load_dataset(tmp_path / "neg.csv").clips) == 36
    assert main(["dataset", "sample", str(root), "--mode", "benchmark", "--per-cell", "2", "--json", str(tmp_path / "b.json")]) == 0
    assert len(json.loads((tmp_path / "b.json").read_text())) == 48
    capsys.readouterr()
    assert main(["dataset", "sample", str(root), "--mode", "train", "--per-cell", "2"]) == 0
    assert "scaled by" in capsys.readouterr().out
    assert main(["dataset", "split", str(root), "--per-cell", "2", "--seed", "4"]) == 0
    assert sum(1 for c in load_dataset(root).clips if c.split == "test") == 48
    assert main(["dataset", "split", str(root), "--metadata", str(root / "emovid_metadata.csv")]) == 2
    assert main(["dataset", "export", str(root), str(tmp_path / "ex"), "--format", "diffsynth", "--split", "test",
                 "--type", "animation", "--link", "copy"]) == 0
    assert (tmp_path / "ex" / "metadata.csv").read_text().count("emotion.") == 16
