"""``emovid queue``: send a workflow to a running ComfyUI, follow it, download what it produces."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "queue",
        help="queue a workflow on a running ComfyUI server and download its outputs",
        description="Queue an API-format workflow (or a UI-format one, converted with the server's /object_info) "
                    "on a running ComfyUI, show progress, wait, and download every output into --out. Exit status: "
                    "0 done, 3 rejected by validation, 4 a node failed, 5 timeout (the prompt is interrupted), "
                    "6 server unreachable, 7 bad answer from the server (dropped connection, body cut short, "
                    "not JSON, wrong shape, redirect to another host), 8 an output could not be saved "
                    "(over --max-download, disk full), 2 bad arguments, 1 other.",
    )
    p.add_argument("workflow", help="workflow JSON: API format ('Export (API)') or UI format (saved workflow)")
    p.add_argument("--server", default=None,
                   help="ComfyUI address (default: $COMFYUI_URL or http://127.0.0.1:8188)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="override an input, e.g. --set 3.seed=42 (VALUE parsed as JSON when possible)")
    p.add_argument("--upload", action="append", default=[], metavar="FILE|NODE.INPUT=FILE",
                   help="upload FILE to the server's input folder first; with NODE.INPUT= also point that input at it")
    p.add_argument("--out", default="output", help="folder for the downloaded outputs (default: ./output)")
    p.add_argument("--force", action="store_true",
                   help="replace files already in --out; without it they are kept and a new file with the same name "
                        "is saved as NAME-1.EXT, NAME-2.EXT, ...")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds for the whole job: uploads, queueing, waiting and downloads; every connect and "
                        "read ends by then too, and a running prompt is interrupted (default 600)")
    p.add_argument("--max-download", default="4GiB", metavar="SIZE",
                   help="largest output file to download, e.g. 500M, 8GiB (default 4GiB); larger ones stop the job")
    p.add_argument("--no-websocket", action="store_true", help="follow progress by polling /history only")
    p.add_argument("--allow-partial", action="store_true",
                   help="when some outputs fail validation, run the others instead of failing")
    p.add_argument("--retries", type=int, default=6, help="connection attempts when the server refuses (default 6)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    from ..graph import load_workflow
    from ..queue_client import ComfyClient, QueueError, parse_size

    if args.timeout <= 0:
        raise ValueError(f"--timeout {args.timeout:g} must be positive (seconds), e.g. --timeout 600")
    try:
        max_download = parse_size(args.max_download)
    except ValueError as exc:
        raise ValueError(f"--max-download: {exc}") from None
    client = ComfyClient(args.server, connect_retries=args.retries, use_websocket=not args.no_websocket,
                         max_download=max_download)
    wf = load_workflow(args.workflow)
    try:
        job = client.run(wf, out_dir=args.out, timeout=args.timeout, overrides=args.set, uploads=args.upload,
                         show_progress=True, allow_partial=args.allow_partial, replace=args.force)
    except QueueError as exc:
        print(f"emovid queue: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    for nid, ui in sorted(job.outputs.items(), key=lambda kv: str(kv[0])):
        text = ui.get("text") if isinstance(ui, dict) else None
        if text:
            print(f"[{nid}] " + " | ".join(str(t) for t in text))
    for f in job.files:
        print(f"downloaded {f}")
    print(f"prompt {job.prompt_id} finished in {job.seconds:.1f} s; {len(job.files)} file(s) in {args.out}")
    return 0
