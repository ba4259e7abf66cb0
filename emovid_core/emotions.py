"""The EmoVid emotion taxonomy: Mikels' eight emotions, in the paper's order, with valence and arousal.

EmoVid (AAAI-26) labels every clip with exactly one of eight Mikels et al. (2005) emotions and has no
neutral class. The paper lists them as amusement, awe, contentment, excitement (positive valence) and
anger, disgust, fear, sadness (negative valence); that order is :data:`EMOTIONS` and every list the pack
shows follows it.

Valence/arousal numbers. The paper's Fig. 2 places the eight words on the valence-arousal plane "according
to Warriner, Kuperman and Brysbaert (2013)" but prints no numbers. The values below are the words' own
ratings in those norms (columns ``V.Mean.Sum`` and ``A.Mean.Sum``, scale 1-9), copied from
``Ratings_Warriner_et_al.csv`` as redistributed by JULIELab/XANEW
(https://github.com/JULIELab/XANEW, file last changed in commit b1ed97e746042e32dba7a833f9b702f35ffeceda;
the norms are CC BY-NC-ND 3.0, http://crr.ugent.be/archives/1003). They agree with the paper's statements:
the four positive emotions rate above the scale midpoint 5 on valence and the four negative ones below it,
and anger and excitement (the project page's high-arousal examples) are among the most arousing.

``arousal_level`` (high/low) is *derived here*, not stated by the paper: an emotion is "high" when its
Warriner arousal is above 4.91, the median of the eight (excitement, fear, anger, disgust), "low" otherwise
(amusement, contentment, awe, sadness).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

WARRINER_SOURCE = (
    "Warriner, Kuperman & Brysbaert (2013), Norms of valence, arousal, and dominance for 13,915 English lemmas, "
    "Behavior Research Methods 45:1191-1207; values V.Mean.Sum / A.Mean.Sum from Ratings_Warriner_et_al.csv "
    "in github.com/JULIELab/XANEW (commit b1ed97e7)"
)


@dataclass(frozen=True)
class Emotion:
    """One of the eight EmoVid emotions."""

    name: str  # lower-case Mikels label, exactly as the paper's prompt sentence spells it
    index: int  # 0-7, position in the paper's order
    valence: str  # "positive" | "negative" (the EA-2cls split)
    valence_rating: float  # Warriner 2013 V.Mean.Sum, 1 (unhappy) .. 9 (happy)
    arousal_rating: float  # Warriner 2013 A.Mean.Sum, 1 (calm) .. 9 (excited)
    arousal_level: str  # "high" | "low": above / below the median arousal of the eight (derived, see module doc)

    @property
    def is_positive(self) -> bool:
        return self.valence == "positive"

    def __str__(self) -> str:
        return self.name


# (name, valence, Warriner V.Mean.Sum, Warriner A.Mean.Sum) in the paper's order.
_TABLE = (
    ("amusement", "positive", 7.00, 4.82),
    ("awe", "positive", 6.85, 3.83),
    ("contentment", "positive", 6.62, 4.60),
    ("excitement", "positive", 7.62, 6.21),
    ("anger", "negative", 2.50, 5.93),
    ("disgust", "negative", 3.32, 5.00),
    ("fear", "negative", 2.93, 6.14),
    ("sadness", "negative", 2.40, 2.81),
)

_sorted_arousal = sorted(a for *_, a in _TABLE)
AROUSAL_SPLIT = (_sorted_arousal[3] + _sorted_arousal[4]) / 2  # median of the eight: 4.91

EMOTION_OBJECTS: tuple[Emotion, ...] = tuple(
    Emotion(name, i, val, v, a, "high" if a > AROUSAL_SPLIT else "low") for i, (name, val, v, a) in enumerate(_TABLE)
)
EMOTIONS: tuple[str, ...] = tuple(e.name for e in EMOTION_OBJECTS)
POSITIVE: tuple[str, ...] = tuple(e.name for e in EMOTION_OBJECTS if e.is_positive)
NEGATIVE: tuple[str, ...] = tuple(e.name for e in EMOTION_OBJECTS if not e.is_positive)
_BY_NAME = {e.name: e for e in EMOTION_OBJECTS}

# Common words mapped onto the eight. This table is ours (the paper names EmoSet's synonym lists for its
# sticker search but does not print them). Generic "happy" words go to amusement because EmoVid's amusement
# clips are the laughing/merry ones (its top phrases: "funny reaction", "merry moment", "laughing together");
# calm or satisfied states go to contentment.
SYNONYMS: dict[str, str] = {
    # amusement
    "amused": "amusement", "amusing": "amusement", "funny": "amusement", "fun": "amusement",
    "humor": "amusement", "humour": "amusement", "humorous": "amusement", "laughter": "amusement",
    "laughing": "amusement", "joy": "amusement", "joyful": "amusement", "happy": "amusement",
    "happiness": "amusement", "merry": "amusement", "playful": "amusement",
    # awe
    "awed": "awe", "awestruck": "awe", "awe-struck": "awe", "wonder": "awe", "amazement": "awe",
    "amazed": "awe", "astonishment": "awe", "astonished": "awe", "admiration": "awe", "majestic": "awe",
    "sublime": "awe",
    # contentment
    "content": "contentment", "contented": "contentment", "calm": "contentment", "peaceful": "contentment",
    "peace": "contentment", "serene": "contentment", "serenity": "contentment", "relaxed": "contentment",
    "satisfied": "contentment", "satisfaction": "contentment", "tranquil": "contentment", "cozy": "contentment",
    "relief": "contentment",
    # excitement
    "excited": "excitement", "exciting": "excitement", "thrill": "excitement", "thrilled": "excitement",
    "thrilling": "excitement", "enthusiasm": "excitement", "enthusiastic": "excitement", "eager": "excitement",
    "exhilaration": "excitement", "exhilarated": "excitement", "euphoria": "excitement", "euphoric": "excitement",
    # anger
    "angry": "anger", "mad": "anger", "rage": "anger", "furious": "anger", "fury": "anger", "annoyed": "anger",
    "annoyance": "anger", "irritated": "anger", "irritation": "anger", "outrage": "anger", "hostile": "anger",
    "frustrated": "anger", "frustration": "anger",
    # disgust
    "disgusted": "disgust", "disgusting": "disgust", "gross": "disgust", "revulsion": "disgust",
    "repulsed": "disgust", "revolted": "disgust", "nausea": "disgust", "loathing": "disgust",
    # fear
    "afraid": "fear", "scared": "fear", "scary": "fear", "fearful": "fear", "fright": "fear",
    "frightened": "fear", "terror": "fear", "terrified": "fear", "horror": "fear", "horrified": "fear",
    "panic": "fear", "dread": "fear", "anxious": "fear", "anxiety": "fear",
    # sadness
    "sad": "sadness", "sorrow": "sadness", "grief": "sadness", "unhappy": "sadness", "melancholy": "sadness",
    "depressed": "sadness", "depression": "sadness", "gloomy": "sadness", "heartbroken": "sadness",
    "despair": "sadness", "lonely": "sadness", "crying": "sadness",
}


def _key(name: str) -> str:
    return " ".join(str(name).strip().lower().split())


def get_emotion(name: str | Emotion) -> Emotion:
    """The :class:`Emotion` for ``name`` (case-insensitive; a word from :data:`SYNONYMS` is accepted).

    Raises ValueError listing the eight and the closest match for anything else.
    """
    if isinstance(name, Emotion):
        return name
    if not isinstance(name, str):
        raise ValueError(f"emotion must be a string, got {type(name).__name__} {name!r}; use one of: {', '.join(EMOTIONS)}")
    key = _key(name)
    if key in _BY_NAME:
        return _BY_NAME[key]
    if key in SYNONYMS:
        return _BY_NAME[SYNONYMS[key]]
    # Closest of the eight and their synonyms ("happyness" -> happiness -> amusement); on a tie the eight win.
    scored = [(difflib.SequenceMatcher(None, key, w).ratio(), w in _BY_NAME, w) for w in (*EMOTIONS, *SYNONYMS)]
    ratio, _, word = max(scored)
    hint = ""
    if ratio >= 0.6:
        target = SYNONYMS.get(word, word)
        hint = f"; did you mean {target!r}" + (f" ({word!r} maps to it)" if word != target else "") + "?"
    raise ValueError(f"unknown emotion {name!r}: EmoVid uses Mikels' eight emotions: {', '.join(EMOTIONS)}{hint}")


def valence(name: str | Emotion) -> str:
    """``"positive"`` or ``"negative"``: the valence class EmoVid's EA-2cls metric compares."""
    return get_emotion(name).valence


