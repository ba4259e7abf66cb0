"""Dataset core: format, table I/O and rejects, importers, filters, sampling/splits, statistics, plots, decoding.

Real files throughout: one synthetic EmoVid-format set (``make_sample``) is generated per session and indexed
once; tests that change files work on copies.
"""

from __future__ import annotations

import math
import os
import random
import shutil

import numpy as np
import pytest

from emovid_core.dataset import (
    Clip,
    EmptySelectionError,
    Filter,
    apply_filter,
    assign_splits,
    balanced_order,
    benchmark_split,
    load_dataset,
    read_table,
    sample_balanced,
    sample_random,
    training_mix,
    write_table,
)
from emovid_core.dataset.format import check_relative_path, resolve_clip_path
from emovid_core.emotions import EMOTIONS

TYPES = ("animation", "movie", "sticker")


def _clip(i, type_="movie", emotion="fear", **kw):
    return Clip(clip_id=kw.pop("clip_id", f"c{i:05d}"), path=kw.pop("path", f"{type_}/{emotion}/c{i:05d}.mp4"),
                type=type_, emotion=emotion, **kw)


# ------------------------------------------------------------------------------------------- format + table


def test_table_roundtrip_csv_and_jsonl_keeps_values_and_extra_columns(tmp_path):
    clips = [
        _clip(1, "movie", "fear", label_source="human", caption='A "dark", long\ntunnel', brightness=0.3,
              colorfulness=0.5, hue=359, duration=8.5, fps=24.0, frames=204, width=640, height=360, film_id="f1",
              segment=3, split="test", extra={"notes": "keep me"}),
        _clip(2, "sticker", "amusement", caption="", brightness=None),
    ]
    for name in ("t.csv", "t.jsonl"):
        write_table(tmp_path / name, clips)
        ds = read_table(tmp_path / name)
        assert ds.rejects == []
        got = {c.clip_id: c for c in ds.clips}
        for c in clips:
            g = got[c.clip_id]
            for field in ("path", "type", "emotion", "label_source", "caption", "brightness", "colorfulness", "hue",
                          "duration", "fps", "frames", "width", "height", "film_id", "segment", "split"):
                assert getattr(g, field) == getattr(c, field), (name, field)
        assert got["c00001"].extra == {"notes": "keep me"}
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp files


def test_bad_rows_are_rejected_with_line_numbers_and_the_rest_loads(tmp_path):
    (tmp_path / "emovid_metadata.csv").write_text(
        "clip_id,video,type,emotion,brightness,hue\n"
        "ok1,a/ok1.mp4,movie,fear,0.3,10\n"
        "esc,../outside.mp4,movie,fear,,\n"
        "abs,/etc/passwd,movie,fear,,\n"
        "emo,b.mp4,movie,joyish,,\n"
        "typ,c.mp4,documentary,fear,,\n"
        "num,d.mp4,movie,fear,bright,\n"
        "rng,e.mp4,movie,fear,1.5,\n"
        "hue,f.mp4,movie,fear,,360\n"
        "ok1,g.mp4,movie,fear,,\n"
        "ok2,h.mp4,anime,Scared,,\n"
    )
    ds = load_dataset(tmp_path)
    assert [c.clip_id for c in ds.clips] == ["ok1", "ok2"]
    assert ds.clips[1].type == "animation" and ds.clips[1].emotion == "fear"  # aliases and synonyms map
    lines = {r.line: r.reason for r in ds.rejects}
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "leaves the dataset root" in lines[3]
    assert "absolute" in lines[4]
    assert "joyish" in lines[5] and "amusement" in lines[5]
    assert "documentary" in lines[6] and "animation, movie, sticker" in lines[6]
    assert "brightness" in lines[7] and "'bright'" in lines[7]
    assert "outside [0, 1]" in lines[8]
    assert "hue" in lines[9]
    assert "duplicate clip_id 'ok1'" in lines[10] and "line 2" in lines[10]
    assert "8 row(s) rejected" in ds.summary()


def test_missing_required_columns_are_listed(tmp_path):
    (tmp_path / "m.csv").write_text("video,caption\na.mp4,hi\n")
    with pytest.raises(ValueError) as err:
        read_table(tmp_path / "m.csv")
    msg = str(err.value)
    assert "clip_id" in msg and "type" in msg and "emotion" in msg and "path" not in msg.split("lacks")[1].split("(")[0]


