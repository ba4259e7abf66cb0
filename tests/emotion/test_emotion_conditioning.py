"""CONDITIONING math and the emotion nodes, run on a tiny real text encoder behind ComfyUI's CLIP interface."""

from __future__ import annotations

import pytest
import torch

from emovid_core import conditioning as C
from emovid_core.emotions import EMOTIONS, EmotionChoice
from emovid_core.host.graph import GraphValidationError, NodeExecutionError, run_workflow
from emovid_core.prompts import PAPER_TEMPLATE, WAN_NEGATIVE_PROMPT

CAPTION = "A man walks alone down a dark corridor."


def paper(emotion: str, caption: str = CAPTION) -> str:
    return f'{caption} The video is in the "{emotion}" emotion.'


# --- a tiny text encoder with ComfyUI's CLIP interface ------------------------------------------------------------


class TinyTextEncoder(torch.nn.Module):
    """Byte embeddings + one bidirectional self-attention layer (every token sees the whole prompt, as in umt5)."""

    def __init__(self, dim: int = 32, pooled: bool = False, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(256 + 2, dim)
        self.attn = torch.nn.MultiheadAttention(dim, 4, batch_first=True)
        self.out = torch.nn.Linear(dim, dim)
        self.pooled = pooled
        self.eval()

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor):
        x = self.embed(ids)
        h, _ = self.attn(x, x, x, key_padding_mask=~mask)
        z = self.out(x + h) * mask.unsqueeze(-1)  # padded positions zeroed, as ComfyUI does for umt5
        pooled = (z.sum(1) / mask.sum(1, keepdim=True)) if self.pooled else None
        return z, pooled


class TinyCLIP:
    """Follows comfy.sd.CLIP: ``tokenize(text)`` -> {name: [[(token, weight), ...]]}; ``encode_from_tokens_scheduled``
    -> ``[[cond [1, L, D], {"pooled_output": pooled or None, **add_dict}]]``. Tokens are UTF-8 bytes + 2 with
    end token 1 and pad 0, padded to ``min_length`` like ComfyUI's Wan tokenizer (512); None = no padding."""

    def __init__(self, pooled: bool = False, min_length: int | None = 512, seed: int = 0):
        self.encoder = TinyTextEncoder(pooled=pooled, seed=seed)
        self.min_length = min_length
        self.calls: list[str] = []

    def tokenize(self, text, return_word_ids=False, **kwargs):
        self.calls.append(text)
        ids = [b + 2 for b in text.encode("utf-8")] + [1]
        if self.min_length is not None and len(ids) < self.min_length:
            ids += [0] * (self.min_length - len(ids))
        return {"umt5xxl": [[(t, 1.0) for t in ids]]}

    def encode_from_tokens_scheduled(self, tokens, unprojected=False, add_dict: dict | None = None, show_pbar=True):
        ids = torch.tensor([[t for t, _ in tokens["umt5xxl"][0]]])
        mask = torch.ones_like(ids, dtype=torch.bool)
        end = (ids[0] == 1).nonzero()[0, 0].item()
        mask[0, end + 1:] = False
        cond, pooled = self.encoder(ids, mask)
        return [[cond, {"pooled_output": pooled, **(add_dict or {})}]]

    def encode(self, text: str) -> list:
        return self.encode_from_tokens_scheduled(self.tokenize(text))


@pytest.fixture(scope="module")
def clip():
    return TinyCLIP()


def cond_of(t: torch.Tensor, pooled=None, **extra) -> list:
    return [[t, {"pooled_output": pooled, **extra}]]


# --- blend and intensity math ----------------------------------------------------------------------------------


