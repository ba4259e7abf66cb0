"""The EmoVid emotion taxonomy: order, valence, Warriner (2013) arousal, synonyms and error messages."""

from __future__ import annotations

import dataclasses

import pytest

from emovid_core import emotions as E


def test_the_eight_emotions_in_the_papers_order():
    assert E.EMOTIONS == ("amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness")
    assert E.POSITIVE == ("amusement", "awe", "contentment", "excitement")
    assert E.NEGATIVE == ("anger", "disgust", "fear", "sadness")
    assert [E.get_emotion(n).index for n in E.EMOTIONS] == list(range(8))


@pytest.mark.parametrize(
    "name, valence, v, a",
    [
        # Ratings_Warriner_et_al.csv (JULIELab/XANEW), columns V.Mean.Sum and A.Mean.Sum.
        ("amusement", "positive", 7.00, 4.82),
        ("awe", "positive", 6.85, 3.83),
        ("contentment", "positive", 6.62, 4.60),
        ("excitement", "positive", 7.62, 6.21),
        ("anger", "negative", 2.50, 5.93),
        ("disgust", "negative", 3.32, 5.00),
        ("fear", "negative", 2.93, 6.14),
        ("sadness", "negative", 2.40, 2.81),
    ],
)
def test_valence_and_warriner_ratings(name, valence, v, a):
    emo = E.get_emotion(name)
    assert E.valence(name) == valence == emo.valence
    assert emo.valence_rating == v
    assert E.arousal(name) == a


def test_ratings_agree_with_the_papers_statements():
    # Positive emotions lie right of the valence midpoint (5 on Warriner's 1-9 scale), negative ones left of it.
    assert all(E.get_emotion(n).valence_rating > 5 for n in E.POSITIVE)
    assert all(E.get_emotion(n).valence_rating < 5 for n in E.NEGATIVE)
    # The project page names anger and excitement as high-arousal examples.
    assert E.arousal_level("anger") == E.arousal_level("excitement") == "high"


def test_arousal_split_is_the_median_of_the_eight():
    ratings = sorted(E.arousal(n) for n in E.EMOTIONS)
    assert E.AROUSAL_SPLIT == pytest.approx((ratings[3] + ratings[4]) / 2)
    high = {n for n in E.EMOTIONS if E.arousal_level(n) == "high"}
    assert high == {"excitement", "anger", "disgust", "fear"}
    assert {n for n in E.EMOTIONS if E.arousal_level(n) == "low"} == {"amusement", "awe", "contentment", "sadness"}


def test_opposite_valence():
    assert E.opposite_valence("awe") == E.NEGATIVE
    assert E.opposite_valence("sadness") == E.POSITIVE


@pytest.mark.parametrize(
    "word, expected",
    [("Fear", "fear"), ("  SADNESS ", "sadness"), ("joy", "amusement"), ("scared", "fear"), ("afraid", "fear"),
     ("angry", "anger"), ("calm", "contentment"), ("thrilled", "excitement"), ("wonder", "awe"), ("gross", "disgust"),
     ("Sad", "sadness")],
)
def test_names_and_synonyms(word, expected):
    assert E.get_emotion(word).name == expected


def test_every_synonym_maps_onto_one_of_the_eight_and_never_shadows_one():
    assert set(E.SYNONYMS.values()) == set(E.EMOTIONS)
    assert not set(E.SYNONYMS) & set(E.EMOTIONS)
    assert all(k == k.lower().strip() for k in E.SYNONYMS)


@pytest.mark.parametrize(
    "bad, closest",
    [("angr", "anger"), ("exitement", "excitement"), ("happyness", "amusement"), ("sadnes", "sadness")],
)
def test_unknown_name_lists_the_eight_and_the_closest(bad, closest):
    with pytest.raises(ValueError) as exc:
        E.get_emotion(bad)
    msg = str(exc.value)
    assert repr(bad) in msg
    assert ", ".join(E.EMOTIONS) in msg
    assert f"did you mean {closest!r}" in msg


def test_unknown_name_without_a_close_match_still_lists_the_eight():
    with pytest.raises(ValueError, match="amusement, awe, contentment, excitement, anger, disgust, fear, sadness$"):
        E.get_emotion("neutral")
    with pytest.raises(ValueError, match="must be a string"):
        E.get_emotion(3)


def test_emotion_choice_is_frozen_and_checks_intensity():
    choice = E.EmotionChoice.of("scared", 1.5)
    assert choice.name == "fear" and choice.intensity == 1.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        choice.intensity = 2.0
    for bad in (-0.1, 2.01, float("nan"), "strong"):
        with pytest.raises(ValueError, match="intensity"):
            E.EmotionChoice.of("fear", bad)


def test_readme_part_tables_match_the_code():
    """docs/emotions.md's taxonomy and synonym tables are written by hand; keep them equal to the code."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "emotions.md").read_text(encoding="utf-8")
    for emo in E.EMOTION_OBJECTS:
        row = (f"| {emo.index + 1} | {emo.name} | {emo.valence} | {emo.valence_rating:.2f} | "
               f"{emo.arousal_rating:.2f} | {emo.arousal_level} |")
        assert row in text, row
        synonyms = ", ".join(k for k, v in E.SYNONYMS.items() if v == emo.name)
        assert f"| {emo.name} | {synonyms} |" in text, emo.name
