"""An exposed ComfyUI server is not a file browser: node inputs that name server paths stay inside the server's
folders (input, output, temp, models, declared folder kinds) unless EMOVID_ALLOW_ANY_PATH=1; headless use accepts
any path; error messages never quote bytes of a file that is not a valid input.

The runtime is configured here as nodes/_comfy.py configures it inside ComfyUI (folder_paths-like hooks on real
temporary folders); tests/host/test_comfyui_integration.py checks the same policy over HTTP in a real server.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from emovid_core import runtime
from emovid_core.runtime import ALLOW_ANY_PATH_ENV, PathNotAllowed

PASSWD = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
ECHOES = ("root:x", "bin/bash", str(struct.unpack("<Q", PASSWD[:8])[0]))


def _no_echo(message: str) -> None:
    for bit in ECHOES:
        assert bit not in message, f"error message quotes the file's bytes ({bit!r}): {message}"


@pytest.fixture()
def outside(tmp_path):
    """Files outside every served folder, as /etc/passwd is: one per suffix a node input might be tricked into."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    for name in ("passwd.safetensors", "passwd.mp4", "passwd.csv"):
        (d / name).write_bytes(PASSWD)
    (d / "dataset").mkdir()
    (d / "dataset" / "emovid_metadata.csv").write_text("clip_id,path,type,emotion\n")
    return d


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """The runtime as inside a ComfyUI server: served folders plus one declared emovid_datasets folder."""
    base = tmp_path / "comfy"
    dirs = {name: base / name for name in ("input", "output", "temp", "models")}
    kinds = {"loras": [dirs["models"] / "loras"], "diffusion_models": [dirs["models"] / "diffusion_models"],
             "emovid_datasets": [dirs["models"] / "emovid_datasets", tmp_path / "declared_datasets"],
             "emovid_videos": [dirs["models"] / "emovid_videos"]}
    for d in [*dirs.values(), *(p for paths in kinds.values() for p in paths)]:
        d.mkdir(parents=True, exist_ok=True)

    def full_path(kind, name):  # folder_paths.get_full_path: the name is made relative, then looked up
        name = os.path.relpath(os.path.join("/", name), "/")
        for folder in kinds.get(kind, []):
            if (folder / name).is_file():
                return str(folder / name)
        return None

    monkeypatch.delenv(ALLOW_ANY_PATH_ENV, raising=False)
    roots = {**{k: [str(v)] for k, v in dirs.items()}, **{k: [str(p) for p in v] for k, v in kinds.items()}}
    with runtime.configured(input_dir=dirs["input"], output_dir=dirs["output"], allowed_roots_hook=lambda: roots,
                            folders_hook=lambda kind: [str(p) for p in kinds.get(kind, [])], full_path_hook=full_path):
        yield {**dirs, **{k: v[0] for k, v in kinds.items()}, "declared": tmp_path / "declared_datasets"}


# ------------------------------------------------------------------------------------------- the policy


def test_outside_paths_and_dotdot_are_refused_the_same_whether_they_exist_or_not(server, outside):
    messages = []
    for value in (outside / "passwd.mp4", outside / "no_such_file.mp4", "../../elsewhere/passwd.mp4",
                  "clips/../../../elsewhere/passwd.mp4"):
        with pytest.raises(PathNotAllowed) as err:
            runtime.resolve_user_path("emovid_videos", str(value), relative_to=[server["input"]], what="video")
        messages.append(str(err.value))
    assert all(ALLOW_ANY_PATH_ENV in m and "extra_model_paths.yaml" in m and "'emovid_videos'" in m for m in messages)
    # No oracle: an existing file and a missing one get the same answer (only the value differs).
    assert messages[0].replace(str(outside / "passwd.mp4"), "X") == messages[1].replace(str(outside / "no_such_file.mp4"), "X")