def test_blend_endpoints_reproduce_the_inputs_and_half_is_the_mean():
    g = torch.Generator().manual_seed(1)
    ta, tb = torch.randn(1, 512, 64, generator=g), torch.randn(1, 512, 64, generator=g)
    pa, pb = torch.randn(1, 64, generator=g), torch.randn(1, 64, generator=g)
    a, b = cond_of(ta, pa, tag="a"), cond_of(tb, pb, tag="b")
    at0, at1, mid = C.blend_conditioning(a, b, 0.0), C.blend_conditioning(a, b, 1.0), C.blend_conditioning(a, b, 0.5)
    assert torch.equal(at0[0][0], ta) and torch.equal(at0[0][1]["pooled_output"], pa) and at0[0][1]["tag"] == "a"
    assert torch.equal(at1[0][0], tb) and torch.equal(at1[0][1]["pooled_output"], pb) and at1[0][1]["tag"] == "b"
    assert torch.allclose(mid[0][0], (ta + tb) / 2, atol=1e-6)
    assert torch.allclose(mid[0][1]["pooled_output"], (pa + pb) / 2, atol=1e-6)
    q = C.blend_conditioning(a, b, 0.25)
    assert torch.allclose(q[0][0], 0.75 * ta + 0.25 * tb, atol=1e-6)
    assert q[0][1]["tag"] == "a"  # non-tensor extras come from the dominant side
    # Inputs are never modified.
    assert a[0][1] == {"pooled_output": pa, "tag": "a"} and a[0][0] is ta


def test_blend_keeps_dtype_and_pairs_every_scheduled_entry():
    ta = torch.randn(2, 8, 16).to(torch.bfloat16)
    tb = torch.randn(2, 8, 16).to(torch.bfloat16)
    a = [[ta, {"pooled_output": None}], [ta * 2, {"pooled_output": None}]]
    b = [[tb, {"pooled_output": None}], [tb * 2, {"pooled_output": None}]]
    out = C.blend_conditioning(a, b, 0.5)
    assert len(out) == 2 and out[0][0].dtype == torch.bfloat16 and out[1][1]["pooled_output"] is None
    ref = ((ta.float() * 2 + tb.float() * 2) / 2).to(torch.bfloat16)
    assert torch.allclose(out[1][0].float(), ref.float(), atol=1e-2)


def test_blend_errors_are_clear():
    a = cond_of(torch.zeros(1, 512, 64))
    with pytest.raises(ValueError, match=r"shapes \(1, 512, 64\) and \(1, 77, 64\) differ"):
        C.blend_conditioning(a, cond_of(torch.zeros(1, 77, 64)), 0.5)
    with pytest.raises(ValueError, match="pooled_output is a tensor in one and None"):
        C.blend_conditioning(a, cond_of(torch.zeros(1, 512, 64), torch.zeros(1, 64)), 0.5)
    with pytest.raises(ValueError, match=r"shapes \(1, 64\) and \(1, 32\) differ"):
        C.blend_conditioning(cond_of(torch.zeros(1, 4, 8), torch.zeros(1, 64)), cond_of(torch.zeros(1, 4, 8), torch.zeros(1, 32)), 0.5)
    with pytest.raises(ValueError, match="has 1 entries and second has 2"):
        C.blend_conditioning(a, a + a, 0.5)
    with pytest.raises(ValueError, match="blend weight 1.5 must be in 0..1"):
        C.blend_conditioning(a, a, 1.5)
    with pytest.raises(ValueError, match=r"\[tensor, dict\] pair"):
        C.blend_conditioning(a, [[torch.zeros(1, 512, 64)]], 0.5)
    with pytest.raises(ValueError, match="non-empty CONDITIONING"):
        C.blend_conditioning(a, [], 0.5)
    with pytest.raises(ValueError, match=r"\[batch, tokens, dim\]"):
        C.blend_conditioning(a, cond_of(torch.zeros(512, 64)), 0.5)


def test_intensity_moves_along_the_emotion_direction():
    g = torch.Generator().manual_seed(2)
    full_t, base_t = torch.randn(1, 16, 8, generator=g), torch.randn(1, 16, 8, generator=g)
    full, base = cond_of(full_t, tag="full"), cond_of(base_t, tag="base")
    assert torch.equal(C.apply_intensity(full, base, 1.0)[0][0], full_t)
    assert torch.equal(C.apply_intensity(full, base, 0.0)[0][0], base_t)
    assert torch.allclose(C.apply_intensity(full, base, 2.0)[0][0], 2 * full_t - base_t, atol=1e-6)
    assert torch.allclose(C.apply_intensity(full, base, 1.5)[0][0], base_t + 1.5 * (full_t - base_t), atol=1e-6)
    assert C.apply_intensity(full, base, 0.0)[0][1]["tag"] == "full"
    assert torch.allclose(C.apply_intensity_tensor(full_t, base_t, 0.5), (full_t + base_t) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="outside 0..2"):
        C.apply_intensity(full, base, 2.5)


