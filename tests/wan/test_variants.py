"""The one Wan variant table: the loader, detection, LoRA validation and `emovid lora inspect --check` read the same rows."""

from __future__ import annotations

import pytest

from emovid_core.host import cli
from emovid_core.lora import ShapeSpec, validate
from emovid_core.lora.testing import random_lora
from emovid_core.wan import variants
from emovid_core.wan.variants import (
    Variant,
    detect_variant,
    get_variant,
    match_variant,
    shipped_variant_names,
    transformer_arch,
    width_name,
)


def test_names_are_case_insensitive_and_released_spellings_still_work():
    assert get_variant("T2V-1.3B") is get_variant("t2v-1.3b")
    assert get_variant("t2v-14B").name == "t2v-14b"
    assert get_variant("i2v-14B").name == "i2v-14b-480p"  # the LoRA check's name for the I2V 14B DiT
    with pytest.raises(ValueError, match="unknown Wan variant 'nope'.*t2v-1.3b"):
        get_variant("nope")


@pytest.mark.parametrize("name", shipped_variant_names())
def test_every_consumer_reads_the_same_row(name):
    v = get_variant(name)
    shapes = v.param_shapes()
    assert ShapeSpec.from_variant(name).shapes == shapes  # LoRA validation
    assert ShapeSpec.from_variant(name).dim == v.dim and ShapeSpec.from_variant(name).num_blocks == v.num_layers
    found = match_variant(transformer_arch({k: list(s) for k, s in shapes.items()}))  # the loader's detection
    assert (found.dim, found.in_dim, found.ffn_dim, found.num_layers, found.kind) == (
        v.dim, v.in_dim, v.ffn_dim, v.num_layers, v.kind)
    assert detect_variant(shapes) == found
    # the width names in LoRA messages: every family of that width (Wan2.1 14B and Wan2.2 A14B share dim 5120)
    assert v.family in width_name(v.dim).removesuffix(f" (dim {v.dim})").split(" / ")
    assert len(shapes) == (23 + 32 * v.num_layers if v.has_image_branch else 15 + 27 * v.num_layers)


def test_a_width_mismatch_names_both_rows():
    spec = ShapeSpec.from_variant("t2v-14b")
    with pytest.raises(ValueError, match=r"trained for Wan2.1 T2V 1.3B \(dim 1536\), but the model is Wan2.1 T2V 14B \(dim 5120\)"):
        validate(random_lora(dim=1536, ffn=8960, layers=1, rank=2, targets=["self_attn.q"]), spec)


def test_unknown_shapes_become_a_custom_variant():
    custom = Variant.custom(256, 512, 3)
    got = detect_variant(custom.param_shapes())
    assert (got.dim, got.ffn_dim, got.num_layers, got.in_dim, got.i2v) == (256, 512, 3, 16, False)
    assert width_name(256) == "custom width 256"


def test_a_new_generation_is_a_row(monkeypatch):
    """What #17 adds (e.g. Wan2.2 TI2V-5B: dim 3072, 30 blocks, 48 latent channels) is one row of the table."""
    row = Variant(name="ti2v-5b-example", kind="t2v", label="example 5B row", dim=3072, in_dim=48, ffn_dim=14336,
                  num_layers=30, out_dim=48, generation="Wan2.2", size="5B")
    monkeypatch.setitem(variants._EXTRA, row.name, row)
    assert get_variant("TI2V-5B-example") is row
    shapes = ShapeSpec.from_variant(row.name).shapes
    assert shapes["head.head.weight"] == (48 * 4, 3072) and shapes["patch_embedding.weight"][:2] == (3072, 48)
    assert "img_emb.proj.1.weight" not in shapes
    assert width_name(3072) == "Wan2.2 5B (dim 3072)"
    assert match_variant(transformer_arch({k: list(s) for k, s in shapes.items()})) is not None


def test_lora_inspect_check_reads_the_table_and_the_one_header_reader(tmp_path, capsys):
    from emovid_core.lora import write_lora

    path = tmp_path / "l.safetensors"
    write_lora(random_lora(dim=1536, ffn=8960, layers=1, rank=2, targets=["self_attn.q"]), path, "comfy")
    assert cli.main(["lora", "inspect", str(path), "--check", "T2V-1.3B"]) == 0
    assert "Wan2.1 T2V 1.3B" in capsys.readouterr().out
    text = tmp_path / "model.safetensors"
    text.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 4)
    assert cli.main(["lora", "inspect", str(path), "--check", str(text)]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors is not a safetensors file" in err and "root" not in err
