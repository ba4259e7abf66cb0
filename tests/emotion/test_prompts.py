"""Prompt building: the paper's template byte for byte, user templates, intensity, negatives, sweep, CLI."""

from __future__ import annotations

import hashlib
import json

import pytest

from emovid_core import prompts as P
from emovid_core.emotions import EMOTIONS
from emovid_core.host.cli import main as cli_main

CAPTION = "A girl blows out the candles on her birthday cake while her friends clap."

# The paper: "we use its corresponding caption and modify it by appending an explicit emotional label (e.g.,
# The video is in the "amusement" emotion)". Written out literally, one per emotion.
PAPER_PROMPTS = {
    "amusement": 'A girl blows out the candles on her birthday cake while her friends clap. The video is in the "amusement" emotion.',
    "awe": 'A girl blows out the candles on her birthday cake while her friends clap. The video is in the "awe" emotion.',
    "contentment": 'A girl blows out the candles on her birthday cake while her friends clap. The video is in the "contentment" emotion.',
    "excitement": 'A girl blows out the candles on her birthday cake while her friends clap. The video is in the "excitement" emotion.',
    "anger": 'A girl blows out the candles on her birthday cake while her friends clap. The video is in the "anger" emotion.',
    "disgust": 'A girl blows out the candles on her birthday cake while her friends clap. The video is in the "disgust" emotion.',
    "fear": 'A girl blows out the candles on her birthday cake while her friends clap. The video is in the "fear" emotion.',
    "sadness": 'A girl blows out the candles on her birthday cake while her friends clap. The video is in the "sadness" emotion.',
}

# wan/configs/shared_config.py `sample_neg_prompt` in Wan-Video/Wan2.1, copied literally.
WAN_NEGATIVE = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，"
    "杂乱的背景，三条腿，背景人很多，倒着走"
)


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_paper_prompt_is_byte_exact(emotion):
    assert P.build_prompt(CAPTION, emotion) == PAPER_PROMPTS[emotion]
    assert P.build_prompt(CAPTION, emotion, intensity=1.0).encode("utf-8") == PAPER_PROMPTS[emotion].encode("utf-8")


def test_paper_template_constant():
    assert P.PAPER_TEMPLATE == '{caption} The video is in the "{emotion}" emotion.'


def test_synonyms_and_case_write_the_canonical_lower_case_word():
    assert P.build_prompt(CAPTION, "Scared") == PAPER_PROMPTS["fear"]
    assert P.build_prompt(CAPTION, "JOY") == PAPER_PROMPTS["amusement"]


def test_caption_whitespace_and_empty_caption():
    assert P.build_prompt(CAPTION + "  \n\t", "fear") == PAPER_PROMPTS["fear"]
    assert P.build_prompt("\n " + CAPTION, "fear") == PAPER_PROMPTS["fear"]
    assert P.build_prompt("", "awe") == 'The video is in the "awe" emotion.'
    assert P.build_prompt("   ", "awe") == 'The video is in the "awe" emotion.'
    assert P.emotion_sentence("sadness") == 'The video is in the "sadness" emotion.'
    # Nothing is added to a caption without a final period: the paper only appends the sentence.
    assert P.build_prompt("a cat", "fear") == 'a cat The video is in the "fear" emotion.'
    with pytest.raises(ValueError, match="caption must be a string"):
        P.build_prompt(None, "fear")


def test_caption_text_is_never_parsed_as_a_template():
    assert P.build_prompt("a {caption} {mood} }{ sign", "fear") == 'a {caption} {mood} }{ sign The video is in the "fear" emotion.'


def test_user_template_with_all_placeholders_and_literal_braces():
    t = "{{style}} {emotion} ({valence} valence, {arousal} arousal): {caption}"
    assert P.build_prompt("a dog runs", "fear", t) == "{style} fear (negative valence, high arousal): a dog runs"
    assert P.build_prompt("a dog runs", "contentment", t) == "{style} contentment (positive valence, low arousal): a dog runs"


@pytest.mark.parametrize(
    "template, names",
    [
        ("{caption} {mood}", ["{mood}"]),
        ("{caption} {emotion} {style} {tone}", ["{style}", "{tone}"]),
        ("{caption} {emotion.name}", ["{emotion.name}"]),
        ("{caption} {Emotion}", ["{Emotion}"]),
    ],
)
def test_unknown_placeholders_are_named(template, names):
    with pytest.raises(ValueError) as exc:
        P.build_prompt(CAPTION, "fear", template)
    msg = str(exc.value)
    assert "unknown placeholder" in msg and all(n in msg for n in names) and repr(template) in msg
    assert "{caption}, {emotion}, {valence}, {arousal}" in msg


@pytest.mark.parametrize(
    "template, fragment",
    [
        ('{caption} The video is in the "{emotion" emotion.', "malformed braces"),
        ("{caption} emotion} here {emotion}", "malformed braces"),
        ("{caption} {emotion", "malformed braces"),
        ("{caption} {} {emotion}", "empty placeholder"),
        ("{caption} {emotion!r}", "{emotion!r}"),
        ("{caption} {emotion:>10}", "{emotion:>10}"),
        ("The video is {emotion}.", "missing {caption}"),
        ("{caption} is sad", "missing {emotion}"),
        ("{caption} {emotion} {caption}", "more than once"),
        ("", "non-empty"),
    ],
)
def test_template_errors(template, fragment):
    with pytest.raises(ValueError) as exc:
        P.validate_template(template)
    assert fragment in str(exc.value)


