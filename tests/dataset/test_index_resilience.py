"""The executor and the dataset indexer when workers die (SIGKILL, for real), the user presses Ctrl-C, or the
disk refuses a write (a real failed write(), see tests/helpers/write_errors.py)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emovid_core import runtime
from emovid_core.dataset.indexer import index_dataset, journal_path
from emovid_core.executor import KILL_ATTEMPTS_ENV, KILL_HOOK_ENV, LocalExecutor, make_executor
from tests.helpers.write_errors import ROOT, run_emovid_with_file_size_limit


def _rows(path: Path) -> dict[str, dict]:
    return {r["clip_id"]: r for r in csv.DictReader(io.StringIO(path.read_text()))}


@pytest.fixture()
def small_root(sample_root, tmp_path):
    """The sample set with its metadata cut to 8 clips (both engines' costs stay small)."""
    root = tmp_path / "ds"
    shutil.copytree(sample_root, root)
    lines = (root / "emovid_metadata.csv").read_text().splitlines(keepends=True)
    (root / "emovid_metadata.csv").write_text("".join(lines[:9]))
    ref = index_dataset(root, out=tmp_path / "reference.csv", workers=1, progress=False)
    assert ref.indexed == 8 and ref.failed == []
    return root


def _victim(root: Path) -> dict:
    return list(_rows(root.parent / "reference.csv").values())[2]


# ------------------------------------------------------------------------------------------------- indexer


def test_a_worker_killed_mid_clip_is_retried_in_a_fresh_worker_and_the_index_is_complete(small_root, monkeypatch, caplog):
    victim = _victim(small_root)
    monkeypatch.setenv(KILL_HOOK_ENV, victim["path"])  # the worker SIGKILLs itself on that clip, first attempt only
    with caplog.at_level(logging.WARNING, logger="emovid_core.executor"):
        report = index_dataset(small_root, workers=2, progress=False)
    assert (report.indexed, report.measured, report.failed) == (8, 8, [])
    assert any("killed by SIGKILL" in r.message and victim["path"] in r.message and "fresh worker" in r.message
               for r in caplog.records)
    assert (small_root / "emovid_index.csv").read_text() == (small_root.parent / "reference.csv").read_text()
    assert multiprocessing.active_children() == []


def test_a_clip_whose_worker_dies_twice_is_reported_and_everything_else_is_indexed(small_root, monkeypatch):
    victim = _victim(small_root)
    monkeypatch.setenv(KILL_HOOK_ENV, victim["path"])
    monkeypatch.setenv(KILL_ATTEMPTS_ENV, "2")
    report = index_dataset(small_root, workers=2, progress=False)
    why = "worker process killed by SIGKILL (the out-of-memory killer?) while processing it (2 attempts)"
    assert report.failed == [{"clip_id": victim["clip_id"], "path": victim["path"], "error": why}]
    assert (report.indexed, report.measured) == (7, 8)
    ref = _rows(small_root.parent / "reference.csv")
    del ref[victim["clip_id"]]
    assert _rows(small_root / "emovid_index.csv") == ref  # every other clip exactly as in the uninterrupted run
    saved = json.loads(report.report_path.read_text())
    assert saved["unreadable"] == report.failed and "1 unreadable file(s)" in str(report)
    # The lost clip was not journalled as bad: the next run measures it (and only it).
    assert victim["path"] not in journal_path(small_root / "emovid_index.csv").read_text()
    monkeypatch.delenv(KILL_HOOK_ENV)
    again = index_dataset(small_root, workers=2, progress=False)
    assert (again.measured, again.reused, again.failed) == (1, 7, [])
    assert (small_root / "emovid_index.csv").read_text() == (small_root.parent / "reference.csv").read_text()


def test_ctrl_c_stops_the_workers_and_exits_130(sample_root, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(sample_root, root)
    journal = journal_path(root / "emovid_index.csv")
    proc = subprocess.Popen([sys.executable, "-m", "emovid_core", "dataset", "index", str(root), "--workers", "2"],
                            cwd=ROOT, env={**os.environ, "EMOVID_NO_PROGRESS": "1"}, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end and not (journal.is_file() and journal.read_text().count("\n") >= 3):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends: the whole process group
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=30)
        stopped = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert stopped < 10
    t_end = time.monotonic() + 5  # (multiprocessing's resource tracker ends a moment after its last user)
    while time.monotonic() < t_end and _group_alive(proc.pid):
        time.sleep(0.1)
    assert not _group_alive(proc.pid), subprocess.run(["ps", "-o", "pid,args", "-g", str(proc.pid)],
                                                      capture_output=True, text=True).stdout
    assert not (root / "emovid_index.csv").exists() and journal.read_text().count("\n") < 72


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------------------------------- write errors


def _hidden_tmp(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".tmp"))


def test_a_write_error_on_the_index_names_the_file_and_leaves_no_tmp(indexed_root, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(indexed_root, root)
    before = hashlib.sha256((root / "emovid_index.csv").read_bytes()).hexdigest()
    # Everything is in the journal, so the index (12 KB) is the only big write.
    proc = run_emovid_with_file_size_limit(["dataset", "index", str(root), "--workers", "1"], limit=4096)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"emovid dataset: error: cannot write {root / 'emovid_index.csv'}: File too large"
    assert hashlib.sha256((root / "emovid_index.csv").read_bytes()).hexdigest() == before  # the old one is intact
    assert _hidden_tmp(root) == []


def test_a_write_error_on_the_journal_names_it_and_the_rerun_resumes(sample_root, indexed_root, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(sample_root, root)
    proc = run_emovid_with_file_size_limit(["dataset", "index", str(root), "--workers", "1"], limit=2000)
    journal = journal_path(root / "emovid_index.csv")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (f"emovid dataset: error: cannot write {journal}: "
                                                    "File too large")
    assert not (root / "emovid_index.csv").exists() and _hidden_tmp(root) == []
    report = index_dataset(root, workers=1, progress=False)  # the torn last entry is ignored, the rest reused
    assert report.reused >= 4 and report.indexed == 72
    assert (root / "emovid_index.csv").read_text() == (indexed_root / "emovid_index.csv").read_text()


# ------------------------------------------------------------------------------------------------ executor


def _square_or_sleep(flag_dir: str, i: int) -> tuple[int, int]:
    """Task 3's first attempt writes its pid and sleeps until killed; every other run returns at once."""
    if i == 3 and not os.path.exists(os.path.join(flag_dir, "victim.pid")):
        with open(os.path.join(flag_dir, "victim.pid.tmp"), "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(os.path.join(flag_dir, "victim.pid.tmp"), os.path.join(flag_dir, "victim.pid"))
        time.sleep(60)
    if i == 5:
        raise ValueError("five is not welcome")
    return i * i, os.getpid()


def test_local_engine_survives_an_external_sigkill_mid_task(tmp_path):
    flag = tmp_path / "victim.pid"
    killed: dict[str, int] = {}

    def killer():
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end and not flag.exists():
            time.sleep(0.02)
        if flag.exists():
            killed["pid"] = int(flag.read_text())
            os.kill(killed["pid"], signal.SIGKILL)  # as the OOM killer does: no warning, no cleanup

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    with make_executor("local", workers=2) as ex:
        assert isinstance(ex, LocalExecutor)
        for i in range(8):
            ex.submit(f"task{i}", _square_or_sleep, str(tmp_path), i)
        outcomes = {o.key: o for o in ex.results()}
    t.join(timeout=5)
    assert sorted(outcomes) == [f"task{i}" for i in range(8)]
    assert outcomes["task3"].ok and outcomes["task3"].value[0] == 9 and outcomes["task3"].attempts == 2
    assert outcomes["task3"].value[1] != killed["pid"]
    assert outcomes["task5"].error == "ValueError: five is not welcome" and not outcomes["task5"].lost
    assert all(outcomes[f"task{i}"].value[0] == i * i for i in range(8) if i != 5)
    assert multiprocessing.active_children() == []


class _Cancel(Exception):
    pass


def test_cancel_while_a_task_runs_stops_every_worker_quickly(tmp_path):
    flag = tmp_path / "victim.pid"

    def cancel_when_the_sleeper_runs():
        if flag.exists():
            raise _Cancel("user pressed cancel")

    t0 = time.monotonic()
    with runtime.configured(interrupt_check=cancel_when_the_sleeper_runs), pytest.raises(_Cancel):
        with make_executor("local", workers=2) as ex:
            ex.submit("task3", _square_or_sleep, str(tmp_path), 3)  # sleeps 60 s unless stopped
            ex.submit("task1", _square_or_sleep, str(tmp_path), 1)
            list(ex.results())
    assert time.monotonic() - t0 < 20
    assert multiprocessing.active_children() == []


def test_unknown_engine_names_the_choices():
    with pytest.raises(ValueError, match="unknown engine 'dask'; choose one of: local, ray"):
        make_executor("dask")


def _load_state(tag: str) -> tuple:
    if tag == "broken":
        raise ValueError("no such model: broken")
    return tag, os.getpid()


def _with_state(state: tuple, i: int) -> tuple:
    return state, os.getpid(), i * 2


@pytest.mark.parametrize("workers", [1, 2])
def test_stateful_workers_build_their_state_once_and_a_failed_setup_is_every_tasks_error(workers):
    with make_executor("local", workers=workers, init=(_load_state, ("model",))) as ex:
        for i in range(6):
            ex.submit(f"t{i}", _with_state, i)
        outs = {o.key: o.value for o in ex.results()}
    assert sorted(v[2] for v in outs.values()) == [0, 2, 4, 6, 8, 10]
    states = {v[0] for v in outs.values()}
    assert all(s[0] == "model" for s in states) and len(states) <= workers
    assert all(v[0][1] == v[1] for v in outs.values())  # the state was built in the process that ran the task
    if workers == 1:
        with pytest.raises(ValueError, match="no such model"), make_executor("local", 1, init=(_load_state, ("broken",))) as ex:
            ex.submit("t", _with_state, 1)
            list(ex.results())  # in this process a failed setup is the run's error
    else:
        with make_executor("local", workers, init=(_load_state, ("broken",))) as ex:
            for i in range(3):
                ex.submit(f"t{i}", _with_state, i)
            errors = {o.error for o in ex.results()}
        assert errors == {"could not set up the worker: ValueError: no such model: broken"}
    assert multiprocessing.active_children() == []