def test_paths_inside_served_and_declared_folders_resolve(server):
    (server["input"] / "clips").mkdir()
    (server["input"] / "clips" / "a.mp4").write_bytes(b"x")
    (server["output"] / "b.mp4").write_bytes(b"x")
    (server["declared"] / "mine").mkdir()
    got = runtime.resolve_user_path("emovid_videos", "clips/a.mp4", relative_to=[server["input"]])
    assert got == server["input"] / "clips" / "a.mp4"
    assert runtime.resolve_user_path("emovid_videos", str(server["output"] / "b.mp4")) == server["output"] / "b.mp4"
    # A folder declared for the kind (extra_model_paths.yaml) serves relative names and absolute paths.
    assert runtime.resolve_user_path("emovid_datasets", "mine") == server["declared"] / "mine"
    assert runtime.resolve_user_path("emovid_datasets", str(server["declared"] / "mine")) == server["declared"] / "mine"


def test_allow_any_path_env_and_headless_accept_any_path(server, outside, monkeypatch):
    target = outside / "passwd.mp4"
    monkeypatch.setenv(ALLOW_ANY_PATH_ENV, "1")
    assert runtime.resolve_user_path("emovid_videos", str(target)) == target
    monkeypatch.delenv(ALLOW_ANY_PATH_ENV)
    with runtime.configured(allowed_roots_hook=None):  # headless: the user typing the path owns the machine
        assert not runtime.paths_restricted()
        assert runtime.resolve_user_path("emovid_videos", str(target)) == target


def test_model_files_resolve_only_through_the_servers_folders(server, outside):
    (server["loras"] / "style.safetensors").write_bytes(b"x")
    assert runtime.resolve_model_file("loras", "style.safetensors") == server["loras"] / "style.safetensors"
    with pytest.raises(PathNotAllowed):
        runtime.resolve_model_file("loras", str(outside / "passwd.safetensors"))
    with pytest.raises(PathNotAllowed):
        runtime.resolve_model_file("loras", "../../../elsewhere/passwd.safetensors")
    with pytest.raises(FileNotFoundError, match="extra_model_paths.yaml"):
        runtime.resolve_model_file("loras", "missing.safetensors")
    with runtime.configured(allowed_roots_hook=None, full_path_hook=None):  # headless keeps absolute paths
        assert runtime.resolve_model_file("loras", str(outside / "passwd.safetensors")) == outside / "passwd.safetensors"


def test_headless_model_folders_follow_links_the_user_placed_but_not_dotdot(tmp_path, outside):
    """Models are often linked in from a shared disk: headless lookup follows them, as ComfyUI's folder_paths does."""
    loras = tmp_path / "models" / "loras"
    loras.mkdir(parents=True)
    (loras / "linked.safetensors").symlink_to(outside / "passwd.safetensors")
    (loras / "shared").symlink_to(outside, target_is_directory=True)
    with runtime.configured(allowed_roots_hook=None, full_path_hook=None, model_folders={"loras": [loras]}):
        assert runtime.resolve_model_file("loras", "linked.safetensors") == loras / "linked.safetensors"
        assert runtime.resolve_model_file("loras", "shared/passwd.safetensors") == loras / "shared/passwd.safetensors"
        with pytest.raises(FileNotFoundError, match="not found"):
            runtime.resolve_model_file("loras", "../../elsewhere/passwd.safetensors")


# ---------------------------------------------------------------------------------------------- the nodes


def test_load_video_refuses_outside_paths_at_validation(pack_nodes, server, outside):
    node = pack_nodes["EmoVidLoadVideo"]
    for kwargs in ({"video": "x.mp4", "path": str(outside / "passwd.mp4")}, {"video": str(outside / "passwd.mp4")},
                   {"video": "../elsewhere/passwd.mp4"}):
        msg = node.VALIDATE_INPUTS(**kwargs)
        assert isinstance(msg, str) and "outside the folders" in msg, msg
        assert node.IS_CHANGED(**kwargs) == "missing"


def test_load_video_lists_and_loads_videos_of_declared_folders(pack_nodes, server):
    import numpy as np

    from emovid_core import video_io

    video_io.write_video(np.zeros((3, 16, 16, 3), np.uint8), server["emovid_videos"] / "shared" / "v.mp4", 8)
    node = pack_nodes["EmoVidLoadVideo"]
    assert "shared/v.mp4" in node.INPUT_TYPES()["required"]["video"][0]
    assert node.VALIDATE_INPUTS(video="shared/v.mp4") is True
    frames, _fps, count, _info = node().load("shared/v.mp4", 0, 0, 1, 0.0, 0, 0, "center", False)
    assert count == 3 and tuple(frames.shape[1:3]) == (16, 16)


