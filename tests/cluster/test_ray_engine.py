"""``--engine ray`` against a two-node cluster: the same index and Table 3 as ``local``, a dead node survived, tasks on
both nodes, errors as outcomes, shipped code; the engine without Ray names the extra."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from emovid_core.dataset.indexer import index_dataset, journal_path
from emovid_core.host.cli import main
from emovid_core.ray_engine import EXTRA_HINT, MissingRayError, map_path, parse_path_map

EMOVID = str(Path(sys.executable).parent / "emovid")


@pytest.fixture(scope="module")
def reference(cluster, sample_root, tmp_path_factory):
    """The sample set's index made by the local engine (in this process; the same bytes as with worker processes,
    tests/dataset/), made while the cluster starts: what the cluster must reproduce."""
    root = tmp_path_factory.mktemp("local") / "ds"
    shutil.copytree(sample_root, root)
    report = index_dataset(root, workers=1, progress=False)
    assert report.failed == [] and report.indexed == 72
    return (root / "emovid_index.csv").read_bytes()


def _copy(sample_root, tmp_path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(sample_root, root)
    return root


def _ok(r: dict) -> str:
    assert r["rc"] == 0, r["stderr"][-3000:]
    return r["stdout"]


def test_index_on_two_nodes_equals_the_local_index_and_a_rerun_resumes_from_the_journal(cluster, sample_root, reference, tmp_path):
    root = _copy(sample_root, tmp_path)
    out = _ok(cluster.run([EMOVID, "dataset", "index", str(root), "--engine", "ray", "--address", cluster.address]))
    assert "indexed 72 clip(s)" in out and "(72 measured, 0 reused" in out
    assert (root / "emovid_index.csv").read_bytes() == reference
    journal = journal_path(root / "emovid_index.csv")
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:30]) + "\n")  # as if the run had stopped after 30 clips
    out = _ok(cluster.run([EMOVID, "dataset", "index", str(root), "--engine", "ray", "--address", cluster.address]))
    assert "(42 measured, 30 reused" in out
    assert (root / "emovid_index.csv").read_bytes() == reference


DRIVER = """
import json, sys
from emovid_core.executor import make_executor
with make_executor("ray", address=sys.argv[1], ship_code=sys.argv[2] == "ship") as ex:
    for i in range(8):
        ex.submit(f"sid{i}", __import__("time").sleep, 0.2)
    ex.submit("bad", int, "not a number")
    ex.submit("code", eval, "__import__('emovid_core').__file__")
    ex.submit("sessions", eval, "__import__('os').getsid(0)")
    got = {o.key: [o.ok, o.value, o.error] for o in ex.results()}
    for i in range(6):
        ex.submit(f"s{i}", eval, "(__import__('time').sleep(0.3), __import__('os').getsid(0))[1]")
    got["spread"] = sorted({o.value for o in ex.results()})
