"""Run many independent tasks on an engine and get their outcomes back, surviving workers that die.

The interface every engine implements (the indexer and Table 3 use it; engines: ``local``, below, and ``ray``,
:mod:`emovid_core.ray_engine`, for a cluster)::

    with make_executor("local", workers=4) as ex:
        for key, args in jobs:
            ex.submit(key, fn, *args)          # fn: a module-level function (it travels by name)
        for out in ex.results():              # in completion order; every submitted task comes back once
            out.key, out.value                 # out.ok: fn returned
            out.error                          # else why not (fn raised, or its worker died twice)

Stateful workers: ``make_executor(..., init=(factory, args))`` builds ``state = factory(*args)`` once per worker
(a model, a classifier: loaded once, not per task); every task is then called as ``fn(state, *args)``. On
``ray`` such workers are actors. Paths handed to tasks go through ``ex.worker_path(path)`` (identity here; the
``ray`` engine's ``path_map`` rewrites them for nodes that mount the data elsewhere).

``cancel()`` stops everything now (pending tasks are dropped, workers killed); leaving the ``with`` block by an
exception (Ctrl-C, ComfyUI's Cancel) cancels, a normal exit closes. ``results()`` calls
``runtime.check_interrupted()`` at least every :data:`POLL_SECONDS`, so Cancel works while a long task runs.

The ``local`` engine is a set of ``spawn``-ed :class:`multiprocessing.Process` workers, each with its own pipe,
given one task at a time, so the parent always knows which worker holds which task. It waits on the pipes and on
each worker's ``Process.sentinel`` together: a worker that dies (the out-of-memory killer, a segfault in a
decoder) is seen at once, its task is handed to a fresh worker (``retries`` times, default 1), then reported
lost with the signal or exit status. Why not the standard pools: ``multiprocessing.Pool`` never notices a dead
worker (``imap`` waits forever for the lost task); ``concurrent.futures.ProcessPoolExecutor`` notices but breaks
the whole pool (every pending future fails with ``BrokenProcessPool``) and hung in shutdown after a
KeyboardInterrupt in this project. Here there are no feeder threads or shared queues to jam: cancelling is
terminate + join of our own processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait as _wait
from typing import Any, Protocol

from . import runtime

POLL_SECONDS = 0.2
# Test hook (read in the worker, never set by the pack): a worker SIGKILLs itself when it receives a task whose key
# contains this text, on attempts 1..EMOVID_TEST_KILL_ATTEMPTS (default 1). It makes the "worker died mid-task"
# path testable for real, as the OOM killer would do it.
KILL_HOOK_ENV = "EMOVID_TEST_KILL_TASK"
KILL_ATTEMPTS_ENV = "EMOVID_TEST_KILL_ATTEMPTS"
log = logging.getLogger(__name__)


@dataclass
class Outcome:
    key: str
    value: Any = None
    error: str | None = None  # None: ``fn`` returned ``value``
    attempts: int = 1
    lost: bool = False  # the task never finished: its worker died on every attempt

    @property
    def ok(self) -> bool:
        return self.error is None


class Executor(Protocol):
    def submit(self, key: str, fn: Callable, *args: Any) -> None: ...
    def results(self) -> Iterator[Outcome]: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...
    def worker_path(self, path: Any) -> str: ...
    def __enter__(self) -> Executor: ...
    def __exit__(self, *exc) -> None: ...


class _Base:
    def worker_path(self, path) -> str:
        """``path`` as the workers see it: the same on this machine."""
        return str(path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.cancel()
        else:
            self.close()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def call_task(fn: Callable, args: tuple) -> tuple[bool, Any]:
    """Run one task where its worker is: ``(True, value)``, or ``(False, why)`` when ``fn`` raised -- a task's
    exception is its outcome, not the worker's (the same input would fail the same way, so it is not retried)."""
    try:
        return True, fn(*args)
    except Exception as exc:
        return False, _describe(exc)


