"""The ``ray`` engine against ``local`` on the same job, in one run; then what a real cluster would take.

1. One 200-clip index (clips whose probe + decode + attributes cost ~90 ms each: 480×272, 240 frames, every 20th
   frame measured) on both engines with two task slots each: ``local`` = two worker processes, ``ray`` = a head and
   a second worker node, one CPU each (tests/helpers/ray_cluster.py: loopback-only network namespace, token auth).
   Both indexes must be equal. Target: ray / local ≤ 1.3×.
2. Measured inputs of the estimate: the per-clip cost (one clip at a time, in this process), Ray's per-task overhead
   (the extra time per clip in 1.) and how many results one driver takes per second (no-op tasks, 64 in flight).
3. A simulated scaling table for the full set (22,758 clips) on 1, 4 and 16 nodes of 8 task slots each:
   time = max(clips × (clip cost + task overhead) / slots, clips / driver rate) + connecting. An estimate from these
   measurements, not a run on 16 machines.

Run (as root: it makes a network namespace): ``.venv/bin/python benchmarks/bench_cluster.py [--clips 200]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")

INSIDE = "EMOVID_BENCH_CLUSTER_INSIDE"
FULL_SET = 22_758
SLOTS_PER_NODE = 8


def make_clips(root: Path, n: int, distinct: int = 8) -> None:
    """``n`` clips (``distinct`` different videos, copied under their own names) and their metadata table."""
    import numpy as np

    from emovid_core import video_io
    from emovid_core.dataset import Clip, write_table
    from emovid_core.emotions import EMOTIONS

    y, x = np.mgrid[0:272, 0:480]
    sources = []
    for i in range(distinct):
        # A colour gradient with a moving square: ~90 ms to probe + measure on one core (noise would cost 10x more).
        base = np.stack([(x + 40 * i) % 480 * 255 // 480, y * 255 // 272, (x + y) * 255 // 752], -1).astype(np.uint8)
        frames = np.repeat(base[None], 240, axis=0)
        for t in range(240):
            r, c = (t * 3 + 17 * i) % 200, (t * 5 + 31 * i) % 400
            frames[t, r:r + 60, c:c + 80] = 255 - frames[t, r:r + 60, c:c + 80]
        p = root / "src" / f"v{i}.mp4"
        video_io.write_video(frames, p, 24.0)
        sources.append(p)
    clips = []
    for k in range(n):
        emotion = EMOTIONS[k % len(EMOTIONS)]
        rel = f"movie/{emotion}/clip{k:05d}.mp4"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[k % distinct], root / rel)
        clips.append(Clip(f"clip{k:05d}", rel, "movie", emotion, "human", f"clip {k}"))
    write_table(root / "emovid_metadata.csv", clips)


def _noop(x):
    return x


def inside(args) -> int:
    from tests.helpers.ray_cluster import LocalRayCluster

    work = Path(tempfile.mkdtemp(prefix="emovid-bench-cluster-"))
    cluster = LocalRayCluster()
    try:
        root = work / "ds"
        t0 = time.perf_counter()
        make_clips(root, args.clips)
        print(f"wrote {args.clips} clips (480x272, 240 frames) in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        cluster.start()
        os.environ.update(HOME=str(cluster.home), RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0")
        print(f"cluster (head + 1 worker node, 1 CPU each) up in {time.perf_counter() - t0:.1f} s")
        return _measure(args, root, cluster)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


def _measure(args, root: Path, cluster) -> int:
    from emovid_core.dataset.indexer import index_dataset, journal_path, measure_clip
    from emovid_core.executor import make_executor
    from emovid_core.ray_engine import connect

    t0 = time.perf_counter()
    connect(cluster.address)
    t_connect = time.perf_counter() - t0
    runs: dict[str, list[float]] = {"local": [], "ray": []}
    outputs = {}
    for _rep in range(args.repeat):
        for engine in ("local", "ray"):
            out = root.parent / f"{engine}.csv"
            journal_path(out).unlink(missing_ok=True)
            opts = {"address": cluster.address} if engine == "ray" else None
            t0 = time.perf_counter()
            report = index_dataset(root, out=out, workers=2, engine=engine, engine_options=opts, progress=False)
            runs[engine].append(time.perf_counter() - t0)
            assert report.indexed == args.clips and not report.failed, report
            outputs[engine] = out.read_bytes()
    same = outputs["local"] == outputs["ray"]
    best = {e: min(v) for e, v in runs.items()}
    print(f"\n1. index of {args.clips} clips, 2 task slots each (runs: " +
          "; ".join(f"{e} " + ", ".join(f"{t:.2f}" for t in v) + " s" for e, v in runs.items()) + ")")
    print(f"   local {best['local']:.2f} s, ray {best['ray']:.2f} s: ray/local = {best['ray'] / best['local']:.2f}x "
          f"(target <= 1.3x); indexes equal: {same}")

    paths = sorted((root / "movie").rglob("*.mp4"))[:12]
    measure_clip(paths[0], 20, 1)  # warm the decoder
    costs = []
    for p in paths:
        t0 = time.perf_counter()
        measure_clip(p, 20, 1)
        costs.append(time.perf_counter() - t0)
    clip_cost = statistics.median(costs)
    n_noop = 400
    # 32 nominal slots = 64 no-op tasks in flight on the 2 CPUs: what one driver can take, not one task's latency.
    with make_executor("ray", workers=32, address=cluster.address) as ex:
        for i in range(20):
            ex.submit(f"w{i}", _noop, i)
        list(ex.results())  # workers started
        t0 = time.perf_counter()
        for i in range(n_noop):
            ex.submit(f"n{i}", _noop, i)
        assert sum(1 for o in ex.results() if o.ok) == n_noop
        per_result = (time.perf_counter() - t0) / n_noop
    overhead_slot = max(0.0, (best["ray"] - best["local"]) * 2 / args.clips)
    print(f"\n2. per-clip cost {clip_cost * 1000:.0f} ms (median of {len(costs)}, one thread); no-op tasks: "
          f"{per_result * 1000:.2f} ms per result at the driver with 64 in flight ({1 / per_result:.0f} results/s); ray's extra cost per "
          f"clip in 1. {overhead_slot * 1000:.1f} ms per slot; connecting {t_connect:.1f} s")

    task_cost = clip_cost + max(overhead_slot, per_result)
    driver_rate = 1 / per_result
    local_one = FULL_SET * clip_cost / SLOTS_PER_NODE
    print(f"\n3. estimate for {FULL_SET:,} clips, {SLOTS_PER_NODE} task slots per node (ray: per clip "
          f"{task_cost * 1000:.0f} ms incl. overhead; one driver takes <= {driver_rate:.0f} results/s)")
    print(f"   {'nodes':>5} {'slots':>5} {'ray time':>10} {'clips/s':>8} {'vs local 1 node':>16} {'bound by':>10}")
    print(f"   {'local':>5} {SLOTS_PER_NODE:>5} {local_one:>9.0f}s {FULL_SET / local_one:>8.0f} {1.0:>15.2f}x {'cores':>10}")
    for nodes in (1, 4, 16):
        slots = nodes * SLOTS_PER_NODE
        compute, driver = FULL_SET * task_cost / slots, FULL_SET / driver_rate
        t = max(compute, driver) + t_connect
        print(f"   {nodes:>5} {slots:>5} {t:>9.0f}s {FULL_SET / t:>8.0f} {local_one / t:>15.2f}x "
              f"{'workers' if compute >= driver else 'driver':>10}")
    return 0 if same else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2, help="runs per engine (the best is compared)")
    args = ap.parse_args()
    if os.environ.get(INSIDE):
        return inside(args)
    from tests.helpers.ray_cluster import netns_command, problem

    why = problem()
    if why:
        print(f"cannot run: {why}")
        return 2
    return subprocess.call(netns_command([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]),
                           env={**os.environ, INSIDE: "1"})


if __name__ == "__main__":
    sys.exit(main())
