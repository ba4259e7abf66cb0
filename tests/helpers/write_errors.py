"""Real write errors for tests: run ``emovid`` in a child process whose files may not grow past a size limit.

``RLIMIT_FSIZE`` makes the kernel fail a write past the limit with EFBIG ("File too large"), the way a full disk
fails it with ENOSPC: the pack's own code meets a real failed ``write()``, nothing is mocked. SIGXFSZ is ignored so
the write returns the error instead of killing the process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_LAUNCH = (
    "import resource, runpy, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "limit = int(sys.argv.pop(1))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "sys.argv[0] = 'emovid'\n"
    "runpy.run_module('emovid_core', run_name='__main__')\n"
)


def run_emovid_with_file_size_limit(argv: list[str], limit: int, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "EMOVID_NO_PROGRESS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", _LAUNCH, str(int(limit)), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
