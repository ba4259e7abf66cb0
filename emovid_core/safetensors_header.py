"""The one safetensors header reader: the tensor table of a file without loading a weight, or one clear error.

Everything that reads a model or LoRA file by its header (variant detection, the scaled-fp8 refusal, the LoRA
diagnosis after ``safe_open`` refused a file) goes through :func:`read_header`, so a pickle, a truncated download or
an HTML error page gets the same :class:`SafetensorsHeaderError` wherever it is given.

An error message never quotes bytes of the file: a file that is not safetensors may be anything (a text file given
by mistake, a credentials file), so messages say what the file is not and what to do, with its name and size only.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pt2")
# safetensors itself refuses headers over 100 MB (its MAX_HEADER_SIZE); a larger length is not a header.
MAX_HEADER_BYTES = 100_000_000
METADATA = "__metadata__"


class SafetensorsHeaderError(ValueError):
    """A file is not a readable safetensors file (a pickle, truncated, garbage); the message says what to do."""


def refuse_pickle(path: str | Path) -> None:
    """Raise for a pickle suffix (.pt/.pth/.ckpt/.bin/...) before anything opens the file."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise SafetensorsHeaderError(
            f"{path.name}: {path.suffix} files are Python pickles, which can run arbitrary code when loaded; EmoVid "
            "loads only safetensors (.safetensors files). Use the .safetensors release of this file, or convert it "
            "once where you trust it (load it with torch.load(weights_only=True), save with safetensors.torch.save_file)")


def read_header(path: str | Path, metadata: bool = False) -> dict:
    """``{tensor name: {"dtype", "shape", "data_offsets"}}`` of a .safetensors file (``__metadata__`` too if asked).

    Reading only the JSON header keeps detection instant even for a 28 GB 14B file. Raises
    :class:`FileNotFoundError` for a missing file and :class:`SafetensorsHeaderError` for everything else.
    """
    path = Path(path).expanduser()
    refuse_pickle(path)
    if not path.is_file():
        raise FileNotFoundError(f"file {str(path)!r} not found")
    size = path.stat().st_size
    hint = ("it may be truncated, an HTML error page, a text file or a pickle renamed to .safetensors. Download it "
            "again or pick the .safetensors file")
    not_st = (f"{path.name} is not a safetensors file: its first 8 bytes are not the length of a header that fits "
              f"its {size}-byte file; {hint}")
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise SafetensorsHeaderError(f"{path.name}: only {size} bytes, too short to be a safetensors file "
                                         "(truncated download?)")
        (n,) = struct.unpack("<Q", head)
        # The number itself is never shown: for a text file it spells the file's first eight characters.
        if n < 2 or n > min(size - 8, MAX_HEADER_BYTES):
            raise SafetensorsHeaderError(not_st)
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # Neither exception's text is shown: both quote the offending bytes or their position in them.
        raise SafetensorsHeaderError(f"{path.name} is not a safetensors file: its header is not UTF-8 JSON; {hint}") from None
    if not isinstance(header, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("shape"), list) and _offsets(v) is not None
            for k, v in header.items() if k != METADATA):
        raise SafetensorsHeaderError(f"{path.name}: its safetensors header is not a table of tensors; the file is "
                                     "corrupt. Download it again")
    need = max((_offsets(v)[1] for k, v in header.items() if k != METADATA), default=0)
    if need > size - 8 - n:
        raise SafetensorsHeaderError(f"{path.name} is truncated: its tensors need more bytes than the {size}-byte file "
                                     "holds; download it again")
    if not metadata:
        header.pop(METADATA, None)
    return header


def _offsets(entry: dict) -> tuple[int, int] | None:
    off = entry.get("data_offsets")
    if (isinstance(off, list) and len(off) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in off)
            and 0 <= off[0] <= off[1]):
        return off[0], off[1]
    return None


def tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of a .safetensors file, from its header alone."""
    return {k: tuple(v["shape"]) for k, v in read_header(path).items()}