# --- the tiny encoder is a real one ------------------------------------------------------------------------------


def test_tiny_clip_is_a_real_deterministic_encoder(clip):
    a, b = clip.encode(paper("fear")), clip.encode(paper("awe"))
    assert a[0][0].shape == (1, 512, 32) and a[0][1]["pooled_output"] is None
    assert torch.equal(a[0][0], clip.encode(paper("fear"))[0][0])
    assert not torch.allclose(a[0][0], b[0][0])
    # Bidirectional: the caption's own tokens change with the emotion word that follows them.
    assert not torch.allclose(a[0][0][0, :5], b[0][0][0, :5])
    n = len(paper("fear").encode()) + 1
    assert torch.count_nonzero(a[0][0][0, n:]) == 0


# --- the Encode node ------------------------------------------------------------------------------------------


def run_encode(pack_nodes, clip, **kw):
    args = dict(caption=CAPTION, emotion="fear", intensity=1.0, second_emotion="none", blend=0.5,
                template=PAPER_TEMPLATE, negative_prompt=WAN_NEGATIVE_PROMPT, negative_add_opposite=False)
    args.update(kw)
    return pack_nodes["EmoVidEmotionEncode"]().encode(clip, **args)


def test_encode_equals_cliptextencode_of_the_paper_prompt(pack_nodes, clip):
    pos, neg, text = run_encode(pack_nodes, clip)
    assert text == paper("fear")
    assert torch.equal(pos[0][0], clip.encode(paper("fear"))[0][0])
    assert torch.equal(neg[0][0], clip.encode(WAN_NEGATIVE_PROMPT)[0][0])


def test_encode_blend_is_the_weighted_average_of_both_prompts(pack_nodes, clip):
    fear, awe = clip.encode(paper("fear"))[0][0], clip.encode(paper("awe"))[0][0]
    pos, _, text = run_encode(pack_nodes, clip, second_emotion="awe", blend=0.5)
    assert text.splitlines() == [paper("fear"), paper("awe")]
    assert torch.allclose(pos[0][0], (fear + awe) / 2, atol=1e-6)
    assert torch.equal(run_encode(pack_nodes, clip, second_emotion="awe", blend=0.0)[0][0][0], fear)
    assert torch.equal(run_encode(pack_nodes, clip, second_emotion="awe", blend=1.0)[0][0][0], awe)


def test_encode_blend_blends_pooled_output_too(pack_nodes):
    clip = TinyCLIP(pooled=True)
    fear, awe = clip.encode(paper("fear"))[0], clip.encode(paper("awe"))[0]
    pos = run_encode(pack_nodes, clip, second_emotion="awe", blend=0.3)[0]
    assert torch.allclose(pos[0][1]["pooled_output"], 0.7 * fear[1]["pooled_output"] + 0.3 * awe[1]["pooled_output"], atol=1e-6)


def test_encode_intensity_scales_the_emotion_direction(pack_nodes, clip):
    full, base = clip.encode(paper("fear"))[0][0], clip.encode(CAPTION)[0][0]
    pos, _, text = run_encode(pack_nodes, clip, intensity=2.0)
    assert text.splitlines() == [paper("fear"), CAPTION]
    assert torch.allclose(pos[0][0], 2 * full - base, atol=1e-5)
    clip.calls.clear()
    pos0, _, text0 = run_encode(pack_nodes, clip, intensity=0.0, second_emotion="awe")
    assert torch.equal(pos0[0][0], base) and text0 == CAPTION
    assert clip.calls == [CAPTION, WAN_NEGATIVE_PROMPT]  # nothing encoded that intensity 0 would cancel


