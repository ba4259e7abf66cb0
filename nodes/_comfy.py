"""The one place that touches ComfyUI: when the pack runs inside a server, route emovid_core's
progress, interruption, folders and model-file lookups to ComfyUI's own services.

Headless (tests, ``emovid run``), none of these imports exist and emovid_core keeps its defaults.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from emovid_core import runtime
from emovid_core.evaluation.classifiers import MODEL_KIND as CLASSIFIER_KIND

IN_COMFYUI = importlib.util.find_spec("folder_paths") is not None and importlib.util.find_spec("comfy") is not None


class _ComfyProgress:
    def __init__(self, total: int, desc: str) -> None:
        import comfy.utils

        self._bar = comfy.utils.ProgressBar(max(int(total), 1))

    def update(self, n: int = 1) -> None:
        import comfy.model_management

        comfy.model_management.throw_exception_if_processing_interrupted()
        self._bar.update(n)

    def close(self) -> None:
        pass


def _interrupt_check() -> None:
    import comfy.model_management

    comfy.model_management.throw_exception_if_processing_interrupted()


# Folder kinds the pack adds to ComfyUI's, so users declare their own folders the ComfyUI way
# (extra_model_paths.yaml: `emovid_datasets: /data/emovid`) and the nodes list what is in them.
FOLDER_KINDS = {"emovid_datasets": "EmoVid dataset roots", "emovid_videos": "videos for EmoVid Load Video",
                CLASSIFIER_KIND: "emotion classifiers for EmoVid Emotion Classifier"}
# Kinds whose folders node inputs must never read: code and settings, not media or models.
_NOT_SERVED = {"custom_nodes", "configs"}


def _install() -> None:

    import folder_paths

    for kind in FOLDER_KINDS:
        # Appends the default after any folder extra_model_paths.yaml declared (it is read before packs load).
        folder_paths.add_model_folder_path(kind, os.path.join(folder_paths.models_dir, kind))

    def allowed_roots() -> dict[str, list[str]]:
        roots = {
            "input": [folder_paths.get_input_directory()],
            "output": [folder_paths.get_output_directory()],
            "temp": [folder_paths.get_temp_directory()],
            "models": [folder_paths.models_dir],
        }
        for kind, (paths, _exts) in folder_paths.folder_names_and_paths.items():
            if kind not in _NOT_SERVED:
                roots[kind] = list(paths)
        return roots

    def list_files(kind: str) -> list[str]:
        try:
            return folder_paths.get_filename_list(kind)
        except KeyError:
            return []

    def full_path(kind: str, name: str) -> str | None:
        try:
            return folder_paths.get_full_path(kind, name)
        except KeyError:
            return None

    def folders(kind: str) -> list[str]:
        try:
            return list(folder_paths.get_folder_paths(kind))
        except KeyError:
            return []

    runtime.RUNTIME.folders_hook = folders
    runtime.RUNTIME.progress_factory = _ComfyProgress
    runtime.RUNTIME.interrupt_check = _interrupt_check
    runtime.RUNTIME.output_dir = Path(folder_paths.get_output_directory())
    runtime.RUNTIME.input_dir = Path(folder_paths.get_input_directory())
    runtime.RUNTIME.list_files_hook = list_files
    runtime.RUNTIME.full_path_hook = full_path
    runtime.RUNTIME.allowed_roots_hook = allowed_roots
    runtime.RUNTIME.in_comfyui = True


if IN_COMFYUI:
    _install()
