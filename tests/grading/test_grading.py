"""Core grading and drift correction on synthetic clips with known statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovid_core import attributes as A
from emovid_core import grading as G
from tests.grading.utils import hsv_clip


@pytest.fixture(scope="module")
def clip():
    return hsv_clip(200, 0.6, 0.68, n=41, height=36, width=48)  # bright, saturated, bluish: B 0.66, C 0.55


def measured(images, stride=20):
    return A.clip_attributes(images, stride)


def test_strength_zero_is_identity(clip):
    out, rep = G.grade(clip, G.Targets(0.2, 0.1, 30.0), strength=0.0, progress=False)
    assert torch.equal(out, clip)
    assert rep.passes == 0 and np.all(rep.gamma_v == 1) and np.all(rep.hue_shift == 0)
    # A vanishing strength goes through the whole transform and still returns the input to float error.
    out, rep = G.grade(clip, G.Targets(0.2, 0.1, 30.0), strength=1e-9, progress=False)
    assert float((out - clip).abs().max()) < 2e-5


@pytest.mark.parametrize("mode", G.MODES)
@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_hits_the_strength_interpolated_goal(clip, mode, strength):
    t = G.Targets(0.30, 0.25, 170.0)
    out, rep = G.grade(clip, t, strength=strength, mode=mode, progress=False)
    before, after = measured(clip), measured(out)
    for name, target in (("brightness", 0.30), ("colorfulness", 0.25)):
        goal = getattr(before, f"{name}_raw") + strength * (target - getattr(before, f"{name}_raw"))
        assert abs(getattr(after, f"{name}_raw") - goal) <= 0.01, name  # re-measured independently
        assert rep.goal[name] == pytest.approx(goal)
        assert abs(rep.miss(name)) <= G.LOOP_TOLERANCE + 1e-6
    assert rep.close_enough and "within 0.01 of the goal: yes" in "\n".join(rep.lines())
    # Hue: every frame turns by s * wrap(170 - H), under the 30-degree cap; grey bars (hue 0) do not turn, so the
    # measured mean lands a little short of the goal (the report shows it).
    d = float(np.clip(strength * (((170.0 - before.hue_raw + 180) % 360) - 180), -30, 30))
    assert rep.goal["hue"] == pytest.approx((before.hue_raw + d) % 360, abs=1e-6)
    assert np.allclose(rep.hue_shift, d, atol=1e-9 if mode == "clip" else 3.0)
    assert abs(((after.hue_raw - rep.goal["hue"] + 180) % 360) - 180) < 5.0
    assert rep.passes <= 2


def test_hue_shift_is_capped(clip):
    out, rep = G.grade(clip, G.Targets(hue=20.0), max_hue_shift=30.0, progress=False)  # wants +178
    before = measured(clip)
    assert rep.goal["hue"] == pytest.approx((before.hue_raw + 30.0) % 360)
    assert np.all(rep.hue_shift == 30.0)
    assert rep.goal["brightness"] is None and np.all(rep.gamma_v == 1.0)
    assert measured(out).brightness_raw == pytest.approx(measured(clip).brightness_raw, abs=2e-4)


def test_blacks_and_whites_stay_put(clip):
    for t in (G.Targets(0.1, 0.05), G.Targets(0.95, 0.9)):
        out, rep = G.grade(clip, t, progress=False)
        assert float(out[:, :, :2].abs().max()) == 0.0  # the black bar
        assert float(out[:, :, -2:].min()) == 1.0  # the white bar
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_clip_mode_has_no_flicker_and_frame_mode_is_bounded():
    # Content that jumps from dark to bright half way: per-frame solving would jump too; smoothing spreads it.
    n = 40
    v = np.where(np.arange(n) < 20, 0.35, 0.75)
    x = hsv_clip(120, 0.5, v, n=n, height=20, width=24)
    t = G.Targets(0.5, 0.3)
    _, clip_rep = G.grade(x, t, mode="clip", progress=False)
    assert clip_rep.grade_flicker == 0.0 and len(set(clip_rep.gamma_v)) == 1
    _, frame_rep = G.grade(x, t, mode="frame", smooth_sigma=6.0, progress=False)
    raw = np.log(frame_rep.gamma_v)
    # A Gaussian of sigma 6 moves at most 1/(sigma*sqrt(2*pi)) ~ 0.066 of the raw curve's range per frame.
    span = raw.max() - raw.min()
    assert span > 0.3  # the grade really follows the content
    assert frame_rep.grade_flicker <= 0.07 * span + 1e-6
    assert frame_rep.close_enough


def test_skin_protection_reports_how_close(clip):
    warm = hsv_clip(25, 0.4, 0.7, n=21, height=24, width=32)  # skin-like everywhere: protection bites
    out, rep = G.grade(warm, G.Targets(0.3, 0.2), protect_skin=1.0, progress=False)
    assert rep.protected > 0.3
    text = "\n".join(rep.lines())
    assert "skin protection" in text and f"miss {rep.miss('brightness'):+.4f}" in text
    plain_out, plain = G.grade(warm, G.Targets(0.3, 0.2), progress=False)
    assert abs(plain.miss("brightness")) <= 0.01 and abs(rep.miss("brightness")) > abs(plain.miss("brightness"))
    # Protected pixels keep more of their original values than unprotected grading does.
    assert float((out - warm).abs().mean()) < float((plain_out - warm).abs().mean())
    # Away from skin hues nothing is protected and the goal is met with protection on.
    _, blue = G.grade(clip, G.Targets(0.3, 0.25), protect_skin=1.0, progress=False)
    assert blue.protected < 0.05 and blue.close_enough


def test_drift_correction_flattens_a_drifting_clip():
    n = 30
    x = hsv_clip(np.linspace(40, 80, n), np.linspace(0.3, 0.6, n), np.linspace(0.4, 0.7, n), n=n, height=20, width=24)
    before = A.curves(A.frame_stats(x, progress=False))
    out, rep = G.correct_drift(x, max_hue_shift=60.0, progress=False)  # the hue drifts 40 degrees
    after = A.curves(A.frame_stats(out, progress=False))
    for name in ("brightness", "colorfulness"):
        assert np.std(before[name]) > 0.05
        assert np.abs(after[name] - before[name][0]).max() < 0.01
    hue_drift = np.abs(((after["hue"] - after["hue"][0] + 180) % 360) - 180).max()
    assert hue_drift < 0.5 and np.abs(before["hue"] - before["hue"][0]).max() > 20
    # A reference frame in the middle, and a reference clip's curves (a steady clip -> a steady result).
    _, mid = G.correct_drift(x, 15, hue=False, progress=False)
    assert mid.after.brightness_raw == pytest.approx(before["brightness"][15], abs=0.01)
    steady = hsv_clip(60, 0.45, 0.55, n=10, height=20, width=24)
    out2, rep2 = G.correct_drift(x, steady, progress=False)
    b2 = A.curves(A.frame_stats(out2, progress=False))["brightness"]
    assert np.std(b2) < 0.005 and "reference clip (10 frames, resampled to 30)" in rep2.source
    with pytest.raises(ValueError, match="reference frame 40"):
        G.correct_drift(x, 40, progress=False)


def test_targets_from_dataset_stats_and_reference(tmp_path, clip):
    from emovid_core.dataset.format import Clip
    from emovid_core.dataset.stats import compute_stats

    rows = [("fear", 0.25, 0.30, 220), ("fear", 0.35, 0.20, 240), ("amusement", 0.7, 0.6, 30)]
    clips = [Clip(clip_id=f"c{i}", path=f"c{i}.mp4", type="movie", emotion=e, brightness=b, colorfulness=c, hue=h)
             for i, (e, b, c, h) in enumerate(rows)]
    stats = compute_stats(clips)
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(stats))
    t = G.resolve_targets(emotion="scared", stats=str(path))  # a synonym of fear
    assert (t.brightness, t.colorfulness) == pytest.approx((0.30, 0.25)) and t.hue == pytest.approx(230, abs=1e-6)
    assert "fear" in t.source and "2 clips" in t.source
    assert G.resolve_targets(emotion="fear", stats=json.dumps(stats), brightness=0.4).brightness == 0.4
    ref = G.resolve_targets(reference=clip)
    assert ref.brightness == pytest.approx(measured(clip).brightness_raw)
    with pytest.raises(ValueError, match="needs the per-emotion statistics.*--stats STATS.json"):
        G.resolve_targets(emotion="fear")
    with pytest.raises(ValueError, match="no clip labelled 'sadness'"):
        G.resolve_targets(emotion="sadness", stats=stats)
    with pytest.raises(ValueError, match="no 'attributes' section"):
        G.resolve_targets(emotion="fear", stats={"n": 3})
    with pytest.raises(FileNotFoundError, match="emovid dataset stats"):
        G.resolve_targets(emotion="fear", stats=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="strength=2"):
        G.grade(clip, t, strength=2, progress=False)
    with pytest.raises(ValueError, match="mode='per-shot'"):
        G.grade(clip, t, mode="per-shot", progress=False)


def test_report_json_and_plot(clip):
    _, rep = G.grade(clip, G.Targets(0.4, 0.3, 180.0), mode="frame", progress=False)
    data = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert data["close_enough"] is True and len(data["gamma_v"]) == 41 and len(data["curves"]["after"]["brightness"]) == 41
    img = G.plot_rgb(rep)
    assert img.shape == (840, 1000, 3) and img.dtype == np.uint8 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50


def test_rgba_alpha_and_uint8_input(clip):
    rgba = torch.cat([clip, torch.rand(*clip.shape[:3], 1)], -1)
    out, rep = G.grade(rgba, G.Targets(0.4, 0.3), progress=False)
    assert out.shape[-1] == 4 and torch.equal(out[..., 3], rgba[..., 3]) and rep.close_enough
    u8 = (clip.numpy() * 255).round().astype(np.uint8)
    out8, rep8 = G.grade(u8, G.Targets(0.4, 0.3), progress=False)
    assert rep8.close_enough and out8.dtype == torch.float32