def test_encode_negative_with_opposite_valence_skips_the_blend_partner(pack_nodes, clip):
    _, neg, _ = run_encode(pack_nodes, clip, emotion="fear", second_emotion="awe", negative_add_opposite=True,
                           negative_prompt="")
    assert clip.calls[-1] == "amusement, contentment, excitement"
    assert torch.equal(neg[0][0], clip.encode("amusement, contentment, excitement")[0][0])


def test_encode_override_and_errors(pack_nodes, clip):
    pos, _, text = run_encode(pack_nodes, clip, emotion="fear", emotion_override=EmotionChoice.of("sadness"))
    assert text == paper("sadness")
    with pytest.raises(ValueError, match="clip input is None"):
        run_encode(pack_nodes, None)
    with pytest.raises(ValueError, match="no tokenize"):
        run_encode(pack_nodes, object())
    # An encoder that does not pad to a fixed length cannot scale intensity: the shapes are named.
    with pytest.raises(ValueError, match="shapes .* differ"):
        run_encode(pack_nodes, TinyCLIP(min_length=None), intensity=1.5)


# --- graphs through the headless runner ---------------------------------------------------------------------------


class TestTinyClipLoader:
    CATEGORY = "test"
    FUNCTION = "load"
    RETURN_TYPES = ("CLIP",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pooled": ("BOOLEAN", {"default": False})}}

    def load(self, pooled):
        return (TinyCLIP(pooled=pooled),)


class TestCollect:
    """Output node: records what reaches it (called once per list item, as in ComfyUI)."""

    CATEGORY = "test"
    FUNCTION = "collect"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {})}, "optional": {"other": ("*", {})}}

    def collect(self, value, other=None):
        return {"ui": {"text": [value if isinstance(value, str) else type(value).__name__], "other": [other]}}


@pytest.fixture()
def classes(pack_nodes):
    return {**pack_nodes, "TestTinyClipLoader": TestTinyClipLoader, "TestCollect": TestCollect}


def test_sweep_expands_to_eight_prompts_in_a_graph(classes, out_dir):
    wf = {
        "1": {"class_type": "EmoVidEmotionSweep", "inputs": {"caption": CAPTION + "\n", "intensity": 1.0, "template": PAPER_TEMPLATE}},
        "2": {"class_type": "TestCollect", "inputs": {"value": ["1", 0], "other": ["1", 1]}},
    }
    res = run_workflow(wf, classes=classes)
    assert res.ui["2"]["text"] == [paper(e) for e in EMOTIONS]
    assert res.ui["2"]["other"] == list(EMOTIONS)


def test_emotion_node_drives_prompt_node_in_a_graph(classes, out_dir):
    wf = {
        "1": {"class_type": "EmoVidEmotion", "inputs": {"emotion": "disgust", "intensity": 1.0}},
        "2": {"class_type": "EmoVidEmotionPrompt", "inputs": {
            "caption": CAPTION, "emotion": "awe", "intensity": 1.0, "template": PAPER_TEMPLATE,
            "negative_prompt": WAN_NEGATIVE_PROMPT, "negative_add_opposite": True, "emotion_override": ["1", 0]}},
        "3": {"class_type": "TestCollect", "inputs": {"value": ["2", 0], "other": ["2", 1]}},
        "4": {"class_type": "TestCollect", "inputs": {"value": ["1", 1]}},
    }
    res = run_workflow(wf, classes=classes)
    assert res.ui["3"]["text"] == [paper("disgust")]
    assert res.ui["3"]["other"] == [WAN_NEGATIVE_PROMPT + ", amusement, awe, contentment, excitement"]
    assert res.ui["4"]["text"] == ["disgust"]


