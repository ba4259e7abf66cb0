"""``emovid run``: execute an API-format workflow of this pack's nodes (and model-free core nodes) without ComfyUI."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run an API-format workflow of EmoVid nodes and model-free core nodes headless",
        description="Run an API-format workflow without ComfyUI: the pack's nodes, plus headless equivalents of the "
                    "core nodes Save Image, Preview Image, Load Image, EmptyImage, Load Video and Get Video Components "
                    "(they write the same files as the server: <prefix>_00001_.png in --out, previews in --temp). "
                    "A workflow that needs any other core node (model loaders, samplers, text encoders, ...) is "
                    "refused before anything runs, naming those nodes: queue it on a ComfyUI server with "
                    "`emovid queue WORKFLOW --server URL`.",
    )
    p.add_argument("workflow", help="API-format workflow JSON (ComfyUI 'Export (API)')")
    p.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="override an input, e.g. --set 3.seed=42 (VALUE parsed as JSON when possible)")
    p.add_argument("--out", default="output", help="output folder for files the nodes write (default: ./output)")
    p.add_argument("--models", default=None, help="models folder with ComfyUI-style subfolders (loras/, diffusion_models/, ...)")
    p.add_argument("--input", default=None,
                   help="input folder for Load Image / Load Video file names (default: $EMOVID_INPUT_DIR or ./input)")
    p.add_argument("--temp", default=None,
                   help="folder for Preview Image files (default: 'temp' beside the --out folder, as in ComfyUI)")
    p.add_argument("--disable-metadata", action="store_true",
                   help="do not embed the workflow in saved PNGs (ComfyUI's --disable-metadata)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the run summary (ui dicts, files) to this JSON file")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import os
    from pathlib import Path

    from ... import runtime
    from ...atomic import check_outputs, write_text
    from ..cli import CLIError
    from ..graph import NeedsComfyUIError, apply_overrides, load_workflow, run_workflow

    if args.json_out:
        check_outputs([args.json_out], inputs=[args.workflow], force=args.force)
    wf = apply_overrides(load_workflow(args.workflow), args.set)
    old = os.environ.get("EMOVID_MODELS_DIR")
    if args.models:
        os.environ["EMOVID_MODELS_DIR"] = str(Path(args.models).resolve())
    inputs = {"input_dir": Path(args.input)} if args.input else {}
    try:
        with runtime.configured(**inputs):
            result = run_workflow(wf, out_dir=args.out, on_node=lambda nid, ct: print(f"[{nid}] {ct}", flush=True),
                                  temp_dir=args.temp, disable_metadata=args.disable_metadata)
    except NeedsComfyUIError as exc:
        raise CLIError(exc.explain(args.workflow)) from None
    finally:  # main() may be called in-process (tests, scripts): leave the environment as it was
        if old is None:
            os.environ.pop("EMOVID_MODELS_DIR", None)
        else:
            os.environ["EMOVID_MODELS_DIR"] = old
    print(f"ran {len(result.order)} node(s) in {result.seconds:.2f} s")
    for nid, ui in result.ui.items():
        text = ui.get("text")
        if text:
            print(f"[{nid}] " + " | ".join(str(t) for t in text))
    for f in result.files:
        print(f"wrote {f}")
    if args.json_out:
        summary = {"ui": result.ui, "files": [str(f) for f in result.files], "seconds": result.seconds}
        write_text(args.json_out, json.dumps(summary, indent=2, default=str))
    return 0
