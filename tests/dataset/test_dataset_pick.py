"""Drawing one clip (emovid_core.dataset.pick): modes, the decode, the paper's attributes without a second decode."""

from __future__ import annotations

import os
import shutil

import pytest

from emovid_core import video_io
from emovid_core.dataset import Filter, load_dataset
from emovid_core.dataset import pick as pick_mod
from emovid_core.dataset.pick import choose_clip, pick_clip
from emovid_core.video_io import DecodeOptions


@pytest.fixture()
def unindexed(indexed_root, tmp_path):
    """The indexed sample set without its index: attributes must be measured; returns (that dataset, indexed one)."""
    raw = tmp_path / "raw"
    shutil.copytree(indexed_root, raw)
    (raw / "emovid_index.csv").unlink()
    pick_mod._CACHE.clear()
    return load_dataset(raw), load_dataset(indexed_root)


@pytest.fixture()
def decodes(monkeypatch):
    """Counts decode passes: one per call that turns planned source frames into pixels."""
    calls = []
    real = video_io._iter_planned

    def counting(info, idx, *args):
        calls.append((info.path.name, list(idx)))
        return real(info, idx, *args)

    monkeypatch.setattr(video_io, "_iter_planned", counting)
    return calls


def _long_clip(ds):
    return sorted((c for c in ds.clips if c.type == "animation"), key=lambda c: (-(c.frames or 0), c.clip_id))[0]


def test_attributes_come_from_the_decoded_frames_with_one_decode_and_equal_the_index(unindexed, decodes):
    raw, indexed = unindexed
    clip = _long_clip(indexed)
    assert clip.frames > 20  # frames 0 and 20 are both pooled
    index = sorted(c.clip_id for c in raw.clips).index(clip.clip_id)
    picked = pick_clip(raw, Filter(), "index", 0, index)
    assert picked.clip.clip_id == clip.clip_id and picked.clip.brightness is None  # the table has no attributes
    assert picked.attributes_from == "decoded frames"
    assert (picked.brightness, picked.colorfulness, picked.hue) == (clip.brightness, clip.colorfulness, clip.hue)
    assert len(decodes) == 1 and len(decodes[0][1]) == clip.frames  # one pass over the full-rate frames
    # every_nth=2 still holds frames 0, 20, ...: no second decode either.
    decodes.clear()
    half = pick_clip(raw, Filter(), "index", 0, index, DecodeOptions(every_nth=2))
    assert half.attributes_from == "decoded frames" and len(decodes) == 1
    assert (half.brightness, half.colorfulness, half.hue) == (clip.brightness, clip.colorfulness, clip.hue)


@pytest.mark.parametrize("options", [DecodeOptions(width=32, height=32), DecodeOptions(every_nth=3),
                                     DecodeOptions(skip_first=1), DecodeOptions(max_frames=5)])
def test_decodes_that_miss_the_paper_frames_measure_them_from_the_file(unindexed, decodes, options):
    raw, indexed = unindexed
    clip = _long_clip(indexed)
    index = sorted(c.clip_id for c in raw.clips).index(clip.clip_id)
    picked = pick_clip(raw, Filter(), "index", 0, index, options)
    assert picked.attributes_from == "file"
    assert (picked.brightness, picked.colorfulness, picked.hue) == (clip.brightness, clip.colorfulness, clip.hue)
    # The second pass reads only the pooled frames (0, 20, ...), not the clip again.
    assert len(decodes) == 2 and decodes[1][1] == list(range(0, clip.frames, 20))


def test_indexed_attributes_and_the_cache(indexed_root, tmp_path, decodes):
    pick_mod._CACHE.clear()
    root = tmp_path / "ds"  # a copy: this test touches a clip file, and the session's indexed set is shared
    shutil.copytree(indexed_root, root)
    ds = load_dataset(root)
    a = pick_clip(ds, Filter(emotions="awe"), "random", 5, options=DecodeOptions(max_frames=3))
    assert a.attributes_from == "index" and a.frames.shape[0] == 3 and len(decodes) == 1
    assert (a.brightness, a.colorfulness, a.hue) == (a.clip.brightness, a.clip.colorfulness, a.clip.hue)
    b = pick_clip(ds, Filter(emotions="awe"), "random", 5, options=DecodeOptions(max_frames=3))
    assert b is a and len(decodes) == 1  # same inputs, same file: nothing decoded
    path = ds.clip_file(a.clip)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    c = pick_clip(ds, Filter(emotions="awe"), "random", 5, options=DecodeOptions(max_frames=3))
    assert c is not a and len(decodes) == 2  # the file changed: decoded again


def test_choose_clip_modes_and_errors(indexed_root):
    ds = load_dataset(indexed_root)
    by_id = sorted(ds.clips, key=lambda c: c.clip_id)
    assert choose_clip(ds, None, "index", 0, 3) is by_id[3]
    assert choose_clip(ds, None, "random", 9) == choose_clip(ds, None, "random", 9)
    assert choose_clip(ds, None, "benchmark", 0, 0).split == "test"
    with pytest.raises(ValueError, match="mode 'best': use one of random, balanced, benchmark, index"):
        choose_clip(ds, None, "best")
    with pytest.raises(ValueError, match="index 72 is past the 72 clip"):
        choose_clip(ds, None, "index", 0, 72)
    with pytest.raises(ValueError, match="multiple of 16"):
        pick_clip(ds, None, "index", 0, 0, DecodeOptions(width=40, height=32))
