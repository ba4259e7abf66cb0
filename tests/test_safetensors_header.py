"""The one safetensors header reader: tables of real files, and refusals that never quote the file's bytes."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from emovid_core.safetensors_header import MAX_HEADER_BYTES, SafetensorsHeaderError, read_header, tensor_shapes

# What a text file given by mistake looks like (the layout of /etc/passwd): its first eight bytes, read as the
# header length, are the number 0x303a783a746f6f72 -- which spells "root:x:0" once printed as bytes.
PASSWD = (b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
          b"bin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin\n")


def _quoted_runs(message: str, data: bytes, run: int = 4) -> list[str]:
    text = data.decode("latin-1")
    return sorted({text[i:i + run] for i in range(len(text) - run + 1) if text[i:i + run] in message})


def test_reads_the_tensor_table_and_metadata_of_a_real_file(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"a.weight": torch.zeros(3, 4), "b": torch.ones(2, dtype=torch.float16)}, str(path), metadata={"k": "v"})
    header = read_header(path)
    assert set(header) == {"a.weight", "b"} and header["a.weight"]["shape"] == [3, 4] and header["b"]["dtype"] == "F16"
    assert read_header(path, metadata=True)["__metadata__"] == {"k": "v"}
    assert tensor_shapes(path) == {"a.weight": (3, 4), "b": (2,)}


@pytest.mark.parametrize("content", [PASSWD, b"<!DOCTYPE html><html>404 Not Found</html>" * 3,
                                     struct.pack("<Q", 40) + b"\xff\xfe{zq9 jx, secret=hunter2, pin=4711}" + b"!" * 8,
                                     struct.pack("<Q", 24) + b'{"x": "secret-value-42"}'])
def test_a_file_that_is_not_safetensors_is_refused_without_quoting_its_bytes(tmp_path, content):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(SafetensorsHeaderError) as err:
        read_header(path)
    message = str(err.value)
    assert "model.safetensors" in message and ("download" in message.lower() or "pick" in message)
    assert _quoted_runs(message, content) == [], message
    (n,) = struct.unpack("<Q", content[:8])
    assert str(n) not in message and f"{n:x}" not in message.lower()


def test_the_passwd_like_file_is_named_not_quoted(tmp_path):
    path = tmp_path / "wan.safetensors"
    path.write_bytes(PASSWD)
    with pytest.raises(SafetensorsHeaderError, match="not a safetensors file") as err:
        read_header(path)
    assert "root" not in str(err.value) and "x:0" not in str(err.value)


def test_pickles_short_truncated_and_oversized_files(tmp_path):
    for suffix in (".pt", ".PTH", ".ckpt", ".bin"):
        pickled = tmp_path / f"model{suffix}"
        pickled.write_bytes(b"\x80\x04junk")
        with pytest.raises(SafetensorsHeaderError, match="pickles.*only safetensors"):
            read_header(pickled)
    with pytest.raises(FileNotFoundError):
        read_header(tmp_path / "missing.safetensors")
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    with pytest.raises(SafetensorsHeaderError, match="too short"):
        read_header(short)
    good = tmp_path / "good.safetensors"
    save_file({"w": torch.zeros(64, 64)}, str(good))
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(SafetensorsHeaderError, match="truncated"):
        read_header(trunc)
    # A length over the limit is refused before anything that large is read.
    huge = tmp_path / "huge.safetensors"
    with huge.open("wb") as fh:
        fh.write(struct.pack("<Q", MAX_HEADER_BYTES + 1))
        fh.truncate(MAX_HEADER_BYTES + 64)  # sparse: the size fits, the limit does not
    with pytest.raises(SafetensorsHeaderError, match="not a safetensors file"):
        read_header(huge)
    body = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": "nonsense"}}).encode()
    odd = tmp_path / "odd.safetensors"
    odd.write_bytes(struct.pack("<Q", len(body)) + body + b"\0" * 4)
    with pytest.raises(SafetensorsHeaderError, match="not a table of tensors"):
        read_header(odd)