def test_no_metadata_error_suggests_index_and_make_sample(tmp_path):
    with pytest.raises(FileNotFoundError, match="emovid dataset index"):
        load_dataset(tmp_path)


def test_path_escapes_are_refused(tmp_path):
    for bad in ("../x.mp4", "a/../../x.mp4", "/abs/x.mp4", "C:/x.mp4", ""):
        with pytest.raises(ValueError):
            check_relative_path(bad)
    assert check_relative_path("a/./b\\c.mp4") == "a/b/c.mp4"
    root = tmp_path / "root"
    (root / "movie").mkdir(parents=True)
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x")
    os.symlink(outside, root / "movie" / "link.mp4")
    with pytest.raises(ValueError, match="outside the dataset root"):
        resolve_clip_path(root, "movie/link.mp4")
    inside = root / "movie" / "real.mp4"
    inside.write_bytes(b"x")
    os.symlink(inside, root / "movie" / "alias.mp4")
    assert resolve_clip_path(root, "movie/alias.mp4") == inside.resolve()


# ------------------------------------------------------------------------------------------------ importers


def test_import_diffsynth_takes_emotion_from_the_sentence_or_the_folder(tmp_path):
    from emovid_core.dataset.importers import import_diffsynth

    (tmp_path / "metadata.csv").write_text(
        "video,prompt\n"
        'movie/film7_0003.mp4,"A man runs. The video is in the ""fear"" emotion."\n'
        "sticker/sadness/s1.gif,A crying cat.\n"
        "clips/x.mp4,No emotion anywhere.\n"
        'clips/y.mp4,A party. The video is in the “excitement” emotion\n'
        "../z.mp4,escape\n"
    )
    clips, rejects = import_diffsynth(tmp_path / "metadata.csv", label_source="vlm")
    by = {c.path: c for c in clips}
    assert by["movie/film7_0003.mp4"].emotion == "fear" and by["movie/film7_0003.mp4"].caption == "A man runs."
    assert (by["movie/film7_0003.mp4"].film_id, by["movie/film7_0003.mp4"].segment) == ("film7", 3)
    assert by["sticker/sadness/s1.gif"].emotion == "sadness" and by["sticker/sadness/s1.gif"].type == "sticker"
    assert all(c.label_source == "vlm" for c in clips)
    assert "clips/y.mp4" not in by  # emotion from the curly-quoted sentence, but no type on the path
    reasons = {r.line: r.reason for r in rejects}
    assert "no emotion" in reasons[4] and "no source type" in reasons[5] and "leaves the dataset root" in reasons[6]
    clips2, _ = import_diffsynth(tmp_path / "metadata.csv", default_type="animation")
    assert {c.path: c.emotion for c in clips2}["clips/y.mp4"] == "excitement"


def test_import_folder_tree_reads_types_emotions_captions_and_segments(sample_root, tmp_path):
    from emovid_core.dataset.importers import import_folder

    clips, rejects = import_folder(sample_root)
    assert len(clips) == 72 and rejects == []
    assert {(c.type, c.emotion) for c in clips} == {(t, e) for t in TYPES for e in EMOTIONS}
    movies = [c for c in clips if c.type == "movie"]
    assert all(c.film_id.startswith("mov_film") and c.segment is not None for c in movies)
    tree = tmp_path / "tree"
    (tree / "movie" / "Scared").mkdir(parents=True)
    shutil.copy(next(sample_root.glob("movie/fear/*.mp4")), tree / "movie" / "Scared" / "heist-seg12.mp4")
    (tree / "movie" / "Scared" / "heist-seg12.txt").write_text("A vault door opens.\n")
    (tree / "podcast" / "fear").mkdir(parents=True)
    (tree / "podcast" / "fear" / "p.mp4").write_bytes(b"")
    (tree / "loose.mp4").write_bytes(b"")
    clips, rejects = import_folder(tree)
    assert [(c.emotion, c.caption, c.film_id, c.segment) for c in clips] == [("fear", "A vault door opens.", "heist", 12)]
    assert sorted(r.value for r in rejects) == ["loose.mp4", "podcast/fear/p.mp4"]


# --------------------------------------------------------------------------------------------------- filters


