"""Building LoRA stacks from choices and stacking LoRAs on a pipeline handle (emovid_core.lora.stack)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from emovid_core.lora import LoraSpec, write_lora
from emovid_core.lora.stack import add_lora_to_pipeline, lora_file_stamps, lora_stack, lora_stack_stamps
from emovid_core.lora.testing import random_lora


@pytest.fixture()
def loras(loras_dir):
    for i, name in enumerate(("anger", "style")):
        write_lora(random_lora(seed=40 + i), loras_dir / f"{name}.safetensors", "diffsynth")
    return loras_dir


def test_lora_stack_puts_the_emotion_first_and_skips_empty_slots(loras):
    stack = lora_stack([("None", 1.0), ("style.safetensors", 0.5), ("", 2.0)], "anger",
                       "fear=fear.safetensors\nanger=anger.safetensors", 0.8)
    assert [(s.name, s.strength, os.path.basename(s.source)) for s in stack] == [
        ("emotion_anger", 0.8, "anger.safetensors"), (None, 0.5, "style.safetensors")]
    assert [s.name for s in lora_stack([("anger.safetensors", 1.0)], "none")] == [None]
    with pytest.raises(ValueError, match="emotion 'fear' chosen but emotion_map is empty"):
        lora_stack([], "fear", "  ")
    with pytest.raises(ValueError, match="emotion_map has no LoRA for 'awe'; add a line 'awe=<file>'"):
        lora_stack([], "awe", "anger=anger.safetensors")
    with pytest.raises(ValueError, match="no LoRA chosen"):
        lora_stack([("None", 1.0)], None)


def test_lora_file_stamps_follow_the_files(loras):
    before = lora_file_stamps("anger.safetensors", "None", "gone.safetensors")
    assert before.startswith("anger.safetensors:") and before.endswith("|gone.safetensors:missing")
    p = loras / "anger.safetensors"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert lora_file_stamps("anger.safetensors") != before.split("|")[0]
    emo = lora_stack_stamps(["None", "style.safetensors", "None"], "anger", "anger=anger.safetensors")
    assert emo.startswith("style.safetensors:") and "|anger.safetensors:" in emo
    assert lora_stack_stamps(["None"], "anger", "anger is not a mapping") == ""  # the run reports the bad map


def test_add_lora_to_pipeline_needs_a_pipeline_handle(loras):
    with pytest.raises(ValueError, match="pipe SimpleNamespace has no .pipe.transformer; connect EmoVid Wan Loader"):
        add_lora_to_pipeline(SimpleNamespace(pipe=None), LoraSpec(loras / "anger.safetensors"))
