"""emovid_core.video_io on real files: encode with our writer (and plain ffmpeg for other containers), decode back."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from emovid_core import video_io as vio

T, H, W, FPS = 40, 48, 64, 16.0


def make_frames(n=T, h=H, w=W, seed=0) -> np.ndarray:
    """Frames that differ strongly from each other (8x8-pixel random blocks, so lossy codecs keep them apart)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (n, h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(8, axis=1).repeat(8, axis=2)[:, :h, :w])


def flat_frames(n=12, h=H, w=W) -> np.ndarray:
    """Few-colour frames (< 256 colours in total) that GIF stores exactly."""
    out = np.zeros((n, h, w, 3), np.uint8)
    for t in range(n):
        out[t, :, :, 0] = (t * 20) % 256
        out[t, :, : w // 2, 1] = 200
        out[t, h // 2 :, :, 2] = 90 + t
    return out


def identify(decoded: np.ndarray, source: np.ndarray) -> list[int]:
    """Which source frame each decoded frame is (nearest by mean absolute error)."""
    d = decoded.astype(np.int16)[:, None]
    s = source.astype(np.int16)[None]
    return np.abs(d - s).mean(axis=(2, 3, 4)).argmin(axis=1).tolist()


def mae(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def src():
    return make_frames()


@pytest.fixture(scope="module")
def files(tmp_path_factory, src):
    d = tmp_path_factory.mktemp("videos")
    out = {fmt: vio.write_video(src, d / f"clip.{fmt}", FPS) for fmt in ("mp4", "webm", "gif")}
    out["webp"] = vio.write_video(src, d / "clip.webp", FPS, quality=100)  # lossless
    return out


@pytest.fixture(scope="module")
def ffmpeg_containers(tmp_path_factory, files):
    """mov/mkv/avi made by plain ffmpeg (not our writer); a GOP of 8 so seeks land between keyframes."""
    d = tmp_path_factory.mktemp("containers")
    exe = vio.ffmpeg_exe()
    out = {}
    for ext, codec in (("mov", ["-c:v", "libx264", "-g", "8"]), ("mkv", ["-c:v", "libx264", "-g", "8"]),
                       ("avi", ["-c:v", "mjpeg", "-q:v", "3"])):
        p = d / f"clip.{ext}"
        subprocess.run([exe, "-v", "error", "-y", "-i", str(files["mp4"]), *codec, "-pix_fmt", "yuv420p" if ext != "avi" else "yuvj420p", str(p)],
                       check=True, timeout=60)
        out[ext] = p
    return out


# ----------------------------------------------------------------------------------------------- probe / decode


@pytest.mark.parametrize("fmt,kind", [("mp4", "video"), ("webm", "video"), ("gif", "gif"), ("webp", "webp")])
def test_probe_and_full_decode(files, src, fmt, kind):
    info = vio.probe(files[fmt])
    assert (info.frames, info.width, info.height, info.kind) == (T, W, H, kind)
    assert info.fps == pytest.approx(FPS, rel=0.01)
    assert info.duration == pytest.approx(T / FPS, rel=0.02)
    assert info.has_alpha is False
    frames = vio.read_frames(files[fmt])
    assert frames.shape == (T, H, W, 3) and frames.dtype == np.uint8
    assert identify(frames, src) == list(range(T))
    if fmt in ("gif", "webp"):
        # GIF: these frames have few colours per frame (8x8 blocks), so the palette is exact; WebP q=100 is lossless.
        assert mae(frames, src) == 0.0
    else:
        assert mae(frames, src) < 8.0, "lossy codecs keep the colours close at the default quality"


@pytest.mark.parametrize("ext", ["mov", "mkv", "avi"])
def test_other_containers_probe_and_decode(ffmpeg_containers, src, ext):
    info = vio.probe(ffmpeg_containers[ext])
    assert (info.frames, info.width, info.height, info.kind) == (T, W, H, "video")
    assert info.fps == pytest.approx(FPS, rel=0.01)
    frames = vio.read_frames(ffmpeg_containers[ext])
    assert identify(frames, src) == list(range(T))


@pytest.mark.parametrize("which", ["mp4", "webm", "gif", "webp", "mkv", "mov", "avi"])
def test_seeking_returns_the_same_pixels_as_sequential_decode(files, ffmpeg_containers, which, caplog):
    caplog.set_level("DEBUG", logger="EmoVid")
    path = files.get(which) or ffmpeg_containers[which]
    full = vio.read_frames(path)
    # 0 -> 30 and 3 -> 39 are longer than SEEK_DISTANCE, so the decoder seeks; 30 -> 31 grabs forward; repeats reuse.
    wanted = [0, 30, 31, 31, 39]
    picked = vio.read_frames(path, indices=wanted)
    assert picked.shape == (len(wanted), H, W, 3)
    for k, i in enumerate(wanted):
        assert np.array_equal(picked[k], full[i]), f"{which}: frame {i} after a seek differs from sequential decode"
    # A fresh iterator starting mid-stream (seek as first move) lands on the same frame too.
    first = next(vio.iter_frames(path, indices=[33]))
    assert np.array_equal(first, full[33])
    if which in ("mkv", "mov"):  # keyframe every 8 frames: the decoder really seeks (0 -> 30 -> 39, 0 -> 33)
        assert "-> 30" in caplog.text and "seek 0 -> 33" in caplog.text


def test_iter_frames_is_lazy_and_streams(files, src):
    it = vio.iter_frames(files["mp4"], every_nth=10)
    first = next(it)
    assert first.shape == (H, W, 3)
    assert identify(np.stack([first, *it]), src) == [0, 10, 20, 30]


# ---------------------------------------------------------------------------------------------------- planning


def _info(frames=T, fps=FPS, starts=()):
    from pathlib import Path

    dur = (starts[-1] + 0.1) if starts else frames / fps
    return vio.VideoInfo(Path("x.mp4"), frames, fps, W, H, dur, False, "video", frame_starts=tuple(starts))


def test_plan_indices_constant_rate():
    info = _info()
    assert vio.plan_indices(info) == list(range(T))
    assert vio.plan_indices(info, target_fps=8) == list(range(0, T, 2))
    assert vio.plan_indices(info, target_fps=24)[:9] == [0, 0, 1, 2, 2, 3, 4, 4, 5]
    assert len(vio.plan_indices(info, target_fps=24)) == 60  # 2.5 s at 24 fps
    assert vio.plan_indices(info, skip_first=4, every_nth=3, max_frames=4) == [4, 7, 10, 13]
    # skip_first happens in source frames, resampling after it: 8 fps from frame 5 = frames 5, 7, 9, ...
    assert vio.plan_indices(info, skip_first=5, target_fps=8)[:3] == [5, 7, 9]
    assert vio.plan_indices(info, max_frames=0) == list(range(T))


def test_plan_indices_wan_4n1():
    assert [vio.wan_frame_count(n) for n in (1, 2, 4, 5, 8, 9, 80, 81, 82)] == [1, 1, 1, 5, 5, 9, 77, 81, 81]
    assert len(vio.plan_indices(_info(), wan_4n1=True)) == 37
    assert vio.plan_indices(_info(), max_frames=20, wan_4n1=True) == list(range(17))


def test_plan_indices_rejects_bad_values():
    info = _info()
    with pytest.raises(ValueError, match="skip_first=40"):
        vio.plan_indices(info, skip_first=40)
    with pytest.raises(ValueError, match="every_nth=0"):
        vio.plan_indices(info, every_nth=0)
    with pytest.raises(ValueError, match="target_fps=-1"):
        vio.plan_indices(info, target_fps=-1)
    with pytest.raises(ValueError, match="max_frames"):
        vio.plan_indices(info, max_frames=1.5)


def test_target_fps_on_gif_follows_uneven_durations(tmp_path):
    frames = flat_frames(4)
    path = vio.write_video(frames, tmp_path / "uneven.gif", 10, durations_ms=[100, 300, 100, 500])
    info = vio.probe(path)
    assert info.frames == 4 and info.duration == pytest.approx(1.0)
    assert info.frame_starts == pytest.approx((0.0, 0.1, 0.4, 0.5))
    assert info.fps == pytest.approx(4.0)
    expected = [0, 1, 1, 1, 2, 3, 3, 3, 3, 3]  # what is on screen at t = 0.0, 0.1, ..., 0.9 s
    assert vio.plan_indices(info, target_fps=10) == expected
    decoded = vio.read_frames(path, target_fps=10)
    assert identify(decoded, frames) == expected
    assert mae(decoded, frames[expected]) == 0.0


def test_target_fps_on_mp4_picks_by_timestamp(files, src):
    decoded = vio.read_frames(files["mp4"], target_fps=6)  # 16 -> 6 fps: floor(k * 16 / 6)
    expected = [int(k * 16 / 6 + 1e-9) for k in range(15)]
    assert identify(decoded, src) == expected


# ------------------------------------------------------------------------------------------------ resize / crop


def test_resize_center_crop_and_plain_resize(files):
    # Source 64x48 with a red band in the 8 left columns; a 48x48 centre crop cuts exactly those 8 off.
    frames = np.zeros((3, H, W, 3), np.uint8)
    frames[:, :, :8, 0] = 255
    frames[:, :, 8:, 1] = 255
    path = vio.write_video(frames, files["gif"].parent / "band.gif", FPS)
    crop = vio.read_frames(path, size=(48, 48))
    assert crop.shape == (3, 48, 48, 3)
    assert crop[..., 0].max() == 0 and crop[..., 1].min() == 255
    plain = vio.read_frames(path, size=(32, 32), crop="none")
    assert plain.shape == (3, 32, 32, 3)
    assert plain[:, :, 0, 0].min() > 200, "a plain resize keeps the red band"
    assert vio.read_frames(path, size=(40, 0)).shape == (3, 30, 40, 3)  # 0 follows the aspect ratio
    assert vio.read_frames(path, size=(0, 24)).shape == (3, 24, 32, 3)
    assert vio.read_frames(files["mp4"], size=(100, 20), max_frames=2).shape == (2, 20, 100, 3)
    with pytest.raises(ValueError, match="crop='edge'"):
        vio.read_frames(path, size=(8, 8), crop="edge")


# ---------------------------------------------------------------------------------------------- memory guard


def test_memory_guard_raises_before_decoding(tmp_path):
    # A folder whose later frames are garbage: decoding would fail with a different error, so the memory
    # error proves the check ran first.
    Image.fromarray(make_frames(1)[0]).save(tmp_path / "f001.png")
    for i in range(2, 30):
        (tmp_path / f"f{i:03d}.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"29 frames of 64x48.*max_frames") as err:
        vio.read_frames(tmp_path, max_bytes=100_000)
    assert "GiB" in str(err.value)
    one = vio.read_frames(tmp_path, max_frames=1, max_bytes=100_000)  # 1 x 48 x 64 x 3 x 4 = 36,864 bytes fits
    assert one.shape == (1, H, W, 3)
    with pytest.raises(ValueError, match="f002.png"):
        vio.read_frames(tmp_path, max_frames=2)
    assert vio.check_memory(2, 10, 10, max_bytes=10**6) == 2 * 10 * 10 * 3 * 4


# ---------------------------------------------------------------------------------------------------- errors


def test_missing_corrupt_and_empty_inputs_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        vio.probe(tmp_path / "nope.mp4")
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="garbage.mp4"):
        vio.probe(bad)
    with pytest.raises(ValueError, match="garbage.mp4"):
        vio.read_frames(bad)
    badgif = tmp_path / "broken.gif"
    badgif.write_bytes(b"GIF89a" + b"\x00" * 20)
    with pytest.raises(ValueError, match="broken.gif"):
        vio.read_frames(badgif)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        vio.probe(empty)
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    with pytest.raises(ValueError, match="zero.mp4"):
        vio.probe(zero)


def test_video_without_frames_is_rejected(tmp_path):
    # A real mp4 container holding only audio: it opens, but has no video frames.
    p = tmp_path / "audio_only.mp4"
    subprocess.run([vio.ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.2",
                    "-c:a", "aac", str(p)], check=True, timeout=60)
    with pytest.raises(ValueError, match="audio_only.mp4"):
        vio.read_frames(p)


# ---------------------------------------------------------------------------------------------------- writing


def test_write_float_torch_and_odd_size_mp4(tmp_path):
    frames = make_frames(9, h=47, w=63)
    tensor = torch.from_numpy(frames).float() / 255.0
    p = vio.write_video(tensor, tmp_path / "odd.mp4", 12.5)
    info = vio.probe(p)
    assert (info.width, info.height, info.frames) == (64, 48, 9)  # padded to even for yuv420p
    assert info.fps == pytest.approx(12.5, rel=0.01)
    back = vio.read_frames(p)
    assert mae(back[:, :47, :63], frames) < 8.0
    assert vio.write_video(frames, tmp_path / "odd.webm", 12.5).stat().st_size > 0


def test_rgba_gif_and_webp_keep_transparency(tmp_path):
    frames = np.zeros((5, H, W, 4), np.uint8)
    frames[..., 0] = 200
    frames[..., 3] = 255
    frames[:, :, : W // 2, 3] = 0  # left half transparent
    for fmt in ("gif", "webp"):
        p = vio.write_video(frames, tmp_path / f"alpha.{fmt}", 10, quality=100)  # webp lossless
        assert vio.probe(p).has_alpha is True
        out = vio.read_frames(p, background=(255, 0, 255))
        assert np.array_equal(out[:, :, : W // 2].reshape(-1, 3).max(0), [255, 0, 255])
        assert np.array_equal(out[:, :, : W // 2].reshape(-1, 3).min(0), [255, 0, 255])
        assert np.abs(out[:, :, W // 2 :].astype(int) - [200, 0, 0]).max() <= 2
    # mp4 has no alpha: composited onto the background at write time.
    p = vio.write_video(frames, tmp_path / "alpha.mp4", 10, background=(0, 0, 255))
    out = vio.read_frames(p)
    assert out[:, :, :20, 2].mean() > 230 and out[:, :, -20:, 0].mean() > 180


def test_webp_uneven_durations_round_trip(tmp_path):
    p = vio.write_video(flat_frames(3), tmp_path / "d.webp", 10, durations_ms=[40, 120, 250])
    info = vio.probe(p)
    assert info.frame_starts == pytest.approx((0.0, 0.04, 0.16))
    assert info.duration == pytest.approx(0.41)


def test_gif_rounding_keeps_the_average_rate(tmp_path):
    p = vio.write_video(flat_frames(16), tmp_path / "r.gif", 16)  # 62.5 ms frames; GIF stores 10 ms units
    assert vio.probe(p).duration == pytest.approx(1.0, abs=0.011)


def test_write_errors_name_the_problem(tmp_path):
    frames = make_frames(2)
    with pytest.raises(ValueError, match=r"shape \[2, 48, 64\]"):
        vio.write_video(frames[..., 0], tmp_path / "a.mp4", 16)
    with pytest.raises(ValueError, match="int64"):
        vio.write_video(frames.astype(np.int64), tmp_path / "a.mp4", 16)
    with pytest.raises(ValueError, match="fps=0"):
        vio.write_video(frames, tmp_path / "a.mp4", 0)
    with pytest.raises(ValueError, match="fps=nan"):
        vio.write_video(frames, tmp_path / "a.gif", float("nan"))
    with pytest.raises(ValueError, match="'avi'"):
        vio.write_video(frames, tmp_path / "a.avi", 16)
    with pytest.raises(ValueError, match="0 frames"):
        vio.write_video(frames[:0], tmp_path / "a.mp4", 16)
    with pytest.raises(ValueError, match="frame 1 is 32x48"):
        vio.write_video([frames[0], frames[1][:, :32]], tmp_path / "a.mp4", 16)
    with pytest.raises(ValueError, match="durations_ms has 1 entries for 2 frames"):
        vio.write_video(frames, tmp_path / "a.gif", 16, durations_ms=[10])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, fmt):
    target = tmp_path / f"out.{fmt}"
    target.write_bytes(b"previous version")

    def frames():
        for f in make_frames(3):
            yield f
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        vio.write_video(frames(), target, 16)
    assert target.read_bytes() == b"previous version"
    assert [p.name for p in tmp_path.iterdir()] == [target.name], "no temporary file may be left behind"


# ---------------------------------------------------------------------------------------------- image folders


def test_image_folder_natural_order_alpha_and_fps(tmp_path):
    frames = make_frames(11)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"frame{i}.png")  # frame10 must come after frame9
    rgba = np.dstack([frames[3], np.zeros((H, W), np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "frame3.png")  # fully transparent frame
    (tmp_path / "notes.txt").write_text("ignored")
    info = vio.probe(tmp_path, fps=8)
    assert (info.kind, info.frames, info.fps, info.duration) == ("images", 11, 8.0, pytest.approx(11 / 8))
    out = vio.read_frames(tmp_path, fps=8, background=(10, 20, 30))
    found = identify(out, frames)
    assert found[:3] + found[4:] == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert np.all(out[3] == [10, 20, 30])
    assert vio.probe(tmp_path).fps == vio.DEFAULT_IMAGES_FPS


# ----------------------------------------------------------------------------------------------- IMAGE tensors


def test_frames_to_image_and_back():
    frames = make_frames(3)
    img = vio.frames_to_image(frames)
    assert img.dtype == torch.float32 and tuple(img.shape) == (3, H, W, 3)
    assert float(img.max()) <= 1.0 and float(img.min()) >= 0.0
    assert np.array_equal(vio.image_to_uint8(img), frames)
    assert np.array_equal(vio.image_to_uint8(img.numpy() * 1.5).max(), 255)
    with pytest.raises(ValueError, match="uint8"):
        vio.frames_to_image(frames.astype(np.float32))


def many_colour_frames(n=3) -> np.ndarray:
    """Frames with 200 distinct colours each (< 254, so GIF still stores them exactly; palette indices > 85)."""
    out = np.zeros((n, 10, 20, 3), np.uint8)
    k = np.arange(200).reshape(10, 20)
    for t in range(n):
        out[t, ..., 0], out[t, ..., 1], out[t, ..., 2] = k, 255 - k, (k * 7 + t * 50) % 256
    return out


@pytest.mark.parametrize("fmt,quality", [("gif", 80), ("webp", 80), ("webp", 100)])
@pytest.mark.parametrize("make", [flat_frames, many_colour_frames])
def test_repeated_frames_are_kept(tmp_path, fmt, quality, make):
    # Pillow (GIF) and libwebp fold a frame equal to the previous one into it; a saved video must keep its count
    # (e.g. frames repeated by target_fps up-sampling, or a Wan clip's 4n+1 length).
    base = make(3)
    frames = base[[0, 0, 1, 1, 1, 2]]
    p = vio.write_video(frames, tmp_path / f"rep.{fmt}", 10, quality=quality)
    info = vio.probe(p)
    assert info.frames == 6 and info.duration == pytest.approx(0.6)
    back = vio.read_frames(p)
    assert identify(back, base) == [0, 0, 1, 1, 1, 2]
    if fmt == "gif":
        assert mae(back, frames) == 0.0, "the GIF marker pixel points at a palette slot of the same colour"
    elif quality == 100:
        assert mae(back, frames) < 0.05, "lossless: at most one nudged pixel per repeated frame"
    elif make is flat_frames:  # lossy WebP (4:2:0 chroma) keeps flat colours close; the 1-pixel-period pattern it blurs
        assert mae(back, frames) < 4.0


@pytest.mark.parametrize("ext", ["webm", "mp4"])
def test_variable_frame_rate_file_counts_and_seeks_exactly(tmp_path, files, src, ext, caplog):
    # Frames 11.. shifted by 0.5 s: the header-based count (duration x fps = 48 for webm) is wrong and a
    # timestamp seek lands on the wrong frame. probe must count 40, and seeking must fall back to decoding forward.
    p = tmp_path / f"vfr.{ext}"
    codec = "libvpx-vp9" if ext == "webm" else "libx264"
    subprocess.run([vio.ffmpeg_exe(), "-v", "error", "-y", "-i", str(files["mp4"]),
                    "-vf", "setpts='(N+if(gt(N,10),8,0))/(16*TB)'", "-fps_mode", "passthrough", "-c:v", codec, "-g", "8", str(p)],
                   check=True, timeout=60)
    assert vio.probe(p).frames == T
    full = vio.read_frames(p)
    assert identify(full, src) == list(range(T))
    caplog.set_level("DEBUG", logger="EmoVid")
    wanted = [0, 30, 35, 39]
    picked = vio.read_frames(p, indices=wanted)
    assert all(np.array_equal(picked[k], full[i]) for k, i in enumerate(wanted))
    assert "imprecise seek" in caplog.text


def test_truncated_file_returns_the_frames_that_exist(tmp_path, ffmpeg_containers, src, caplog):
    data = ffmpeg_containers["avi"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])  # the AVI header still says 40 frames
    assert vio.probe(cut).frames == T
    got = vio.read_frames(cut)
    assert 5 < len(got) < T and identify(got, src) == list(range(len(got)))
    assert "truncated" in caplog.text
    trimmed = vio.read_frames(cut, wan_4n1=True)
    assert len(trimmed) == vio.wan_frame_count(len(got)) and np.array_equal(trimmed, got[: len(trimmed)])


# -------------------------------------------------------------------------------------------- decode options


def test_decode_options_are_one_declaration_for_every_decode(files, src):
    opts = vio.DecodeOptions(skip_first=2, every_nth=3, max_frames=5, width=32, height=24)
    by_fields = vio.read_frames(files["gif"], skip_first=2, every_nth=3, max_frames=5, size=(32, 24))
    assert np.array_equal(vio.read_frames(files["gif"], opts), by_fields)
    assert np.array_equal(np.stack(list(vio.iter_frames(files["gif"], opts))), by_fields)
    loaded = vio.load_video(files["gif"], opts, progress=False)
    assert np.array_equal(loaded.frames, by_fields) and loaded.indices == [2, 5, 8, 11, 14]
    assert loaded.fps == opts.output_fps(loaded.info.fps) == loaded.info.fps / 3 and "-> 5 frames 32x24 at 5.333 fps" in loaded.summary()
    assert vio.DecodeOptions(target_fps=10, every_nth=2).output_fps(FPS) == 5.0
    assert vio.DecodeOptions.of(opts, size=(0, 0), max_frames=None) == vio.DecodeOptions(skip_first=2, every_nth=3)
    with pytest.raises(TypeError, match="unknown decode option.*stride"):
        vio.read_frames(files["gif"], stride=2)
    with pytest.raises(ValueError, match="every_nth=0 must be at least 1"):
        vio.DecodeOptions(every_nth=0).check()
    with pytest.raises(ValueError, match="crop='edge'"):
        vio.DecodeOptions(crop="edge").check()
    with pytest.raises(ValueError, match="set both width and height"):
        vio.DecodeOptions(width=32).check_wan_size()
    vio.DecodeOptions(width=32).check()  # one side 0 follows the aspect ratio: fine outside Wan