def test_filters_and_the_empty_result_trace(indexed_root):
    ds = load_dataset(indexed_root)
    kept, trace = apply_filter(ds.clips, Filter(emotions="fear", types="sticker"))
    assert trace == [("all", 72), ("emotion=fear", 9), ("type=sticker", 3)]
    assert all(c.emotion == "fear" and c.type == "sticker" for c in kept)
    with pytest.raises(EmptySelectionError) as err:
        apply_filter(ds.clips, Filter(emotions="fear", types="sticker", ranges={"brightness": (0.95, 1.0)}))
    assert str(err.value).startswith("no clips left: 72 → emotion=fear 9 → type=sticker 3 → brightness=0.95..1.0 0")
    pos, _ = apply_filter(ds.clips, Filter(valence="positive"))
    assert {c.emotion for c in pos} == {"amusement", "awe", "contentment", "excitement"}
    human, _ = apply_filter(ds.clips, Filter(label_sources="human"))
    assert len(human) == 56 and all(c.label_source == "human" for c in human)
    test, _ = apply_filter(ds.clips, Filter(splits="test"))
    none, _ = apply_filter(ds.clips, Filter(splits="none"))
    assert len(test) == 48 and all(c.split == "" for c in none) and len(none) == 72 - 48 - 18
    cap, _ = apply_filter(ds.clips, Filter(caption="DARK TUNNEL"))
    assert cap and all("dark tunnel" in c.caption for c in cap)
    rx, _ = apply_filter(ds.clips, Filter(caption=r"^An animated sticker", caption_regex=True))
    assert {c.type for c in rx} == {"sticker"}
    bright, _ = apply_filter(ds.clips, Filter(ranges={"brightness": (0.5, None)}))
    assert bright and all(c.brightness >= 0.5 for c in bright)
    film, _ = apply_filter(ds.clips, Filter(films="film00"))
    assert film and {c.film_id for c in film} == {"film00"}


def test_hue_range_wraps_and_bad_filters_are_named():
    clips = [_clip(i, hue=h) for i, h in enumerate([0, 15, 100, 340, 359])]
    kept, _ = apply_filter(clips, Filter(ranges={"hue": (330, 30)}))
    assert sorted(c.hue for c in kept) == [0, 15, 340, 359]
    with pytest.raises(ValueError, match="joyish"):
        Filter(emotions="joyish")
    with pytest.raises(ValueError, match="'neutral'"):
        Filter(valence="neutral")
    with pytest.raises(ValueError, match="swap"):
        Filter(ranges={"brightness": (0.8, 0.2)})
    with pytest.raises(ValueError, match="loudness"):
        Filter(ranges={"loudness": (0, 1)})


# ---------------------------------------------------------------------------------------- sampling + splits


def _paper_sized_table():
    """22,758 clips with the paper's type counts, its human-label counts, emotions spread over all 24 cells."""
    rng = random.Random(7)
    clips = []
    counts = {"animation": 2807, "movie": 13255, "sticker": 6696}
    human = {"animation": 282, "movie": 2771, "sticker": 6696}
    for t, n in counts.items():
        for i in range(n):
            clips.append(_clip(len(clips), t, EMOTIONS[i % 8], clip_id=f"{t[:3]}{i:05d}",
                               label_source="human" if i < human[t] else "vlm"))
    rng.shuffle(clips)
    return clips


def test_paper_benchmark_and_training_mix_on_a_full_size_table():
    clips = _paper_sized_table()
    bench = benchmark_split(clips, per_cell=10, seed=0)
    assert len(bench) == 240
    assert all(c.label_source == "human" for c in bench)
    cells = {(t, e): 0 for t in TYPES for e in EMOTIONS}
    for c in bench:
        cells[(c.type, c.emotion)] += 1
    assert set(cells.values()) == {10}
    train, report = training_mix(clips, {c.clip_id for c in bench}, seed=0)
    assert report.chosen == {"animation": 2727, "movie": 8000, "sticker": 6616} and report.scale == 1.0
    assert report.notes == [] and report.excluded == 240
    assert not {c.clip_id for c in train} & {c.clip_id for c in bench}
    movie_emotions = np.bincount([EMOTIONS.index(c.emotion) for c in train if c.type == "movie"], minlength=8)
    assert movie_emotions.max() - movie_emotions.min() <= 1  # the 8,000 movies are emotion-balanced


