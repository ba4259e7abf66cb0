"""The one place that touches ComfyUI: when the pack runs inside a server, route emovid_core's
progress, interruption, folders and model-file lookups to ComfyUI's own services.

Headless (tests, ``emovid run``), none of these imports exist and emovid_core keeps its defaults.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from emovid_core import runtime

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


def _install() -> None:
    import os

    import folder_paths

    from emovid_core.evaluation.classifiers import MODEL_KIND

    # The pack's own model kind (emotion classifiers): models/emovid_classifiers, plus any extra_model_paths.yaml entries.
    if MODEL_KIND not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(MODEL_KIND, os.path.join(folder_paths.models_dir, MODEL_KIND))

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
    runtime.RUNTIME.in_comfyui = True


if IN_COMFYUI:
    _install()
