"""``emovid queue`` against misbehaving servers: peak memory and wall time of one CLI run each (issue #11).

Cases (the server is tests/host/misbehaving_server.py on 127.0.0.1, in this process; the client is a child process):

1. endless ``/view`` (no Content-Length, ~``--rate`` MB/s) with ``--timeout 20``: must stop at the deadline with
   constant memory (it used to hold the whole body: 9 GB peak for 3 GB, and ran 118 s).
2. the same endless ``/view`` at full loopback speed with the default cap (4 GiB): must stop at the cap.
3. a server that accepts every connection and never answers, ``--timeout 5``, with and without the websocket
   (it used to wait 70 s).

Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``; wall time is measured around the child.
Run: ``.venv/bin/python benchmarks/bench_queue_misbehaving.py [--rate 100]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.host.misbehaving_server import Misbehaving, endless, hang  # noqa: E402

WF = {"9": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}


def run_queue(url: str, tmp: Path, *extra: str) -> tuple[int, float, float, str]:
    """(exit status, wall seconds, peak RSS MiB, last stderr line) of one `emovid queue` child."""
    wf = tmp / "wf.json"
    wf.write_text(json.dumps(WF))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "emovid_core", "queue", str(wf), "--server", url,
                             "--out", str(tmp / "out"), *extra], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_maxrss / 1024, (err.strip().splitlines() or [""])[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=100, help="MB/s of the endless download in case 1 (default 100)")
    args = ap.parse_args()
    cases = [
        ("endless /view, --timeout 20", {"GET /view": endless(rate=args.rate * 1e6)}, ["--timeout", "20"]),
        ("endless /view, full speed, default --max-download 4GiB", {"GET /view": endless()}, ["--timeout", "120"]),
        ("hanging server, --timeout 5", {r: hang for r in ("POST /prompt", "GET /history", "GET /queue",
                                                            "POST /interrupt", "POST /queue", "GET /ws")},
         ["--timeout", "5"]),
        ("hanging server, --timeout 5 --no-websocket", {r: hang for r in ("POST /prompt", "GET /history",
                                                                          "GET /queue", "POST /interrupt",
                                                                          "POST /queue")},
         ["--timeout", "5", "--no-websocket"]),
    ]
    print(f"{'case':58s} {'exit':>4s} {'wall s':>7s} {'peak RSS MiB':>13s}  last line")
    for name, routes, extra in cases:
        with tempfile.TemporaryDirectory() as d, Misbehaving(routes) as srv:
            rc, wall, rss, line = run_queue(srv.url, Path(d), *extra)
            left = sorted(p.name for p in (Path(d) / "out").rglob("*")) if (Path(d) / "out").exists() else []
        print(f"{name:58s} {rc:4d} {wall:7.1f} {rss:13.0f}  {line[:150]}" + (f"  LEFT: {left}" if left else ""))


if __name__ == "__main__":
    main()