def test_sampling_is_deterministic_regardless_of_row_order(indexed_root, tmp_path):
    ds = load_dataset(indexed_root)
    rows = list(ds.clips)
    random.Random(3).shuffle(rows)
    write_table(tmp_path / "shuffled.csv", rows)
    other = read_table(tmp_path / "shuffled.csv", root=indexed_root)
    for fn in (lambda c: sample_random(c, 10, seed=5), lambda c: sample_balanced(c, 30, seed=5),
               lambda c: benchmark_split(c, per_cell=2, seed=5), lambda c: training_mix(c, [], seed=5)[0]):
        a = [c.clip_id for c in fn(ds.clips)]
        b = [c.clip_id for c in fn(list(reversed(other.clips)))]
        assert a == b
    assert [c.clip_id for c in sample_random(ds.clips, 10, seed=5)] != [c.clip_id for c in sample_random(ds.clips, 10, seed=6)]


def test_balanced_order_cycles_through_every_cell(indexed_root):
    ds = load_dataset(indexed_root)
    order = balanced_order(ds.clips, seed=1)
    assert len(order) == 72 and len({c.clip_id for c in order}) == 72
    for start in (0, 24, 48):
        assert {(c.type, c.emotion) for c in order[start:start + 24]} == {(t, e) for t in TYPES for e in EMOTIONS}
    with pytest.raises(ValueError, match="cannot draw 73"):
        sample_balanced(ds.clips, 73)


def test_benchmark_split_scaled_to_the_sample_and_short_cells_named(indexed_root):
    ds = load_dataset(indexed_root)
    bench = benchmark_split(ds.clips, per_cell=2, seed=0)
    assert len(bench) == 48 and all(c.label_source == "human" for c in bench)
    assert {(c.type, c.emotion) for c in bench} == {(t, e) for t in TYPES for e in EMOTIONS}
    with pytest.raises(ValueError) as err:
        benchmark_split(ds.clips, per_cell=3)
    msg = str(err.value)
    assert "animation/amusement has 2" in msg and "movie/fear has 2" in msg and "sticker" not in msg


def test_training_mix_excludes_benchmark_and_scales_down_with_a_note(indexed_root):
    ds = load_dataset(indexed_root)
    bench = {c.clip_id for c in benchmark_split(ds.clips, per_cell=2, seed=0)}
    train, report = training_mix(ds.clips, bench, seed=0)
    ids = {c.clip_id for c in train}
    assert not ids & bench and report.excluded == 48
    # 8 clips per type are left; movie is the tightest (8 of 8,000), so every target scales by 0.001.
    assert report.available == {"animation": 8, "movie": 8, "sticker": 8}
    assert report.chosen == {"animation": 3, "movie": 8, "sticker": 7}
    assert math.isclose(report.scale, 0.001) and "scaled by 0.0010" in str(report)
    splits, srep = assign_splits(ds.clips, per_cell=2, seed=0)
    assert (srep.test, srep.train, srep.unassigned) == (48, 18, 6)
    assert {c.clip_id for c in splits if c.split == "test"} == bench


# ------------------------------------------------------------------------------------------------ statistics


def test_anova_eta_squared_f_and_p_on_a_hand_computed_example():
    from emovid_core.dataset.stats import compute_stats

    # Groups (×10): {1,2,3}, {2,3,4}, {6,7,8}. Grand mean 4; SS_between = 3·4 + 3·1 + 3·9 = 42; SS_within = 6.
    # η² = 42/48 = 0.875; F = (42/2)/(6/6) = 21; for F(2, d2) the p-value is (1 + 2F/d2)^(−d2/2) = 8^−3.
    groups = {"amusement": [0.1, 0.2, 0.3], "awe": [0.2, 0.3, 0.4], "fear": [0.6, 0.7, 0.8]}
    clips = []
    i = 0
    for e, vs in groups.items():
        for v in vs:
            clips.append(_clip(i, "movie", e, brightness=v, colorfulness=0.5))
            i += 1
    a = compute_stats(clips)["attributes"]["brightness"]
    an = a["anova"]
    assert math.isclose(an["eta2"], 0.875, rel_tol=1e-9)
    assert math.isclose(an["F"], 21.0, rel_tol=1e-9)
    assert (an["df_between"], an["df_within"]) == (2, 6)
    assert math.isclose(an["p"], 1 / 512, rel_tol=1e-9)
    assert math.isclose(a["by_emotion"]["fear"]["mean"], 0.7) and math.isclose(a["by_emotion"]["fear"]["std"], 0.1)
    assert a["by_emotion"]["sadness"]["n"] == 0
    assert compute_stats(clips)["attributes"]["colorfulness"]["anova"]["eta2"] == 0.0  # no spread at all


