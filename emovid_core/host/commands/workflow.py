"""``emovid workflow``: convert UI-format workflows to API format and check workflow files."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("workflow", help="convert UI workflows to API format; check workflow files")
    wsub = p.add_subparsers(dest="workflow_command", metavar="ACTION")

    def schema_args(q):
        g = q.add_mutually_exclusive_group()
        g.add_argument("--object-info", default=None, metavar="FILE",
                       help="node schemas saved from a server (`curl URL/object_info > FILE`)")
        g.add_argument("--server", default=None, metavar="URL", help="read node schemas from a running ComfyUI")

    t = wsub.add_parser("to-api", help="convert a UI-format workflow (saved from ComfyUI) to API format",
                        description="Without --object-info/--server, core nodes come from the pack's snapshot of "
                                    "ComfyUI 0.3.64 and EmoVid nodes from their own classes.")
    t.add_argument("ui_json", help="UI-format workflow file")
    t.add_argument("-o", "--output", default=None, help="write here (default: print to stdout)")
    t.add_argument("--force", action="store_true", help="replace an existing OUTPUT file")
    schema_args(t)
    t.set_defaults(func=_to_api)

    c = wsub.add_parser("check", help="check workflow files: node types exist, widget values are valid, "
                                      "and (with --twins) UI files convert to their workflows/api/ twins")
    c.add_argument("files", nargs="+", help="workflow files (UI or API format)")
    c.add_argument("--twins", action="store_true", help="compare each UI file with api/<same name> next to it")
    schema_args(c)
    c.set_defaults(func=_check)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _schemas(args) -> dict:
    from ..object_info import load_object_info
    from ..workflow_convert import offline_object_info

    if args.object_info:
        return load_object_info(args.object_info)
    if args.server:
        from ..queue_client import ComfyClient

        return ComfyClient(args.server).object_info()
    return offline_object_info()


def _to_api(args) -> int:
    import json
    import sys

    from ...atomic import check_outputs, write_json
    from ..graph import load_workflow
    from ..workflow_convert import ui_to_api

    if args.output:
        check_outputs([args.output], inputs=[args.ui_json, *filter(None, [args.object_info])], force=args.force)
    api = ui_to_api(load_workflow(args.ui_json), _schemas(args), source=args.ui_json)
    if args.output:
        write_json(args.output, api)
        print(f"wrote {args.output} ({len(api)} nodes)", file=sys.stderr)
    else:
        print(json.dumps(api, indent=2, ensure_ascii=False))
    return 0


def _check(args) -> int:
    from pathlib import Path

    from ..graph import load_workflow
    from ..workflow_convert import api_diff, check_api, check_ui, is_ui_workflow

    info = _schemas(args)
    bad = 0
    for f in args.files:
        wf = load_workflow(f)
        if is_ui_workflow(wf):
            api, problems = check_ui(wf, info, source=f)
            msgs = [str(p) for p in problems]
            twin = Path(f).parent / "api" / Path(f).name
            if args.twins and api is not None:
                if not twin.is_file():
                    msgs.append(f"API twin {twin} is missing (write it with `emovid workflow to-api {f} -o {twin}`)")
                else:
                    msgs += [f"differs from {twin}: {d}" for d in api_diff(load_workflow(twin), api)]
        else:
            msgs = [str(p) for p in check_api(wf, info)]
        if msgs:
            bad += 1
            print(f"FAIL {f}")
            for m in msgs:
                print(f"  - {m}")
        else:
            print(f"ok   {f}")
    return 1 if bad else 0