def test_intensity_one_is_plain_and_other_values_use_comfy_weight_syntax():
    assert P.build_prompt(CAPTION, "fear", intensity=1.0) == PAPER_PROMPTS["fear"]
    assert P.build_prompt(CAPTION, "fear", intensity=1.3) == CAPTION + ' (The video is in the "fear" emotion.:1.3)'
    assert P.build_prompt(CAPTION, "fear", intensity=2) == CAPTION + ' (The video is in the "fear" emotion.:2)'
    assert P.build_prompt(CAPTION, "fear", intensity=0.25) == CAPTION + ' (The video is in the "fear" emotion.:0.25)'
    assert P.build_prompt(CAPTION, "fear", intensity=0) == CAPTION
    assert P.build_prompt("", "fear", intensity=0.5) == '(The video is in the "fear" emotion.:0.5)'


def test_weighted_parts_of_a_template_escape_their_own_parentheses():
    t = "A {emotion} (really) clip: {caption} [{valence}]"
    out = P.build_prompt("a dog", "awe", t, intensity=1.5)
    assert out == "(A awe \\(really\\) clip::1.5) a dog ([positive]:1.5)"
    assert P.build_prompt("a dog", "awe", t) == "A awe (really) clip: a dog [positive]"


@pytest.mark.parametrize("bad", [-0.01, 2.5, float("inf"), float("nan"), "high"])
def test_intensity_out_of_range(bad):
    with pytest.raises(ValueError, match="intensity"):
        P.build_prompt(CAPTION, "fear", intensity=bad)


def test_weighted_prompt_for_encoders_without_weight_syntax():
    wp = P.weighted_prompt(CAPTION, "fear", intensity=1.7)
    assert wp.text == PAPER_PROMPTS["fear"]
    assert wp.base == CAPTION
    assert wp.emotion_text == 'The video is in the "fear" emotion.'
    assert wp.weight == 1.7 and wp.needs_scaling
    assert not P.weighted_prompt(CAPTION, "fear").needs_scaling


def test_negative_prompt_default_is_wans_standard_one():
    assert P.WAN_NEGATIVE_PROMPT == WAN_NEGATIVE
    assert P.negative_prompt() == WAN_NEGATIVE
    assert P.negative_prompt("fear") == WAN_NEGATIVE
    assert WAN_NEGATIVE.count("，") == 27  # 28 fullwidth-comma-separated terms
    # sha256 of the UTF-8 bytes of Wan-Video/Wan2.1 `sample_neg_prompt` (checked against commit 9737cba9).
    assert hashlib.sha256(P.WAN_NEGATIVE_PROMPT.encode("utf-8")).hexdigest() == (
        "ce96e0324e4b54ce4b6e867f669ca520952e1a34cc116543516b1897f0d3c47e"
    )


def test_negative_prompt_with_opposite_valence():
    assert P.negative_prompt("awe", add_opposite=True) == WAN_NEGATIVE + ", anger, disgust, fear, sadness"
    assert P.negative_prompt("fear", add_opposite=True, base="") == "amusement, awe, contentment, excitement"
    assert P.negative_prompt("fear", add_opposite=True, base="blurry", exclude=["awe"]) == "blurry, amusement, contentment, excitement"
    with pytest.raises(ValueError, match="needs the emotion"):
        P.negative_prompt(None, add_opposite=True)


def test_sweep_prompts():
    sweep = P.sweep_prompts(CAPTION)
    assert list(sweep) == list(EMOTIONS)
    assert sweep == PAPER_PROMPTS
    assert list(P.sweep_prompts("x", emotions=["scared", "joy"])) == ["fear", "amusement"]
    with pytest.raises(ValueError, match="repeat"):
        P.sweep_prompts("x", emotions=["fear", "scared"])
    with pytest.raises(ValueError, match="at least one"):
        P.sweep_prompts("x", emotions=[])


def test_cli_prints_positive_and_negative(capsys):
    assert cli_main(["prompt", CAPTION, "--emotion", "fear"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"positive: {PAPER_PROMPTS['fear']}", f"negative: {WAN_NEGATIVE}"]


def test_cli_sweep_json_and_opposite(capsys):
    assert cli_main(["prompt", CAPTION, "--all", "--json", "--negative-opposite", "--intensity", "1.5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["emotion"] for r in rows] == list(EMOTIONS)
    assert rows[0]["plain"] == PAPER_PROMPTS["amusement"]
    assert rows[0]["positive"] == CAPTION + ' (The video is in the "amusement" emotion.:1.5)'
    assert rows[0]["caption_only"] == CAPTION and rows[0]["weight"] == 1.5
    assert rows[0]["negative"].endswith("倒着走, anger, disgust, fear, sadness")
    assert rows[7]["negative"].endswith("倒着走, amusement, awe, contentment, excitement")


def test_cli_all_in_text_mode(capsys):
    assert cli_main(["prompt", CAPTION, "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:8] == [f"{e}: {PAPER_PROMPTS[e]}" for e in EMOTIONS]
    assert lines[8:] == [f"negative: {WAN_NEGATIVE}"]


def test_cli_list(capsys):
    assert cli_main(["prompt", "--list"]) == 0
    out = capsys.readouterr().out
    assert "fear         negative     2.93    6.14  high" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["prompt", "x", "--emotion", "neutral"], "unknown emotion 'neutral'"),
        (["prompt", "x", "--emotion", "fear", "--template", "{caption} {mood}"], "{mood}"),
        (["prompt", "x", "--emotion", "fear", "--intensity", "3"], "outside 0..2"),
        (["prompt", "x"], "exactly one of --emotion"),
        (["prompt", "--emotion", "fear"], "give a caption"),
    ],
)
def test_cli_errors_exit_2_with_a_message(capsys, argv, fragment):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("emovid prompt: error:") and fragment in err