def test_encode_node_in_a_graph(classes, out_dir):
    wf = {
        "1": {"class_type": "TestTinyClipLoader", "inputs": {"pooled": True}},
        "2": {"class_type": "EmoVidEmotionEncode", "inputs": {
            "clip": ["1", 0], "caption": CAPTION, "emotion": "anger", "intensity": 1.0, "second_emotion": "sadness",
            "blend": 0.5, "template": PAPER_TEMPLATE, "negative_prompt": "", "negative_add_opposite": False}},
        "3": {"class_type": "TestCollect", "inputs": {"value": ["2", 0], "other": ["2", 1]}},
    }
    res = run_workflow(wf, classes=classes)
    pos = res.outputs["2"][0][0]
    ref = TinyCLIP(pooled=True)
    a, s = ref.encode(paper("anger"))[0], ref.encode(paper("sadness"))[0]
    assert torch.allclose(pos[0][0], (a[0] + s[0]) / 2, atol=1e-6)
    assert torch.allclose(pos[0][1]["pooled_output"], (a[1]["pooled_output"] + s[1]["pooled_output"]) / 2, atol=1e-6)


def test_bad_template_fails_validation_before_running(classes, out_dir):
    wf = {
        "1": {"class_type": "EmoVidEmotionSweep", "inputs": {"caption": "x", "intensity": 1.0, "template": "{caption} {mood}"}},
        "2": {"class_type": "TestCollect", "inputs": {"value": ["1", 0]}},
    }
    with pytest.raises(GraphValidationError, match=r"unknown placeholder\(s\) \{mood\}"):
        run_workflow(wf, classes=classes)
    wf["1"]["inputs"]["template"] = PAPER_TEMPLATE
    wf["1"]["inputs"]["intensity"] = 2.5
    with pytest.raises(GraphValidationError, match="bigger than max"):
        run_workflow(wf, classes=classes)


def test_linked_template_is_checked_when_the_node_runs(classes, out_dir):
    wf = {
        "1": {"class_type": "EmoVidEmotion", "inputs": {"emotion": "fear", "intensity": 1.0}},
        "2": {"class_type": "EmoVidEmotionSweep", "inputs": {"caption": "x", "intensity": 1.0, "template": ["1", 1]}},
        "3": {"class_type": "TestCollect", "inputs": {"value": ["2", 0]}},
    }
    with pytest.raises(NodeExecutionError, match="missing \\{caption\\} and \\{emotion\\}"):
        run_workflow(wf, classes=classes)


# --- headless (diffusers-style) embeddings -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def umt5_encode():
    """A tiny random-weight UMT5EncoderModel (the class Wan's diffusers pipeline uses) behind an ``encode(text)``
    that mirrors diffusers' WanPipeline: tokens up to the end token, padded to a fixed length, padding zeroed."""
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    model = UMT5EncoderModel(UMT5Config(vocab_size=260, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                        relative_attention_num_buckets=8, relative_attention_max_distance=16)).eval()
    max_len = 160

    @torch.no_grad()
    def encode(text: str) -> torch.Tensor:
        ids = ([b + 2 for b in text.encode("utf-8")] + [1])[:max_len]
        n = len(ids)
        ids_t = torch.tensor([ids + [0] * (max_len - n)])
        mask = torch.zeros_like(ids_t)
        mask[0, :n] = 1
        out = model(input_ids=ids_t, attention_mask=mask).last_hidden_state
        return out * mask.unsqueeze(-1)

    return encode


def test_headless_embeddings_follow_the_same_recipe(umt5_encode):
    full, base, awe = umt5_encode(paper("fear")), umt5_encode(CAPTION), umt5_encode(paper("awe"))
    emb, texts = C.emotion_prompt_embeds(umt5_encode, CAPTION, "scared")
    assert texts == [paper("fear")] and torch.equal(emb, full)
    emb, texts = C.emotion_prompt_embeds(umt5_encode, CAPTION, "fear", intensity=1.5, second_emotion="awe", blend=0.25)
    assert texts == [paper("fear"), paper("awe"), CAPTION]
    assert torch.allclose(emb, base + 1.5 * ((0.75 * full + 0.25 * awe) - base), atol=1e-5)
    emb, texts = C.emotion_prompt_embeds(umt5_encode, CAPTION, "fear", intensity=0.0)
    assert texts == [CAPTION] and torch.equal(emb, base)
