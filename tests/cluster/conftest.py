"""The ``ray`` engine on a real local Ray cluster (emovid_core.ray_engine, ``--engine ray``), and its refusal without Ray.

One cluster per module (``cluster``): a head and a second worker node, one CPU each, on 127.0.0.1 inside a network
namespace with only ``lo`` up, token authentication, a temporary HOME and ``--temp-dir`` (tests/helpers/ray_cluster.py).
Every driver (``emovid ... --engine ray``) runs inside that namespace too, sent there by the fixture. Skipped with the
reason where Ray is not installed or the machine cannot make a network namespace (``unshare -n`` needs root).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def cluster():
    """The running cluster (started in the background: the first request waits for it)."""
    from tests.helpers.ray_cluster import ClusterClient, problem

    why = problem()
    if why:
        pytest.skip(f"no local Ray cluster: {why}")
    client = ClusterClient()
    try:
        yield client
    finally:
        client.close()