def test_f_distribution_tail_matches_closed_forms():
    from emovid_core.dataset.stats import betainc, f_sf

    for f, d2 in ((3.0, 10), (0.5, 7), (1.2, 22750)):
        assert math.isclose(f_sf(f, 2, d2), (1 + 2 * f / d2) ** (-d2 / 2), rel_tol=1e-9)
    t = 1.7  # F(1, 1) = t² of a Cauchy variable: P = 1 − (2/π)·atan(t)
    assert math.isclose(f_sf(t * t, 1, 1), 1 - 2 / math.pi * math.atan(t), rel_tol=1e-9)
    assert math.isclose(betainc(2, 3, 0.4), sum(math.comb(4, j) * 0.4**j * 0.6 ** (4 - j) for j in range(2, 5)), rel_tol=1e-12)


def test_hue_is_treated_as_circular():
    from emovid_core.dataset.stats import circular_anova, circular_summary

    s = circular_summary([350, 10])
    assert math.isclose(s["mean"] % 360 if s["mean"] < 359.999 else 0.0, 0.0, abs_tol=1e-9)
    assert math.isclose(circular_summary([90, 90, 90])["R"], 1.0)
    # Same spread around 0° and around 180°: the groups differ completely on the circle.
    high = circular_anova([[350, 10, 355, 5], [170, 190, 175, 185]])
    same = circular_anova([[350, 10, 355, 5], [352, 8, 357, 3]])
    assert high["eta2"] > 0.95 and same["eta2"] < 0.05 and high["p"] < same["p"]
    assert high["p_approximate"] is True


def test_markov_matrix_on_a_hand_made_film_sequence():
    from emovid_core.dataset.stats import markov_transitions

    seq = [("A", 0, "fear"), ("A", 1, "fear"), ("A", 2, "anger"), ("A", 3, "anger"), ("A", 4, "sadness"),
           ("B", 0, "sadness"), ("B", 2, "fear"),  # a gap (segment 1 missing)
           ("C", 0, "amusement")]
    clips = [_clip(i, "movie", e, film_id=f, segment=s) for i, (f, s, e) in enumerate(seq)]
    random.Random(0).shuffle(clips)  # order in the table must not matter
    clips.append(_clip(99, "sticker", "awe"))  # not a movie: ignored
    clips.append(_clip(98, "movie", "awe"))  # no film id: ignored, counted
    m = markov_transitions(clips)
    ix = {e: i for i, e in enumerate(EMOTIONS)}
    counts = np.array(m["counts"])
    expected = np.zeros((8, 8), dtype=int)
    for a, b in (("fear", "fear"), ("fear", "anger"), ("anger", "anger"), ("anger", "sadness"), ("sadness", "fear")):
        expected[ix[a], ix[b]] += 1
    assert (counts == expected).all()  # A's last sadness → B's first sadness is across films: not counted
    mat = np.array(m["matrix"])
    assert mat[ix["fear"], ix["fear"]] == 0.5 and mat[ix["fear"], ix["anger"]] == 0.5
    assert mat[ix["sadness"], ix["fear"]] == 1.0 and mat[ix["awe"]].sum() == 0
    assert (m["films"], m["pairs"], m["gaps_bridged"], m["movie_clips_without_film"]) == (3, 5, 1, 1)
    strict = markov_transitions(clips, consecutive_only=True)
    assert np.array(strict["counts"])[ix["sadness"], ix["fear"]] == 0 and strict["gaps_skipped"] == 1


def test_positive_share_bins():
    from emovid_core.dataset.stats import positive_share

    clips = [_clip(0, emotion="awe", brightness=0.1), _clip(1, emotion="fear", brightness=0.1),
             _clip(2, emotion="fear", brightness=0.14), _clip(3, emotion="amusement", brightness=0.9),
             _clip(4, emotion="sadness")]
    bins = positive_share(clips, "brightness")
    assert len(bins) == 11 and bins[1]["center"] == 0.1
    assert (bins[1]["n"], bins[1]["positive"]) == (3, 1) and math.isclose(bins[1]["share"], 1 / 3)
    assert bins[9]["share"] == 1.0 and bins[5]["share"] is None