class WorkerState:
    """What a worker holds for stateful tasks (``init=(factory, args)``): ``factory(*args)`` built once, at
    :meth:`setup` or the first task; if that fails, every task of this worker reports why. Local worker processes
    and Ray actors both hold one; without ``init`` tasks are plain ``fn(*args)``."""

    def __init__(self, init: tuple[Callable, tuple] | None) -> None:
        self._init = init
        self._state: tuple = ()
        self._broken: str | None = None

    def setup(self) -> None:
        if self._init is not None and not self._state and self._broken is None:
            factory, args = self._init
            try:
                self._state = (factory(*args),)
            except Exception as exc:
                self._broken = f"could not set up the worker: {_describe(exc)}"

    def call(self, fn: Callable, args: tuple) -> tuple[bool, Any]:
        self.setup()
        if self._broken is not None:
            return False, self._broken
        return call_task(fn, (*self._state, *args))


class InlineExecutor(_Base):
    """Runs each task in this process when ``results()`` reaches it (``workers=1``): no crash isolation."""

    def __init__(self, init: tuple[Callable, tuple] | None = None) -> None:
        self._todo: deque = deque()
        self._init = init
        self._state: tuple = ()

    def submit(self, key: str, fn: Callable, *args: Any) -> None:
        self._todo.append((key, fn, args))

    def results(self) -> Iterator[Outcome]:
        if self._todo and self._init is not None and not self._state:
            factory, fargs = self._init
            self._state = (factory(*fargs),)  # in this process a failed setup is the run's error, raised as is
        while self._todo:
            runtime.check_interrupted()
            key, fn, args = self._todo.popleft()
            try:
                yield Outcome(key, fn(*self._state, *args))
            except Exception as exc:  # one task's failure is its outcome, not the run's ...
                runtime.check_interrupted()  # ... but a Cancel raised inside fn belongs to the run
                yield Outcome(key, error=_describe(exc))

    def cancel(self) -> None:
        self._todo.clear()

    def close(self) -> None:
        self._todo.clear()


def _worker_main(conn, init: tuple[Callable, tuple] | None = None) -> None:
    # Ctrl-C reaches the whole process group; only the parent reacts (it stops the workers), so the workers do
    # not each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    kill_on = os.environ.get(KILL_HOOK_ENV) or None
    kill_attempts = int(os.environ.get(KILL_ATTEMPTS_ENV) or 1)
    worker = WorkerState(init)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the parent went away
        if msg is None:
            return
        key, fn, args, attempt = msg
        if kill_on and kill_on in key and attempt <= kill_attempts:
            os.kill(os.getpid(), signal.SIGKILL)
        conn.send((key, *worker.call(fn, args)))


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = {"SIGKILL": " (the out-of-memory killer?)", "SIGSEGV": " (a crash in a decoder?)"}.get(name, "")
        return f"killed by {name}{hint}"
    return f"exited with status {exitcode}"


