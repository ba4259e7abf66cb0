"""The ``ray`` engine: the executor interface of :mod:`emovid_core.executor` on a Ray cluster (docs/cluster.md).

Ray is an optional extra (``pip install 'comfyui-emovid[cluster]'``), imported only when this engine starts.

- Plain tasks (``submit(key, fn, *args)``) are Ray tasks with one CPU each; at most two per task slot are in flight,
  so a 22,758-clip job does not put 22,758 specs into the cluster at once, and outcomes stream back as they finish.
- A task whose worker process or whole node dies is run again by Ray itself (``max_retries``); one that dies on
  every attempt comes back as a lost outcome, like on ``local`` (``Outcome.attempts`` counts only the engine's own
  re-queues; Ray's retries happen inside it). An exception raised by ``fn`` is the task's outcome (``error``),
  never retried: the same input would fail the same way.
- Stateful workers (``init=(factory, args)``) are actors: ``factory(*args)`` runs once per actor (a pipeline, a
  classifier), one task at a time per actor; each actor takes one GPU when the cluster has GPUs (else one CPU).
  An actor whose node dies is restarted elsewhere and its task retried (``max_restarts``/``max_task_retries``).
- Paths: every node must see the data at the paths tasks are given; ``path_map=[(SRC, DST)]`` rewrites a path
  prefix for the workers (``ex.worker_path(p)``), for nodes that mount it elsewhere.
- Code: workers import the task functions by name from ``emovid_core``; it must be installed on every node, or
  ``ship_code=True`` sends this ``emovid_core`` folder with the job (Ray ``runtime_env`` ``py_modules``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import runtime
from .executor import POLL_SECONDS, Outcome, WorkerState, _Base, call_task

EXTRA_HINT = "pip install 'comfyui-emovid[cluster]'"
log = logging.getLogger(__name__)


class MissingRayError(RuntimeError):
    """The ``ray`` engine was asked for but Ray is not installed."""


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise MissingRayError(f"engine 'ray' needs Ray, which is not installed here ({exc}); install the cluster extra: "
                              f"{EXTRA_HINT} (or use --engine local)") from None
    return ray


def parse_path_map(items: Sequence[str]) -> list[tuple[str, str]]:
    """``["SRC=DST", ...]`` -> ``[(SRC, DST), ...]``: this machine's path prefix SRC is DST on the workers."""
    pairs = []
    for item in items or ():
        src, sep, dst = str(item).partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"--path-map {item!r} must be SRC=DST (a folder here = the same folder on the workers), "
                             "e.g. --path-map /data/emovid=/mnt/emovid")
        pairs.append((src.strip().rstrip("/") or "/", dst.strip().rstrip("/") or "/"))
    return pairs


def map_path(path: Any, path_map: Sequence[tuple[str, str]]) -> str:
    p = str(path)
    for src, dst in path_map:
        if p == src:
            return dst
        if p.startswith(src.rstrip("/") + "/"):
            return dst.rstrip("/") + "/" + p[len(src.rstrip("/")) + 1:]
    return p


class _Holder(WorkerState):
    """The actor behind a stateful worker: ``factory(*args)`` once, when the actor starts (the pipelines of all
    actors load in parallel), then ``fn(state, *args)`` per task."""

    def __init__(self, factory: Callable, args: tuple) -> None:
        super().__init__((factory, args))
        self.setup()