def test_dataset_node_refuses_outside_roots_and_tables_and_opens_declared_datasets(pack_nodes, server, outside, sample_root):
    import shutil

    node = pack_nodes["EmoVidDataset"]
    for kwargs in ({"root": str(outside / "dataset")}, {"root": "../elsewhere/dataset"},
                   {"root": "EmoVid", "metadata": str(outside / "passwd.csv")}):
        msg = node.VALIDATE_INPUTS(**kwargs)
        assert isinstance(msg, str) and "outside the folders" in msg, (kwargs, msg)
        with pytest.raises(PathNotAllowed):
            node().open(**kwargs)
    # A folder name in a declared emovid_datasets folder (extra_model_paths.yaml) is enough.
    shutil.copytree(sample_root, server["declared"] / "emovid_sample")
    assert node.VALIDATE_INPUTS(root="emovid_sample") is True
    ds, summary = node().open("emovid_sample")
    assert len(ds) > 0 and str(server["declared"]) in summary


def test_lora_stack_emotion_map_cannot_name_files_outside_loras(pack_nodes, server, outside):
    node = pack_nodes["EmoVidLoraStack"]
    with pytest.raises(PathNotAllowed) as err:
        node().apply(model=object(), strict=False, emotion="fear", emotion_map=f"fear={outside / 'passwd.safetensors'}")
    _no_echo(str(err.value))
    assert node.IS_CHANGED(emotion="fear", emotion_map=f"fear={outside / 'passwd.safetensors'}").endswith(":missing")


def test_wan_loader_file_and_folder_inputs_stay_inside_the_servers_folders(server, outside):
    from emovid_core.wan.loading import load_pipeline

    with pytest.raises(PathNotAllowed):
        load_pipeline("single files", transformer=str(outside / "passwd.safetensors"), vae="v.safetensors",
                      text_encoder="t.safetensors", tokenizer="tok")
    with pytest.raises(PathNotAllowed):
        load_pipeline("diffusers folder", folder=str(outside))


# ------------------------------------------------------------------------------------- no echoed bytes


def test_emotion_classifier_paths_stay_inside_the_servers_folders(server, outside):
    """The classifier loader (EmoVid Emotion Classifier, `emovid eval --classifier`) goes through the same policy."""
    from emovid_core.evaluation.classifiers import load_classifier, resolve_path

    (outside / "clip").mkdir()
    for value in (str(outside / "clip"), "../../elsewhere/clip"):
        with pytest.raises((PathNotAllowed, FileNotFoundError)) as err:
            resolve_path(value)
        _no_echo(str(err.value))
    with pytest.raises(PathNotAllowed):
        load_classifier(f"clip:{outside / 'clip'}")
    inside = server["models"] / "emovid_classifiers" / "clip"
    inside.mkdir(parents=True)
    with runtime.configured(folders_hook=lambda kind: [str(server["models"] / kind)]):
        assert resolve_path("clip") == inside.resolve()


def test_bad_files_are_diagnosed_without_quoting_their_bytes(tmp_path):
    from emovid_core.dataset import read_table
    from emovid_core.lora.formats import read_safetensors
    from emovid_core.safetensors_header import SafetensorsHeaderError, read_header

    fake = tmp_path / "passwd.safetensors"
    fake.write_bytes(PASSWD)
    with pytest.raises(SafetensorsHeaderError) as err:
        read_safetensors(fake)
    assert "not a safetensors file" in str(err.value)
    _no_echo(str(err.value))
    with pytest.raises(ValueError) as err:
        read_header(fake)
    _no_echo(str(err.value))
    # A plausible header length followed by text that is not JSON.
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", len(PASSWD)) + PASSWD)
    for reader in (read_safetensors, read_header):
        with pytest.raises(ValueError) as err:
            reader(garbage)
        _no_echo(str(err.value))
    # A text file taken for a table: its first line is not quoted as "columns".
    table = tmp_path / "passwd.csv"
    table.write_bytes(PASSWD)
    with pytest.raises(ValueError, match="lacks required column") as err:
        read_table(table)
    _no_echo(str(err.value))
    (tmp_path / "passwd").write_bytes(PASSWD)
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl") as err:
        read_table(Path(tmp_path / "passwd"))
    _no_echo(str(err.value))