class LocalExecutor(_Base):
    """``workers`` spawned processes; see the module doc. Tasks are (module-level function, picklable args)."""

    def __init__(self, workers: int, retries: int = 1, init: tuple[Callable, tuple] | None = None) -> None:
        self.workers = max(1, int(workers))
        self._init = init
        self.retries = max(0, int(retries))
        # spawn: a forked child would inherit the parent's thread pools (torch/OpenCV inside ComfyUI), which can deadlock.
        self._ctx = multiprocessing.get_context("spawn")
        self._pending: deque = deque()  # (key, fn, args, attempt)
        self._procs: dict[int, tuple[Any, Any]] = {}  # sentinel -> (process, parent end of its pipe)
        self._holding: dict[int, tuple | None] = {}  # sentinel -> the task that worker is running
        self._left = 0  # submitted tasks whose outcome has not been yielded yet

    def submit(self, key: str, fn: Callable, *args: Any) -> None:
        self._pending.append((key, fn, args, 1))
        self._left += 1

    def _start(self, task: tuple | None = None) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self._init), daemon=True, name="emovid-worker")
        proc.start()
        child.close()
        self._procs[proc.sentinel] = (proc, parent)
        self._holding[proc.sentinel] = None
        if task is not None:
            self._give(proc.sentinel, task)

    def _give(self, sentinel: int, task: tuple) -> None:
        self._holding[sentinel] = task
        try:
            self._procs[sentinel][1].send(task)
        except OSError:
            pass  # the worker just died: its sentinel fires and the task it now holds is retried

    def _retire(self, sentinel: int) -> None:
        proc, conn = self._procs.pop(sentinel)
        self._holding.pop(sentinel, None)
        conn.close()
        proc.join(timeout=1)

    def results(self) -> Iterator[Outcome]:
        while self._left:
            # Idle workers take pending tasks; start workers up to the limit while there is work for them.
            for s, task in list(self._holding.items()):
                if task is None and self._pending:
                    self._give(s, self._pending.popleft())
            while self._pending and len(self._procs) < self.workers:
                self._start(self._pending.popleft())
            conns = {conn: s for s, (_p, conn) in self._procs.items()}
            ready = _wait(list(conns) + list(self._procs), timeout=POLL_SECONDS)
            for obj in ready:
                s = conns.get(obj)
                if s is not None:  # a reply (read it before looking at deaths: a worker may reply, then exit)
                    try:
                        key, ok, value = obj.recv()
                    except (EOFError, OSError):
                        continue  # it died: its sentinel reports that
                    task = self._holding[s]
                    self._holding[s] = None
                    self._left -= 1
                    yield Outcome(key, value, None, task[3]) if ok else Outcome(key, None, value, task[3])
            for obj in ready:
                if obj in self._procs and not self._procs[obj][0].is_alive():
                    task = self._holding.get(obj)
                    proc = self._procs[obj][0]
                    proc.join(timeout=1)
                    why = _death(proc.exitcode)
                    self._retire(obj)
                    if task is None:
                        continue
                    key, fn, args, attempt = task
                    if attempt <= self.retries:
                        log.warning(f"worker process {why} while running {key}; retrying it in a fresh worker")
                        self._start((key, fn, args, attempt + 1))  # a fresh process, not one that ran other tasks
                    else:
                        self._left -= 1
                        tries = f"{attempt} attempts" if attempt > 1 else "1 attempt"
                        yield Outcome(key, None, f"worker process {why} while processing it ({tries})", attempt, lost=True)
            runtime.check_interrupted()

    def cancel(self) -> None:
        """Drop pending tasks and kill the workers now (SIGTERM, then SIGKILL for any that linger)."""
        self._pending.clear()
        self._left = 0
        procs = [p for p, _c in self._procs.values()]
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join(timeout=2)
        for _p, c in self._procs.values():
            c.close()
        self._procs.clear()
        self._holding.clear()

    def close(self) -> None:
        """Ask idle workers to exit and wait for them (cancel() if any lingers)."""
        for _p, conn in self._procs.values():
            try:
                conn.send(None)
            except OSError:
                pass
        for p, _c in self._procs.values():
            p.join(timeout=5)
        self.cancel()


ENGINES = ("local", "ray")


def make_executor(engine: str = "local", workers: int | None = None, retries: int | None = None, *,
                  init: tuple[Callable, tuple] | None = None, **options: Any) -> Executor:
    """An executor for ``engine``; ``local`` with one worker runs tasks inline (in this process).

    ``retries``: how often a task whose worker (or, on ``ray``, node) died is run again (default: 1 on
    ``local``, 3 on ``ray``). ``init``: stateful workers, see the module doc. ``options`` are the engine's own
    (``ray``: ``address``, ``path_map``, ``ship_code``, ``gpus``; see :class:`emovid_core.ray_engine.RayExecutor`).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if engine == "ray":
        from .ray_engine import RayExecutor

        return RayExecutor(workers=workers, retries=3 if retries is None else retries, init=init, **options)
    if options:
        raise ValueError(f"{', '.join(sorted(options))}: options of the ray engine only (this is engine 'local')")
    workers = max(1, int(workers or os.cpu_count() or 1))
    retries = 1 if retries is None else retries
    return InlineExecutor(init) if workers == 1 else LocalExecutor(workers, retries, init)
