"""A real two-node Ray cluster on this machine, with every packet on loopback (tests/cluster/, benchmarks/bench_cluster.py).

Ray rewrites 127.0.0.1 to the host's own address, so the cluster runs inside a network namespace where only ``lo`` is up
(``unshare -n``, then ``ip link set lo up``; needs root, as CI has): a head (``ray start --head``) and a second node
(``ray start --address``), each ``--num-cpus=1 --node-ip-address=127.0.0.1``, with token authentication
(``RAY_AUTH_MODE=token``), a temporary HOME (the token lands in ``HOME/.ray/auth_token``, never the real ``~/.ray``)
and a temporary ``--temp-dir``. Each ``ray start`` runs in a session of its own, so "the worker node dies" is a
SIGKILL of every process of its session, and stopping kills only our own sessions (never ``ray stop``, which would
stop every Ray process on the machine, other people's included).

Pytest collection never needs the namespace: :class:`ClusterClient` starts ``python -m tests.helpers.ray_cluster serve``
under ``unshare -n``; that server starts the cluster and runs the commands the tests send (JSON lines on its stdin), so
every driver runs inside the namespace too. It stops the cluster when asked or when its stdin closes (a crashed test
run leaves no Ray behind).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORT = 6390


def problem() -> str | None:
    """Why a local cluster cannot start on this machine (None: it can)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'comfyui-emovid[cluster]')"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare or ip (util-linux, iproute2) missing: cannot make a loopback-only network namespace"
    try:
        r = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -n failed: {exc}"
    if r.returncode:
        return f"cannot create a network namespace (unshare -n needs root): {(r.stderr or r.stdout).strip()}"
    return None


def netns_command(argv: list[str]) -> list[str]:
    """``argv`` run inside a fresh network namespace with only ``lo`` up."""
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    return ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {quoted}"]


def _session_pids(sid: int) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and int(d) != os.getpid():
            pids.append(int(d))
    return pids


def _kill_session(sid: int, sig: int = signal.SIGKILL) -> list[int]:
    pids = _session_pids(sid)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


class LocalRayCluster:
    """Head + one worker node; use inside the namespace (see the module doc)."""

    def __init__(self, base: str | Path | None = None, port: int = PORT, cpus: int = 1) -> None:
        # Short: Ray's socket paths under --temp-dir must stay within AF_UNIX's 107 bytes.
        self.base = Path(base or tempfile.mkdtemp(prefix="emovid-ray-", dir="/tmp" if os.path.isdir("/tmp") else None))
        self.port, self.cpus = port, cpus
        self.address = f"127.0.0.1:{port}"
        self.home = self.base / "home"
        self.temp = self.base / "ray"
        self.env = {**os.environ, "HOME": str(self.home), "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
                    "RAY_ADDRESS": self.address}
        self.sessions: dict[str, int] = {}
        self._ray = str(Path(sys.executable).parent / "ray")

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.base / f"{name}.log", "w")
        p = subprocess.Popen([self._ray, "start", *args, f"--num-cpus={self.cpus}", "--node-ip-address=127.0.0.1",
                              "--disable-usage-stats"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.sessions[name] = p.pid
        if p.wait(timeout=120):
            raise RuntimeError(f"ray start ({name}) failed:\n{(self.base / f'{name}.log').read_text()[-3000:]}")

    def start(self) -> LocalRayCluster:
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run([self._ray, "get-auth-token", "--generate"], env=self.env, check=True, capture_output=True, timeout=60)
        self._start("head", ["--head", f"--port={self.port}", f"--temp-dir={self.temp}", "--include-dashboard=false"])
        self._start("worker", [f"--address={self.address}"])
        return self

    def kill_worker_node(self) -> list[int]:
        """SIGKILL every process of the worker node (its raylet, object store, agents, workers): a node that dies."""
        return _kill_session(self.sessions["worker"])

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = [pid for sid in self.sessions.values() for pid in _kill_session(sid, sig)]
            t_end = time.monotonic() + 3
            while left and time.monotonic() < t_end and any(_session_pids(s) for s in self.sessions.values()):
                time.sleep(0.1)
        shutil.rmtree(self.base, ignore_errors=True)


def serve() -> int:
    """Inside the namespace: start the cluster, answer requests on stdin (one JSON object a line), stop on EOF/stop."""
    cluster = LocalRayCluster()
    out = sys.stdout
    try:
        cluster.start()
        out.write(json.dumps({"ready": True, "address": cluster.address, "home": str(cluster.home)}) + "\n")
        out.flush()
        for line in sys.stdin:
            req = json.loads(line)
            if req["op"] == "stop":
                break
            env = {**cluster.env, **req.get("env", {})}
            p = subprocess.Popen(req["argv"], env=env, cwd=req.get("cwd"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            killed: dict = {}
            if req["op"] == "run_killing_worker":  # kill the worker node once `watch` has `lines` lines (mid-run)
                def killer(p=p, killed=killed, path=Path(req["watch"]), want=int(req["lines"])):
                    while p.poll() is None:
                        n = path.read_text().count("\n") if path.is_file() else 0
                        if n >= want:
                            killed.update(lines_then=n, pids=len(cluster.kill_worker_node()))
                            return
                        time.sleep(0.01)

                t = threading.Thread(target=killer, daemon=True)
                t.start()
            try:
                stdout, stderr = p.communicate(timeout=req.get("timeout", 300))
            except subprocess.TimeoutExpired:
                p.kill()
                stdout, stderr = p.communicate()
            out.write(json.dumps({"rc": p.returncode, "stdout": stdout, "stderr": stderr, "killed": killed}) + "\n")
            out.flush()
    finally:
        cluster.stop()
    return 0


class ClusterClient:
    """From pytest (outside the namespace): a running cluster and a way to run commands next to it."""

    def __init__(self, env: dict | None = None) -> None:
        """Starts the cluster in the background; the first request (or :meth:`wait`) waits until it is up."""
        self.proc = subprocess.Popen(netns_command([sys.executable, "-m", "tests.helpers.ray_cluster", "serve"]),
                                     cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._address = None

    @property
    def address(self) -> str:
        return self.wait()

    def wait(self) -> str:
        if self._address:
            return self._address
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            raise RuntimeError(f"the local Ray cluster did not start (exit {self.proc.returncode}); see stderr")
        info = json.loads(line)
        self._address, self.home = info["address"], info["home"]
        return self._address

    def _ask(self, req: dict) -> dict:
        self.wait()
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def run(self, argv: list[str], env: dict | None = None, timeout: float = 300, cwd: str | Path | None = None) -> dict:
        return self._ask({"op": "run", "argv": argv, "env": env or {}, "timeout": timeout, "cwd": str(cwd) if cwd else None})

    def run_killing_worker(self, argv: list[str], watch: str | Path, lines: int, env: dict | None = None,
                           timeout: float = 300) -> dict:
        return self._ask({"op": "run_killing_worker", "argv": argv, "watch": str(watch), "lines": lines, "env": env or {},
                          "timeout": timeout})

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    sys.exit(serve())
