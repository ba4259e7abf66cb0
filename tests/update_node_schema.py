"""Regenerate the node-contract snapshot the tests compare against (tests/data/node_schema.json).

Run on purpose, from the repository root, after adding a node (never to paper over a change to a released one):
    .venv/bin/python -m tests.update_node_schema
The library only computes the snapshot (:func:`emovid_core.host.schema.snapshot`); this test-side script owns the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SNAPSHOT_PATH = Path(__file__).resolve().parent / "data" / "node_schema.json"


def write_snapshot(path: Path = SNAPSHOT_PATH) -> Path:
    from emovid_core.atomic import write_text
    from emovid_core.host.schema import snapshot

    return write_text(path, json.dumps(snapshot(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(SNAPSHOT_PATH.parent.parent))
    print(f"wrote {write_snapshot()}")
