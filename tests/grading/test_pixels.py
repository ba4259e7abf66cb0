"""The per-pixel layer: the fused numba kernels, the OpenCV fallback and the torch path agree."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from emovid_core import attributes as A
from emovid_core import pixels
from tests.attributes.test_attributes import structured_clip
from tests.grading.utils import numba_or_skip


def stats_with(backend, x, monkeypatch, **kw):
    monkeypatch.setenv(pixels.ENV, backend)
    return A.frame_stats(x, progress=False, **kw)


def test_fused_and_fallback_sums_agree(monkeypatch):
    numba_or_skip()
    x = structured_clip(n=5, h=40, w=300)
    a, b = stats_with("numba", x, monkeypatch), stats_with("opencv", x, monkeypatch)
    px = a.pixels
    for name in ("sum_v", "sum_s", "sum_sin", "sum_cos"):
        np.testing.assert_allclose(getattr(a, name) / px, getattr(b, name) / px, atol=2e-6, err_msg=name)
    np.testing.assert_allclose(a.hasler, b.hasler, rtol=1e-5)
    # uint8, float64 and RGBA inputs take the same kernels.
    u8 = (x.numpy() * 255).astype(np.uint8)
    ua, ub = stats_with("numba", list(u8), monkeypatch), stats_with("opencv", list(u8), monkeypatch)
    np.testing.assert_allclose(ua.sum_v, ub.sum_v, rtol=1e-6)
    assert A.clip_attributes(ua, 1).hue == A.clip_attributes(ub, 1).hue


def test_fused_path_reports_bad_values_like_the_fallback(monkeypatch):
    numba_or_skip()
    x = torch.rand(3, 5, 7, 4)
    x[2, 1, 1, 3] = float("nan")  # in the alpha channel: still refused
    for backend in pixels.BACKENDS:
        with pytest.raises(ValueError, match="frame 2 contains 1 NaN"):
            stats_with(backend, x, monkeypatch)


def test_forced_numba_without_numba_names_the_extra():
    """In a child whose ``import numba`` fails (as without the extra): auto falls back, forcing it names the extra."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['numba'] = None\n"
            "import os\n"
            "from emovid_core import pixels\n"
            "assert not pixels.numba_available() and pixels.backend() == 'opencv'\n"
            f"os.environ[{pixels.ENV!r}] = 'numba'\n"
            "try:\n    pixels.backend()\nexcept ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, pixels.ENV: ""})
    assert out.returncode == 0, out.stderr
    assert "comfyui-emovid[fast]" in out.stdout


def test_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setenv(pixels.ENV, "cuda")
    with pytest.raises(ValueError, match="EMOVID_PIXELS='cuda'"):
        pixels.backend()


@pytest.mark.parametrize("backend", pixels.BACKENDS)
def test_grade_frame_matches_opencv_round_trip(backend, monkeypatch):
    if backend == "numba":
        numba_or_skip()
    import cv2

    monkeypatch.setenv(pixels.ENV, backend)
    x = structured_clip(n=1, h=30, w=50)[0].numpy()
    out = np.empty_like(x)
    sums = pixels.grade_frame(x, 0.6, 1.7, -25.0, None, out)
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    hsv[..., 2] **= 0.6
    hsv[..., 1] **= 1.7
    hsv[..., 0] = (hsv[..., 0] - 25.0) % 360
    want = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    np.testing.assert_allclose(out, want, atol=2e-5)
    got = A.frame_stats(out, progress=False, hasler=False)
    np.testing.assert_allclose(sums, [got.sum_v[0], got.sum_s[0], got.sum_sin[0], got.sum_cos[0]], rtol=1e-5, atol=1e-3)


def test_torch_path_agrees_with_cpu(monkeypatch):
    # The torch path serves tensors on a GPU; its functions take any tensor, so the CPU checks the same code.
    from emovid_core.pixels import _torch

    x = structured_clip(n=4, h=20, w=30)
    rows = _torch.frame_rows(x, True)
    cpu = A.frame_stats(x, progress=False)
    np.testing.assert_allclose([r[0] for r in rows], cpu.sum_v, rtol=1e-6)
    np.testing.assert_allclose([r[2] for r in rows], cpu.sum_sin, atol=2e-3)
    np.testing.assert_allclose([r[4] for r in rows], cpu.hasler, rtol=1e-5)
    out = torch.empty(4, 20, 30, 3)
    sums = _torch.grade(x, np.full(4, 0.7), np.full(4, 1.3), np.full(4, 12.0), None, out)
    cpu_out = np.empty((20, 30, 3), np.float32)
    cpu_sums = pixels.grade_frame(x[1].numpy(), 0.7, 1.3, 12.0, None, cpu_out)
    np.testing.assert_allclose(out[1].numpy(), cpu_out, atol=2e-5)
    np.testing.assert_allclose(sums[1], cpu_sums, rtol=1e-5, atol=1e-3)
