"""``emovid lora``: inspect a Wan2.1 LoRA file, check it against a model, or convert it to another format."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("lora", help="inspect, check or convert Wan2.1 LoRA files")
    lsub = p.add_subparsers(dest="lora_command", metavar="ACTION")

    i = lsub.add_parser("inspect", help="print format, rank, alpha, scale, targets, blocks and trained-for model")
    i.add_argument("file", help="LoRA .safetensors file")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    i.add_argument("--check", default=None, metavar="VARIANT_OR_FILE",
                   help="also validate against a model: a Wan variant (t2v-1.3b, t2v-14b, i2v-14b; any case) or an original-layout .safetensors")
    i.set_defaults(func=_inspect)

    c = lsub.add_parser("convert", help="rewrite a LoRA in a format core ComfyUI or diffusers loads with no skipped keys")
    c.add_argument("input", help="LoRA .safetensors in any supported format")
    c.add_argument("output", help="output .safetensors path")
    c.add_argument("--to", required=True, choices=["comfy", "diffusers", "kohya"],
                   help="comfy: diffusion_model.*.lora_A/B + alpha (ComfyUI LoraLoaderModelOnly); diffusers: "
                        "transformer.* + LoraConfig metadata (load_lora_weights); kohya: lora_unet_* down/up + alpha")
    c.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    c.set_defaults(func=_convert)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _inspect(args) -> int:
    from pathlib import Path

    from ...lora import LoraMismatchError, ShapeSpec, inspect_lora, load_lora, validate
    from ...safetensors_header import tensor_shapes
    from ...wan.variants import find_variant, shipped_variant_names

    lora = load_lora(args.file, check_finite=False)  # report NaN/inf values instead of refusing the file
    info = inspect_lora(lora)
    spec = None
    if args.check:
        variant = find_variant(args.check)
        if variant is not None:
            spec = ShapeSpec.from_variant(variant)
        else:
            path = Path(args.check)
            if not path.is_file():
                raise ValueError(f"--check {args.check!r} is neither a variant ({', '.join(shipped_variant_names())}) "
                                 "nor a file")
            spec = ShapeSpec.from_state_dict(tensor_shapes(path), label=path.name)
    if not args.json:
        print(info)  # before the check, so a mismatch still shows what the file is
        if spec is not None:
            print(validate(lora, spec))  # a width mismatch raises: exit status 2 with the message
        return 2 if info.non_finite else 0
    out = info.to_json()
    status = 2 if info.non_finite else 0
    if spec is not None:
        try:
            report = validate(lora, spec)
            out["validation"] = {"applied": report.applied, "skipped": report.skipped, "notes": report.notes,
                                 "kinds": report.kinds}
        except LoraMismatchError as exc:
            out["validation"] = {"error": str(exc)}
            status = 2
    print(json.dumps(out, indent=1))
    return status


def _convert(args) -> int:
    from pathlib import Path

    from ...atomic import check_outputs
    from ...lora import CONVERT_TARGETS, inspect_lora, load_lora, write_lora

    out = Path(args.output)
    check_outputs([out], inputs=[args.input], force=args.force)
    lora = load_lora(args.input)
    notes = write_lora(lora, out, CONVERT_TARGETS[args.to], metadata={"emovid_converted_from": lora.source_format})
    info = inspect_lora(load_lora(out))
    print(f"wrote {out}: {info.num_modules} modules, format {info.format_label}, was {lora.source_format}")
    for n in notes:
        print(f"note: {n}")
    if lora.unused_keys:
        from collections import Counter

        reasons = Counter(lora.unused_keys.values())
        print(f"note: {len(lora.unused_keys)} key(s) of the input were left out: "
              + "; ".join(f"{n}: {r}" for r, n in reasons.most_common()))
    return 0
