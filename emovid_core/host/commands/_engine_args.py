"""The engine options shared by the commands that run many tasks (``dataset index``, ``eval table3``)."""

from __future__ import annotations


def add_engine_arguments(parser) -> None:
    """``--engine --address --path-map --ship-code`` on a parser (docs/cluster.md)."""
    g = parser.add_argument_group("engine (docs/cluster.md)")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: processes on this machine (default); ray: tasks on a Ray cluster (extra: comfyui-emovid[cluster])")
    g.add_argument("--address", default="auto", metavar="auto|HOST:PORT",
                   help="ray: the cluster to join (default auto: the one `ray start` started on this machine, or RAY_ADDRESS)")
    g.add_argument("--path-map", action="append", default=[], metavar="SRC=DST",
                   help="ray: a folder here that the worker nodes see as DST (repeatable); default: the same paths everywhere")
    g.add_argument("--ship-code", action="store_true",
                   help="ray: send this emovid_core with the job (runtime_env py_modules) instead of using the nodes' installed copy")


def engine_options(args) -> dict:
    """The engine's own options from the parsed arguments ({} for local; a ray option without --engine ray is an error)."""
    if args.engine != "ray":
        given = [f for f, v in (("--address", args.address != "auto"), ("--path-map", args.path_map), ("--ship-code", args.ship_code)) if v]
        if given:
            raise ValueError(f"{', '.join(given)} only apply with --engine ray")
        return {}
    from ...ray_engine import parse_path_map

    return {"address": args.address, "path_map": parse_path_map(args.path_map), "ship_code": args.ship_code}