def connect(address: str | None = "auto", ship_code: bool = False):
    """Connect this process to the cluster at ``address`` (``auto``: the one started on this machine with
    ``ray start``, or ``RAY_ADDRESS``) and return the ``ray`` module. The connection stays for the process's life, so
    the next executor (Table 3's scoring after its generation) reuses it; a process already connected keeps its
    cluster and its ``runtime_env``."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    runtime_env = None
    if ship_code:
        runtime_env = {"py_modules": [str(Path(__file__).resolve().parent)], "excludes": ["__pycache__", "*.pyc"]}
    try:
        ray.init(address=address or "auto", runtime_env=runtime_env, logging_level=logging.WARNING,
                 log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        raise ConnectionError(f"no Ray cluster at --address {address or 'auto'} ({exc}); start one with `ray start --head` "
                              "(docs/cluster.md) or give --address HOST:PORT") from None
    return ray


class RayExecutor(_Base):
    """See the module doc. ``workers``: task slots (default: the cluster's CPUs, or actors: its GPUs or CPUs);
    ``gpus``: ``"auto"`` (one GPU per actor when the cluster has GPUs), True or False."""

    def __init__(self, workers: int | None = None, retries: int = 3, init: tuple[Callable, tuple] | None = None, *,
                 address: str | None = "auto", path_map: Sequence[tuple[str, str]] = (), ship_code: bool = False,
                 gpus: bool | str = "auto") -> None:
        self._ray = connect(address, ship_code)
        ray = self._ray
        self.retries = max(0, int(retries))
        self.path_map = list(path_map)
        res = ray.cluster_resources()
        cpus, n_gpus = int(res.get("CPU", 0)), int(res.get("GPU", 0))
        self.use_gpu = bool(n_gpus) if gpus == "auto" else bool(gpus)
        if self.use_gpu and not n_gpus:
            raise ValueError("gpus=True but the Ray cluster has no GPUs (ray status lists its resources)")
        self._pending: deque = deque()  # (key, fn, args, attempt)
        self._running: dict[Any, tuple] = {}  # object ref -> (task, actor index or None)
        self._left = 0
        self._init = init
        if init is None:
            self.slots = max(1, int(workers or cpus or 1))
            self._remote = ray.remote(num_cpus=1, max_retries=self.retries)(call_task)
            self._actors: list = []
        else:
            self.slots = max(1, int(workers or (n_gpus if self.use_gpu else cpus) or 1))
            actor_cls = ray.remote(num_cpus=1, num_gpus=1 if self.use_gpu else 0, max_restarts=self.retries,
                                   max_task_retries=self.retries)(_Holder)
            self._actors = [actor_cls.remote(*init) for _ in range(self.slots)]
            self._idle = deque(range(self.slots))

    def worker_path(self, path) -> str:
        return map_path(path, self.path_map)

    def submit(self, key: str, fn: Callable, *args: Any) -> None:
        self._pending.append((key, fn, args, 1))
        self._left += 1

    def _fill(self) -> None:
        if self._init is None:
            while self._pending and len(self._running) < 2 * self.slots:
                task = self._pending.popleft()
                self._running[self._remote.remote(task[1], task[2])] = (task, None)
        else:
            while self._pending and self._idle:
                task, a = self._pending.popleft(), self._idle.popleft()
                self._running[self._actors[a].call.remote(task[1], task[2])] = (task, a)

    def results(self) -> Iterator[Outcome]:
        ray = self._ray
        while self._left:
            self._fill()
            if not self._running:  # every actor is gone: what is left cannot run
                while self._pending:
                    key, _fn, _args, attempt = self._pending.popleft()
                    self._left -= 1
                    yield Outcome(key, None, "no Ray worker left to run it (every actor died)", attempt, lost=True)
                continue
            refs = list(self._running)
            ready, rest = ray.wait(refs, num_returns=1, timeout=POLL_SECONDS)
            if ready and rest:
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready += more
            for ref in ready:
                task, actor = self._running.pop(ref)
                key, fn, args, attempt = task
                try:
                    ok, value = ray.get(ref)
                except ray.exceptions.RayError as exc:  # its worker, node or actor died on every attempt Ray made
                    why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                    if actor is not None:  # that actor is dead for good: leave it out, try another one
                        self._actors[actor] = None
                        if attempt <= self.retries and any(a is not None for a in self._actors):
                            log.warning(f"Ray actor died while running {key} ({why}); retrying it on another actor")
                            self._pending.appendleft((key, fn, args, attempt + 1))
                            continue
                    self._left -= 1
                    yield Outcome(key, None, f"lost on the Ray cluster: {why}", attempt, lost=True)
                    continue
                if actor is not None:
                    self._idle.append(actor)
                self._left -= 1
                yield Outcome(key, value, None, attempt) if ok else Outcome(key, None, value, attempt)
            runtime.check_interrupted()

    def cancel(self) -> None:
        ray = self._ray
        self._pending.clear()
        self._left = 0
        for ref, (_task, actor) in list(self._running.items()):
            if actor is None:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or its node is gone
                    pass
        self._running.clear()
        self._release()

    def close(self) -> None:
        self.cancel()

    def _release(self) -> None:
        for a in self._actors:
            if a is not None:
                try:
                    self._ray.kill(a)
                except Exception:
                    pass
        self._actors = []
