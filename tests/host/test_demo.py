"""`emovid demo`: the whole headless story runs and writes what the README's demo table promises."""

from __future__ import annotations

import json

from emovid_core import video_io
from emovid_core.host.cli import main as cli_main


def test_demo_writes_video_report_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli_main(["demo", "--out", str(out), "--emotion", "awe", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed and "demo_report.json" in printed

    report = json.loads((out / "demo_report.json").read_text())
    assert report["emotion"] == "awe"
    assert report["prompt"].endswith(' The video is in the "awe" emotion.')
    assert report["generation"]["tiny_random_weights"] is True
    assert report["generation"]["loras"] == ["emovid_awe"]

    video = out / "generated_awe.mp4"
    info = video_io.probe(video)
    assert info.frames == report["generation"]["frames"]
    assert (info.width, info.height) == (report["generation"]["width"], report["generation"]["height"])

    for key in ("source_attributes", "generated_attributes"):
        clip = report[key]["clip"]
        assert 0.0 <= clip["brightness"] <= 1.0 and 0 <= clip["hue"] < 360
    cmp = report["comparison_with_dataset"]["generated"]
    assert cmp["nearest"] in cmp["per_emotion"] and len(cmp["ranking"]) == 8
    pngs = [p for p in report["files"].values() if p.endswith(".png")]
    assert len(pngs) == 6
    for path in pngs:
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    # A second run reuses the sample and the index instead of rebuilding them.
    assert cli_main(["demo", "--out", str(out), "--emotion", "awe", "--seed", "3"]) == 0
    assert "(reused)" in capsys.readouterr().out


def test_the_story_workflow_runs_headless_on_the_demo_outputs(tmp_path, capsys):
    """The same story as an API workflow of pack nodes (workflows/api/emovid_demo_story.json) through `emovid run`."""
    from emovid_core.host.schema import PACK_ROOT

    demo = tmp_path / "demo"
    assert cli_main(["demo", "--out", str(demo), "--emotion", "fear"]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    summary = tmp_path / "summary.json"
    code = cli_main(["run", str(PACK_ROOT / "workflows" / "api" / "emovid_demo_story.json"), "--models", str(demo),
                     "--set", f"2.root={demo / 'emovid_sample'}", "--out", str(out), "--json", str(summary)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(summary.read_text())
    videos = [f for f in result["files"] if f.endswith(".mp4")]
    assert len(videos) == 1
    info = video_io.probe(videos[0])
    assert (info.frames, info.width, info.height) == (9, 64, 48)
    texts = [t for ui in result["ui"].values() for t in ui.get("text", [])]
    assert sum(t.startswith("B=") for t in texts) == 2  # source and generated attributes