def test_sample_set_follows_the_papers_colour_findings(indexed_root):
    from emovid_core.dataset.stats import compute_stats

    s = compute_stats(load_dataset(indexed_root).clips)
    b, c = s["attributes"]["brightness"], s["attributes"]["colorfulness"]
    assert b["by_valence"]["positive"]["mean"] > b["by_valence"]["negative"]["mean"] + 0.05
    assert c["by_valence"]["positive"]["mean"] > c["by_valence"]["negative"]["mean"]
    assert b["by_arousal"]["high"]["mean"] < b["by_arousal"]["low"]["mean"]
    assert c["by_arousal"]["high"]["mean"] > c["by_arousal"]["low"]["mean"]
    assert s["markov"]["pairs"] == 20 and s["markov"]["films"] == 4
    assert np.trace(np.array(s["markov"]["counts"])) >= 8  # emotions persist from one segment to the next


def test_plots_are_same_size_pictures_and_pngs(indexed_root, tmp_path):
    from PIL import Image

    from emovid_core.dataset.plots import PLOT_NAMES, render_plots, save_plots
    from emovid_core.dataset.stats import compute_stats

    stats = compute_stats(load_dataset(indexed_root).clips)
    plots = render_plots(stats)
    assert list(plots) == list(PLOT_NAMES)
    shapes = {p.shape for p in plots.values()}
    assert len(shapes) == 1 and next(iter(shapes))[2] == 3
    for rgb in plots.values():
        assert rgb.dtype == np.uint8 and rgb.std() > 20  # drawn content, not a blank canvas
    paths = save_plots(stats, tmp_path)
    assert [p.name for p in paths] == [f"dataset_{n}.png" for n in PLOT_NAMES]
    assert Image.open(paths[3]).size == (shapes.pop()[1], plots["counts"].shape[0])


# -------------------------------------------------------------------------------------------------- decoding


def test_decode_controls_wan_checks_and_memory_guard(indexed_root):
    from emovid_core import video_io
    from emovid_core.dataset.decode import DecodeOptions, decode_clip

    ds = load_dataset(indexed_root)
    clip = max((c for c in ds.clips if c.type == "animation"), key=lambda c: c.frames)
    d = decode_clip(ds, clip, DecodeOptions(width=32, height=32, wan_4n1=True))
    assert d.frames.shape[1:] == (32, 32, 3) and (len(d.frames) - 1) % 4 == 0 and len(d.frames) <= clip.frames
    d2 = decode_clip(ds, clip, DecodeOptions(skip_first=2, every_nth=3, max_frames=4))
    assert d2.indices == [2, 5, 8, 11] and d2.frames.shape == (4, 48, 64, 3) and math.isclose(d2.fps, clip.fps / 3)
    full = video_io.read_frames(ds.clip_path(clip), progress=False)
    assert np.array_equal(d2.frames, full[[2, 5, 8, 11]])  # seeking gives the same pixels as a full decode
    with pytest.raises(ValueError, match="multiple of 16.*use 48 or 64"):
        decode_clip(ds, clip, DecodeOptions(width=50, height=32))
    with pytest.raises(ValueError, match="set both width and height"):
        decode_clip(ds, clip, DecodeOptions(width=32))
    with pytest.raises(ValueError, match="GiB"):
        decode_clip(ds, clip, DecodeOptions(), max_bytes=1000)
    sticker = next(c for c in ds.clips if c.type == "sticker")
    g = decode_clip(ds, sticker, DecodeOptions(target_fps=10))
    assert g.frames.shape[1:] == (48, 64, 3) and g.fps == 10


def test_stats_of_an_unindexed_table_say_how_to_get_attributes(sample_root):
    from emovid_core.dataset.plots import render_plots
    from emovid_core.dataset.stats import compute_stats, summary_lines

    stats = compute_stats(read_table(sample_root / "emovid_metadata.csv").clips)
    lines = summary_lines(stats)
    assert stats["attributes"]["brightness"]["missing"] == 72
    assert any(line.startswith("brightness: no values") and "emovid dataset index" in line for line in lines)
    assert stats["markov"]["pairs"] == 20  # the Markov matrix needs only labels and segments
    assert len(render_plots(stats)) == 4