print(json.dumps(got))
"""


def test_tasks_run_on_both_nodes_errors_are_outcomes_and_the_code_can_ship_with_the_job(cluster, tmp_path):
    # Run from elsewhere: Ray puts the driver's working directory first on the workers' sys.path.
    got = json.loads(_ok(cluster.run([sys.executable, "-c", DRIVER, cluster.address, "ship"], cwd=tmp_path)).strip().splitlines()[-1])
    assert got["bad"] == [False, None, "ValueError: invalid literal for int() with base 10: 'not a number'"]
    assert all(got[f"sid{i}"][0] for i in range(8))
    assert len(got["spread"]) == 2  # six 0.3 s tasks on two one-CPU nodes: each node's session ran some
    assert "runtime_resources" in got["code"][1]  # emovid_core came from the job's py_modules, not the checkout
    # (without --ship-code the workers import the installed pack: every other test here)


def test_eval_table3_generates_and_scores_on_actors_with_the_local_outputs(cluster, tmp_path, monkeypatch):
    """Deterministic job (tiny pipeline, tiny CLIP, one torch thread as each one-CPU actor has): the same bytes."""
    import torch

    from emovid_core.dataset.synthetic import make_sample
    from emovid_core.evaluation.tiny import ensure_tiny_clip

    sample = make_sample(tmp_path / "sample", per_cell=1, extra_per_cell=0).root
    lines = (sample / "emovid_metadata.csv").read_text().splitlines(keepends=True)
    (sample / "emovid_metadata.csv").write_text("".join(lines[:4]))  # 3 benchmark clips keep it short
    clip = ensure_tiny_clip("tiny")
    out = tmp_path / "t3"
    args = ["eval", "table3", "--dataset", str(sample), "--classifier", f"clip:{clip}", "--clip", str(clip), "--generate",
            "--pipeline", "tiny-t2v", "--steps", "2", "--guidance", "1", "--out", str(out)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    local = _outputs(out)
    shutil.rmtree(out)
    # One actor per stage: the stages still run as actors on the cluster, without four torch imports on two cores.
    text = _ok(cluster.run([EMOVID, *args, "--engine", "ray", "--address", cluster.address, "--workers", "1"]))
    assert "3 clips scored, 0 reused" in text
    got = _outputs(out)
    assert sorted(got) == sorted(local) and len([p for p in local if p.suffix == ".mp4"]) == 3
    assert [p for p in local if got[p] != local[p]] == []


def _outputs(out: Path) -> dict:
    """Every output file's bytes; the score cache as its records less their keys (a key holds the video's mtime)."""
    files = {}
    for p in out.rglob("*"):
        if p.is_file() and p.suffix != ".png":  # matplotlib's PNGs are not byte-stable
            if p.suffix == ".jsonl":
                recs = [json.loads(line) for line in p.read_text().splitlines()]
                files[p.relative_to(out)] = sorted(({k: v for k, v in r.items() if k != "key"} for r in recs),
                                                   key=lambda r: r["clip_id"])
            else:
                files[p.relative_to(out)] = p.read_bytes()
    return files


# Last in the module: the worker node stays dead afterwards.
def test_killing_the_worker_node_mid_run_still_gives_the_complete_local_index(cluster, sample_root, reference, tmp_path):
    root = _copy(sample_root, tmp_path)
    r = cluster.run_killing_worker([EMOVID, "dataset", "index", str(root), "--engine", "ray", "--address", cluster.address],
                                   watch=journal_path(root / "emovid_index.csv"), lines=8)
    out = _ok(r)
    assert r["killed"]["pids"] >= 2 and r["killed"]["lines_then"] < 72  # its raylet and more, before the end
    assert "indexed 72 clip(s)" in out and "0 unreadable" not in out and "unreadable" not in out
    assert (root / "emovid_index.csv").read_bytes() == reference


# ------------------------------------------------------------------------------------------------- without a cluster


def test_the_ray_engine_without_ray_names_the_extra(sample_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed (works whether or not it is)
    from emovid_core.executor import make_executor

    with pytest.raises(MissingRayError, match=r"pip install 'comfyui-emovid\[cluster\]'"):
        make_executor("ray")
    root = _copy(sample_root, tmp_path)
    assert main(["dataset", "index", str(root), "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    assert "engine 'ray' needs Ray" in err and EXTRA_HINT in err and "--engine local" in err
    assert not (root / "emovid_index.csv").exists()


def test_ray_options_are_refused_on_the_local_engine_and_path_maps_are_checked(sample_root, tmp_path, capsys):
    root = _copy(sample_root, tmp_path)
    assert main(["dataset", "index", str(root), "--address", "10.0.0.1:6379"]) == 2
    assert "--address only apply with --engine ray" in capsys.readouterr().err
    assert main(["dataset", "index", str(root), "--engine", "ray", "--path-map", "/data"]) == 2
    assert "--path-map '/data' must be SRC=DST" in capsys.readouterr().err
    pm = parse_path_map(["/home/me/emovid/=/mnt/emovid"])
    assert pm == [("/home/me/emovid", "/mnt/emovid")]
    assert map_path("/home/me/emovid/movie/a.mp4", pm) == "/mnt/emovid/movie/a.mp4"
    assert map_path("/home/me/emovid", pm) == "/mnt/emovid"
    assert map_path("/home/me/emovid2/a.mp4", pm) == "/home/me/emovid2/a.mp4"  # a prefix of a name is not a folder
