"""No output ever destroys an input or a user's file; a full disk gives one clear line and leaves nothing behind.

Every writing command goes through emovid_core.atomic.check_outputs (inputs refused always, other existing files
unless --force) and the atomic writers (plain-open permissions, WriteError naming the file). The disk-full tests
use a real full filesystem (a 1 MiB tmpfs, mounted when the test runs as root) and otherwise inject ENOSPC into the
final rename, so both kinds of machine run them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emovid_core import atomic, video_io
from emovid_core.host.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _video(path: Path, frames: int = 5) -> Path:
    rng = np.random.default_rng(3)
    return video_io.write_video(rng.integers(0, 255, (frames, 32, 48, 3), dtype=np.uint8), path, fps=8.0)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*")]


def _one_error_line(err: str, *parts: str) -> None:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0], (part, lines[0])


# --------------------------------------------------------------------------------------------- the one check


def test_check_outputs_refuses_an_input_a_link_to_it_and_a_users_file(tmp_path):
    src = tmp_path / "in.json"
    src.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(src)
    hard = tmp_path / "hard.json"
    os.link(src, hard)
    for out in (src, link, hard, tmp_path / "sub" / ".." / "in.json"):
        with pytest.raises(ValueError, match="is one of the inputs"):
            atomic.check_outputs([out], inputs=[src], force=True)  # --force never allows replacing an input
    other = tmp_path / "theirs.json"
    other.write_text("mine")
    with pytest.raises(ValueError, match=r"theirs.json exists and was not written by this command; pass --force"):
        atomic.check_outputs([other], inputs=[src])
    atomic.check_outputs([other], inputs=[src], force=True)
    atomic.check_outputs([other], inputs=[src], owned=lambda p: p == other)
    atomic.check_outputs([tmp_path / "new.json"], inputs=[src])
    assert other.read_text() == "mine" and src.read_text() == "{}"


def test_analyze_refuses_to_write_over_its_video_or_a_users_file(tmp_path, capsys):
    v = _video(tmp_path / "v.mp4")
    before = v.read_bytes()
    (tmp_path / "alias.json").symlink_to(v)
    for out in ("v.mp4", "alias.json"):
        assert main(["analyze", str(v), "--json", str(tmp_path / out)]) == 2
        _one_error_line(capsys.readouterr().err, "is one of the inputs", "emovid analyze: error:")
    assert main(["analyze", str(v), "--plot", str(v.with_suffix(".png")), "--json", str(v), "--force"]) == 2
    capsys.readouterr()
    assert v.read_bytes() == before and not v.with_suffix(".png").exists()
    notes = tmp_path / "notes.json"
    notes.write_text("my notes")
    assert main(["analyze", str(v), "--json", str(notes)]) == 2
    _one_error_line(capsys.readouterr().err, "notes.json exists", "--force")
    assert notes.read_text() == "my notes"
    assert main(["analyze", str(v), "--json", str(notes), "--force"]) == 0
    assert json.loads(notes.read_text())["clip"]["brightness"] is not None
    assert sorted(_hidden(tmp_path)) == []


def test_run_refuses_to_write_its_summary_over_the_workflow(tmp_path, capsys):
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps({"1": {"class_type": "EmoVidPrompt", "inputs": {"caption": "A cat.", "emotion": "awe"}}}))
    before = wf.read_bytes()
    assert main(["run", str(wf), "--json", str(wf), "--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys.readouterr().err, "wf.json is one of the inputs")
    assert wf.read_bytes() == before and not (tmp_path / "out").exists()
    theirs = tmp_path / "summary.json"
    theirs.write_text("keep")
    assert main(["run", str(wf), "--json", str(theirs), "--out", str(tmp_path / "out")]) == 2
    assert "--force" in capsys.readouterr().err and theirs.read_text() == "keep"


def test_workflow_to_api_refuses_to_overwrite_the_ui_file(tmp_path, capsys):
    ui_files = [p for p in sorted((ROOT / "workflows").rglob("*.json")) if "nodes" in json.loads(p.read_text())]
    ui = tmp_path / "ui.json"
    shutil.copy(ui_files[0], ui)
    before = ui.read_bytes()
    assert main(["workflow", "to-api", str(ui), "-o", str(ui)]) == 2
    _one_error_line(capsys.readouterr().err, "ui.json is one of the inputs")
    assert ui.read_bytes() == before
    api = tmp_path / "api.json"
    api.write_text("their api file")
    assert main(["workflow", "to-api", str(ui), "-o", str(api)]) == 2
    assert "api.json exists" in capsys.readouterr().err and api.read_text() == "their api file"
    assert main(["workflow", "to-api", str(ui), "-o", str(api), "--force"]) == 0
    assert all("class_type" in node for node in json.loads(api.read_text()).values())


def test_dataset_export_lists_users_files_it_would_replace_and_refreshes_its_own(sample_root, tmp_path, capsys):
    out = tmp_path / "ex"
    args = ["dataset", "export", str(sample_root), str(out), "--type", "movie", "--emotion", "awe", "--link", "copy"]
    assert main(args) == 0
    capsys.readouterr()
    manifest = json.loads((out / "emovid_export.json").read_text())
    videos = sorted(manifest["files"])
    assert len(videos) == 3 and all((out / v).is_file() for v in videos)
    assert main(args) == 0  # its own files (known from its manifest) are refreshed
    capsys.readouterr()
    # A user's files at two target names (say, after the manifest was lost): refused, listed, untouched.
    (out / "emovid_export.json").unlink()
    (out / "metadata.csv").unlink()
    for v in videos[:2]:
        (out / v).write_bytes(b"my own edit")
    before = _snapshot(out)
    assert main(args) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "3 existing files would be replaced", videos[0], videos[1], videos[2], "--force")
    assert _snapshot(out) == before
    assert main(args + ["--force"]) == 0
    assert (out / videos[0]).read_bytes() != b"my own edit" and (out / "metadata.csv").is_file()


def test_dataset_export_relinks_its_own_links_and_never_replaces_a_source(sample_root, tmp_path):
    from emovid_core.dataset import Filter, apply_filter, load_dataset
    from emovid_core.dataset.export import export_diffsynth

    ds = load_dataset(sample_root)
    clips, _ = apply_filter(ds.clips, Filter(types="movie", emotions="fear"))
    for link in ("hardlink", "symlink"):
        out = tmp_path / link
        export_diffsynth(ds, clips, out, link=link)
        export_diffsynth(ds, clips, out, link=link)  # links to the sources are its own outputs: refreshed, not refused
        assert len(list(out.rglob("*.mp4"))) == len(clips)
    # A table whose clip already sits at its export target name: exporting would copy the clip onto itself.
    root = tmp_path / "root"
    src = root / "ex" / "movie" / "fear" / "c1.mp4"
    src.parent.mkdir(parents=True)
    shutil.copy(ds.clip_path(clips[0]), src)
    (root / "emovid_metadata.csv").write_text("clip_id,path,type,emotion,label_source,caption\n"
                                              "c1,ex/movie/fear/c1.mp4,movie,fear,human,A man runs.\n")
    before = src.read_bytes()
    with pytest.raises(ValueError, match="c1.mp4 is one of the inputs"):
        export_diffsynth(load_dataset(root), load_dataset(root).clips, root / "ex", link="copy", force=True)
    assert src.read_bytes() == before and sorted(p.name for p in (root / "ex").rglob("*")) == ["c1.mp4", "fear", "movie"]


def test_dataset_commands_refuse_existing_files_and_the_table_they_read(sample_root, tmp_path, capsys):
    table = sample_root / "emovid_metadata.csv"
    before = table.read_bytes()
    assert main(["dataset", "filter", str(sample_root), "--out", str(table)]) == 2
    assert "is one of the inputs" in capsys.readouterr().err and table.read_bytes() == before
    mine = tmp_path / "mine.json"
    mine.write_text("keep")
    for cmd in (["stats", "--json"], ["sample", "--json"]):
        assert main(["dataset", cmd[0], str(sample_root), cmd[1], str(mine)]) == 2
        assert "mine.json exists" in capsys.readouterr().err and mine.read_text() == "keep"
    assert main(["dataset", "stats", str(sample_root), "--json", str(mine), "--force"]) == 0
    assert json.loads(mine.read_text())["n"] > 0


# --------------------------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        plain = tmp_path / "plain.txt"
        with open(plain, "w") as fh:
            fh.write("x")
        written = atomic.write_text(tmp_path / "atomic.txt", "x")
        v = _video(tmp_path / "v.mp4")
        assert main(["analyze", str(v), "--json", str(tmp_path / "report.json")]) == 0
    finally:
        os.umask(old)
    want = plain.stat().st_mode & 0o777
    assert want == 0o666 & ~umask
    for p in (written, tmp_path / "report.json"):
        assert p.stat().st_mode & 0o777 == want, oct(p.stat().st_mode)
    # Replacing a file keeps its mode, as opening it for writing would.
    os.chmod(written, 0o640)
    atomic.write_text(written, "y")
    assert written.stat().st_mode & 0o777 == 0o640 and written.read_text() == "y"


# --------------------------------------------------------------------------------------------- a full disk


@pytest.fixture()
def full_dir(tmp_path, monkeypatch):
    """A folder on a full filesystem: a real 1 MiB tmpfs filled up (root), else ENOSPC injected into the renames.

    Yields (folder, filler file or None); truncating the filler frees space on the real one."""
    target = tmp_path / "full"
    target.mkdir()
    mounted = os.geteuid() == 0 and shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(target)], capture_output=True).returncode == 0
    if mounted:
        filler = target / "filler"
        with open(filler, "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield target, filler
        subprocess.run(["umount", str(target)], check=True)
        return
    real_replace = os.replace

    def full_replace(src, dst, *a, **kw):
        if Path(dst).resolve().is_relative_to(target.resolve()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", full_replace)
    yield target, None


def _left(target: Path, filler: Path | None) -> list[str]:
    return sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p != filler and not p.is_dir())


def test_disk_full_during_analyze(full_dir, tmp_path, capsys):
    target, filler = full_dir
    v = _video(tmp_path / "v.mp4", frames=40)
    out = target / "report.json"
    assert main(["analyze", str(v), "--json", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, f"cannot write {out}", "No space left on device")
    assert _left(target, filler) == []


def test_disk_full_during_lora_convert(full_dir, tmp_path, capsys):
    from emovid_core.lora import write_lora
    from emovid_core.lora.testing import random_lora

    target, filler = full_dir
    src = tmp_path / "big.safetensors"
    write_lora(random_lora(dim=256, ffn=512, rank=8, seed=2), src, "diffsynth")
    assert src.stat().st_size > 32 * 1024
    out = target / "converted.safetensors"
    assert main(["lora", "convert", str(src), str(out), "--to", "comfy"]) == 2
    _one_error_line(capsys.readouterr().err, f"cannot write {out}", "No space left on device")
    assert _left(target, filler) == []


def test_disk_full_during_dataset_export(full_dir, sample_root, capsys):
    target, filler = full_dir
    if filler is not None:  # room for the small manifest, not for a clip: the copy itself runs out of space
        os.truncate(filler, filler.stat().st_size - 16 * 1024)
    out = target / "ex"
    assert main(["dataset", "export", str(sample_root), str(out), "--type", "movie", "--emotion", "awe", "--link", "copy"]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "cannot write", str(out), "No space left on device")
    assert not any(name.startswith(".") for name in _left(target, filler)), _left(target, filler)
    assert not (out / "metadata.csv").exists()


# --------------------------------------------------------------------------------------------- closed pipe


def test_output_to_a_closed_pipe_exits_quietly():
    """`emovid prompt --json | head -1`: the reader goes away; no BrokenPipe traceback, the shell's SIGPIPE status."""
    proc = subprocess.Popen([sys.executable, "-m", "emovid_core", "prompt", "A dog runs.", "--all", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child writes a byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err
    shell = subprocess.run(f"{sys.executable} -m emovid_core prompt 'A dog runs.' --all --json | head -c 1",
                           shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shell.stdout in ("{", "[") and shell.stderr == "", shell.stderr