def arousal(name: str | Emotion) -> float:
    """Warriner et al. (2013) mean arousal rating of the emotion word (1 calm .. 9 excited)."""
    return get_emotion(name).arousal_rating


def arousal_level(name: str | Emotion) -> str:
    """``"high"`` or ``"low"`` arousal relative to the median of the eight (a split derived here, see module doc)."""
    return get_emotion(name).arousal_level


def opposite_valence(name: str | Emotion) -> tuple[str, ...]:
    """The four emotions of the other valence, in the paper's order."""
    return NEGATIVE if get_emotion(name).is_positive else POSITIVE


@dataclass(frozen=True)
class EmotionChoice:
    """An emotion picked in a graph plus how strongly to apply it (the ``EMOVID_EMOTION`` node type)."""

    emotion: Emotion
    intensity: float = 1.0

    def __post_init__(self) -> None:
        check_intensity(self.intensity)

    @property
    def name(self) -> str:
        return self.emotion.name

    @classmethod
    def of(cls, name: str | Emotion, intensity: float = 1.0) -> EmotionChoice:
        return cls(get_emotion(name), check_intensity(intensity))


INTENSITY_MIN, INTENSITY_MAX = 0.0, 2.0


def check_intensity(intensity: float) -> float:
    """Return ``intensity`` as a float; raise ValueError unless it is a finite number in 0..2."""
    try:
        value = float(intensity)
    except (TypeError, ValueError):
        raise ValueError(f"intensity must be a number in {INTENSITY_MIN:g}..{INTENSITY_MAX:g}, got {intensity!r}") from None
    if not INTENSITY_MIN <= value <= INTENSITY_MAX:  # also rejects NaN
        raise ValueError(
            f"intensity {intensity!r} is outside {INTENSITY_MIN:g}..{INTENSITY_MAX:g}; 1 is the paper's prompt, "
            "0 drops the emotion, 2 doubles its weight"
        )
    return value
