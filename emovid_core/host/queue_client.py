"""Queue workflows on a running ComfyUI server and collect what they produce (``emovid queue``).

Protocol (ComfyUI 0.3.64 ``server.py``): ``POST /prompt`` with a ``client_id``; progress arrives on one websocket
``/ws?clientId=...`` opened *before* queueing so no event is missed; ``GET /history/{id}`` is the source of truth
for the result and the fallback when the websocket is unavailable; files come back through ``GET /view``; inputs
go up through ``POST /upload/image``. Only the standard library plus ``websocket-client`` (optional) are used.

    client = ComfyClient("http://127.0.0.1:8188")
    job = client.run(api_or_ui_workflow, out_dir="out", timeout=600)
    print(job.files)
"""

from __future__ import annotations

import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

DEFAULT_SERVER = "http://127.0.0.1:8188"
# Retrying a refused connection: ComfyUI takes ~10 s to start, so the default waits out a fresh start.
RETRYABLE = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)


class QueueError(RuntimeError):
    """Base class: anything that makes a queued job fail. ``exit_code`` is what ``emovid queue`` returns."""

    exit_code = 1


class ServerUnreachable(QueueError):
    exit_code = 6


class PromptValidationError(QueueError):
    exit_code = 3

    def __init__(self, message: str, error: dict, node_errors: dict):
        self.error, self.node_errors = error, node_errors
        super().__init__(message)


class ExecutionFailed(QueueError):
    exit_code = 4

    def __init__(self, message: str, details: dict):
        self.details = details
        self.node_id = details.get("node_id")
        self.node_type = details.get("node_type")
        self.exception_type = details.get("exception_type")
        self.exception_message = details.get("exception_message")
        super().__init__(message)


class PromptTimeout(QueueError):
    exit_code = 5


@dataclass
class JobResult:
    prompt_id: str
    outputs: dict[str, dict]  # node id -> ui dict, as in /history
    files: list[Path] = field(default_factory=list)
    status: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached_nodes: list[str] = field(default_factory=list)


def normalize_server(url: str | None) -> str:
    url = (url or os.environ.get("COMFYUI_URL") or DEFAULT_SERVER).strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"server {url!r} is not an http(s) URL such as {DEFAULT_SERVER}")
    return url


def format_node_errors(body: dict, prompt: dict | None = None) -> str:
    """ComfyUI's HTTP 400 body as readable lines: the error, then node, input and reason for each problem."""
    err = body.get("error") or {}
    if isinstance(err, str):
        err = {"message": err}
    lines = [f"ComfyUI rejected the prompt: {err.get('message', 'validation failed')}"
             + (f" ({err['details']})" if err.get("details") else "")]
    for nid, entry in sorted((body.get("node_errors") or {}).items(), key=lambda kv: str(kv[0])):
        ctype = entry.get("class_type") or ((prompt or {}).get(str(nid)) or {}).get("class_type", "?")
        title = (((prompt or {}).get(str(nid)) or {}).get("_meta") or {}).get("title")
        where = f"node {nid} ({ctype}{', ' + repr(title) if title and title != ctype else ''})"
        for e in entry.get("errors") or []:
            extra = e.get("extra_info") or {}
            inp = extra.get("input_name")
            reason = e.get("message") or e.get("type")
            if e.get("details") and e.get("details") != inp:
                reason += f": {e['details']}"
            recv = f" (received {extra['received_value']!r})" if "received_value" in extra else ""
            lines.append(f"  - {where}" + (f", input {inp!r}" if inp else "") + f": {reason}{recv} [{e.get('type')}]")
    return "\n".join(lines)


def format_execution_error(d: dict) -> str:
    lines = [f"node {d.get('node_id')} ({d.get('node_type')}) failed: {d.get('exception_type')}: "
             f"{str(d.get('exception_message', '')).strip()}"]
    tb = d.get("traceback")
    if tb:
        tail = "".join(tb if isinstance(tb, list) else [str(tb)]).rstrip().splitlines()[-6:]
        lines += ["  " + t for t in tail]
    return "\n".join(lines)


class ConsoleProgress:
    """Prints node names as they run and a step bar for nodes that report progress."""

    def __init__(self, prompt: dict, stream=None):
        self.prompt, self.stream = prompt, stream or sys.stderr
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_pct: dict[str, int] = {}

    def _name(self, nid: Any) -> str:
        node = self.prompt.get(str(nid)) or {}
        title = (node.get("_meta") or {}).get("title")
        return f"[{nid}] {title or node.get('class_type', '?')}"

    def __call__(self, event: str, data: dict) -> None:
        w = self.stream.write
        if event == "executing" and data.get("node") is not None:
            w(f"{self._name(data['node'])}\n")
        elif event == "execution_cached" and data.get("nodes"):
            w(f"cached: {', '.join(str(n) for n in data['nodes'])}\n")
        elif event == "progress":
            v, m = int(data.get("value", 0)), max(int(data.get("max", 1)), 1)
            bar = "#" * (20 * v // m) + "-" * (20 - 20 * v // m)
            line = f"    {bar} {v}/{m}"
            if self._tty:
                w("\r" + line + ("\n" if v >= m else ""))
            else:  # no carriage returns in logs: one line per quarter
                q = 4 * v // m
                key = str(data.get("node"))
                if q > self._last_pct.get(key, -1):
                    self._last_pct[key] = q
                    w(line + "\n")
        elif event == "execution_error":
            w(format_execution_error(data) + "\n")
        self.stream.flush()


def _safe_rel(subfolder: str, filename: str) -> Path:
    """A server-supplied path made safe to join under our output folder (no absolute parts, no '..')."""
    parts = [p for p in Path(str(subfolder or "")).parts if p not in ("", ".", "..", "/", "\\")]
    name = Path(str(filename)).name
    if not name or name in (".", ".."):
        raise QueueError(f"server returned an unusable output file name {filename!r}")
    return Path(*parts, name) if parts else Path(name)


class ComfyClient:
    """A small client for one ComfyUI server. Every method raises :class:`QueueError` subclasses on failure."""

    def __init__(self, server: str | None = None, client_id: str | None = None, *, connect_retries: int = 6,
                 backoff: float = 0.5, request_timeout: float = 60.0, use_websocket: bool = True,
                 log: Callable[[str], None] | None = None):
        self.server = normalize_server(server)
        self.client_id = client_id or uuid.uuid4().hex
        self.connect_retries = max(1, int(connect_retries))
        self.backoff = float(backoff)
        self.request_timeout = float(request_timeout)
        self.use_websocket = use_websocket
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    # ---------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                 timeout: float | None = None) -> tuple[int, bytes]:
        url = self.server + path
        delay = self.backoff
        last: BaseException | None = None
        for attempt in range(1, self.connect_retries + 1):
            req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=timeout or self.request_timeout) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, RETRYABLE):
                    raise ServerUnreachable(f"cannot reach ComfyUI at {self.server}: {exc.reason}") from None
                last = exc.reason
            except RETRYABLE as exc:
                last = exc
            except TimeoutError:
                raise QueueError(f"{method} {path} on {self.server} got no answer within "
                                 f"{timeout or self.request_timeout:g} s; the server is busy or stuck") from None
            if attempt < self.connect_retries:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise ServerUnreachable(
            f"cannot connect to ComfyUI at {self.server} after {self.connect_retries} attempts ({last}); "
            "is the server running? Start it with `python main.py --listen 127.0.0.1 --port 8188` "
            "or pass the right address with --server URL"
        )

    def _json(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, raw = self._request(method, path, body, headers)
        try:
            data = json.loads(raw.decode() or "null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = raw.decode(errors="replace")
        return status, data

    def _ok_json(self, method: str, path: str, payload: Any = None) -> Any:
        status, data = self._json(method, path, payload)
        if status != 200:
            raise QueueError(f"{method} {path} returned HTTP {status}: {str(data)[:500]}")
        return data

    def system_stats(self) -> dict:
        return self._ok_json("GET", "/system_stats")

    def object_info(self) -> dict:
        return self._ok_json("GET", "/object_info")

    def history(self, prompt_id: str) -> dict | None:
        data = self._ok_json("GET", f"/history/{urllib.parse.quote(prompt_id)}")
        return (data or {}).get(prompt_id)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop ``prompt_id`` if it is running and drop it from the queue if it is still waiting."""
        self._json("POST", "/interrupt", {"prompt_id": prompt_id} if prompt_id else {})
        if prompt_id:
            self._json("POST", "/queue", {"delete": [prompt_id]})

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        q = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder or "", "type": type or "output"})
        status, raw = self._request("GET", f"/view?{q}")
        if status != 200:
            raise QueueError(f"downloading {filename!r} (subfolder {subfolder!r}, type {type!r}) failed: HTTP {status}")
        return raw

    def upload(self, path: str | Path, subfolder: str = "", type: str = "input", overwrite: bool = True) -> str:
        """Upload a file into the server's input folder; returns the name to put in a LoadImage/LoadVideo input."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--upload {str(path)!r}: no such file")
        boundary = uuid.uuid4().hex
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        parts = []
        for key, val in (("subfolder", subfolder), ("type", type), ("overwrite", "true" if overwrite else "false")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{val}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        status, raw = self._request("POST", "/upload/image", b"".join(parts),
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 200:
            raise QueueError(f"uploading {str(path)!r} failed: HTTP {status}: {raw[:300].decode(errors='replace')}")
        info = json.loads(raw.decode())
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]

    def queue_prompt(self, prompt: dict, extra_data: dict | None = None, prompt_id: str | None = None,
                     allow_partial: bool = False) -> str:
        payload: dict[str, Any] = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            payload["extra_data"] = extra_data
        if prompt_id:
            payload["prompt_id"] = prompt_id
        status, data = self._json("POST", "/prompt", payload)
        if status == 400 or (status == 200 and isinstance(data, dict) and data.get("error")):
            data = data if isinstance(data, dict) else {"error": {"message": str(data)}}
            err = data.get("error") if isinstance(data.get("error"), dict) else {"message": str(data.get("error"))}
            raise PromptValidationError(format_node_errors(data, prompt), err, data.get("node_errors") or {})
        if status != 200 or not isinstance(data, dict) or "prompt_id" not in data:
            raise QueueError(f"POST /prompt returned HTTP {status}: {str(data)[:500]}")
        if data.get("node_errors"):
            # Some outputs failed validation and ComfyUI would quietly run only the rest. Unless the caller
            # accepts that, take the prompt back and fail like a full rejection.
            body = {"error": {"message": "some outputs failed validation"}, "node_errors": data["node_errors"]}
            if not allow_partial:
                self.interrupt(data["prompt_id"])
                raise PromptValidationError(format_node_errors(body, prompt) + "\n(the prompt was withdrawn; "
                                            "--allow-partial runs the outputs that passed)", body["error"],
                                            data["node_errors"])
            self.log(format_node_errors({**body, "error": {"message": "these outputs will be skipped"}}, prompt))
        return data["prompt_id"]

    # ---------------------------------------------------------------- waiting
    def _open_ws(self):
        if not self.use_websocket:
            return None
        try:
            import websocket  # websocket-client
        except ImportError:
            self.log("websocket-client is not installed: following progress by polling /history")
            return None
        url = self.server.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        try:
            ws = websocket.create_connection(f"{url}/ws?clientId={urllib.parse.quote(self.client_id)}", timeout=10)
            ws.settimeout(0.5)
            return ws
        except Exception as exc:  # any websocket failure only costs us live progress, never the job
            self.log(f"websocket unavailable ({type(exc).__name__}: {exc}); following progress by polling /history")
            return None

    def wait(self, prompt_id: str, timeout: float = 600.0, on_event: Callable[[str, dict], None] | None = None,
             ws=None, poll_interval: float = 1.0) -> tuple[dict, list[str]]:
        """Wait for ``prompt_id`` to finish; returns (history entry, cached node ids).

        Progress comes from the websocket when there is one; /history decides the result (and is polled on its
        own when there is no websocket, or as a slow safety net when events go missing).
        Raises ExecutionFailed (with the node and exception), PromptTimeout (after interrupting the prompt).
        """
        deadline = time.monotonic() + float(timeout)
        cached: list[str] = []
        state = {"finished": False, "ws": ws}

        def pump() -> bool:
            """Handle one websocket message; False when none arrived within the socket timeout."""
            try:
                msg = state["ws"].recv()
            except Exception as exc:  # timeouts are normal; anything else means the socket is gone
                if type(exc).__name__ not in ("WebSocketTimeoutException", "TimeoutError", "timeout"):
                    self.log(f"websocket closed ({type(exc).__name__}); following progress by polling /history")
                    state["ws"] = None
                return False
            if not isinstance(msg, str) or not msg:
                return True  # binary frames are preview images
            try:
                ev = json.loads(msg)
            except json.JSONDecodeError:
                return True
            etype, data = ev.get("type"), ev.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                return True
            if etype == "execution_cached":
                cached.extend(str(n) for n in data.get("nodes") or [])
            if on_event and etype in ("executing", "progress", "execution_cached", "executed",
                                      "execution_error", "execution_start"):
                on_event(etype, data)
            if data.get("prompt_id") == prompt_id and (
                etype in ("execution_success", "execution_error", "execution_interrupted")
                or (etype == "executing" and data.get("node") is None)
            ):
                state["finished"] = True
            return True

        next_poll = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                self.interrupt(prompt_id)
                raise PromptTimeout(f"prompt {prompt_id} did not finish within {timeout:g} s; it was interrupted "
                                    "(raise --timeout for long jobs)")
            live = state["ws"] is not None and not state["finished"]
            if live:
                pump()
            elif not state["finished"]:
                time.sleep(min(poll_interval, max(0.0, deadline - now), max(0.0, next_poll - now)))
            if state["finished"] or time.monotonic() >= next_poll:
                entry = self.history(prompt_id)
                if entry is not None:  # ComfyUI writes the history entry only once the prompt is done
                    while state["ws"] is not None and not state["finished"] and pump():
                        pass  # show the events that were still in flight
                    return self._check_entry(prompt_id, entry), cached
                if state["finished"]:
                    time.sleep(0.05)  # the success event can arrive a moment before the history entry
                live = state["ws"] is not None and not state["finished"]
                next_poll = time.monotonic() + (5 * poll_interval if live else poll_interval)

    def _check_entry(self, prompt_id: str, entry: dict) -> dict:
        status = entry.get("status") or {}
        if status.get("status_str") == "error" or status.get("completed") is False:
            for name, data in status.get("messages") or []:
                if name == "execution_error":
                    raise ExecutionFailed(format_execution_error(data), data)
                if name == "execution_interrupted":
                    raise ExecutionFailed(f"prompt {prompt_id} was interrupted at node {data.get('node_id')} "
                                          f"({data.get('node_type')})", data)
            raise ExecutionFailed(f"prompt {prompt_id} failed ({status.get('status_str')})", {})
        return entry

    # ---------------------------------------------------------------- outputs
    def download_outputs(self, outputs: dict, out_dir: str | Path) -> list[Path]:
        """Fetch every file an output node reported (images, gifs, videos, ...) into ``out_dir``.

        Files keep the server's subfolder; temp files (previews) go under ``temp/``.
        """
        out_dir = Path(out_dir)
        files: list[Path] = []
        seen: set[tuple] = set()  # one file can be listed twice (e.g. under "images" and VHS-style "gifs")
        for nid in sorted(outputs, key=str):
            for items in (outputs[nid] or {}).values():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if not isinstance(item, dict) or "filename" not in item:
                        continue  # e.g. "text" strings or the "animated" flags
                    kind = item.get("type") or "output"
                    key = (kind, item.get("subfolder", ""), item["filename"])
                    if key in seen:
                        continue
                    seen.add(key)
                    rel = _safe_rel(item.get("subfolder", ""), item["filename"])
                    dest = out_dir / (Path("temp") / rel if kind == "temp" else rel)
                    data = self.view(item["filename"], item.get("subfolder", ""), kind)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dest.with_name(dest.name + ".part")
                    tmp.write_bytes(data)
                    tmp.replace(dest)
                    files.append(dest)
        return files

    # ---------------------------------------------------------------- all together
    def prepare(self, workflow: dict, overrides: list[str] | None = None) -> tuple[dict, dict | None]:
        """(API prompt, UI workflow or None): a UI workflow is converted with this server's /object_info."""
        from .graph import apply_overrides
        from .workflow_convert import is_ui_workflow, ui_to_api

        ui = None
        if is_ui_workflow(workflow):
            ui = workflow
            workflow = ui_to_api(workflow, self.object_info(), source="UI workflow")
        if not isinstance(workflow, dict) or not workflow:
            raise ValueError("the workflow is empty or not a JSON object")
        return apply_overrides(workflow, overrides), ui

    def run(self, workflow: dict, out_dir: str | Path | None = None, *, timeout: float = 600.0,
            overrides: list[str] | None = None, uploads: list[str] | None = None,
            on_event: Callable[[str, dict], None] | None = None, show_progress: bool = False,
            allow_partial: bool = False) -> JobResult:
        """Upload inputs, queue, follow progress, wait, download outputs.

        ``show_progress`` prints node names and step bars to stderr (:class:`ConsoleProgress`).
        ``allow_partial`` runs a prompt whose outputs only partly passed validation (default: fail).

        ``uploads`` items are ``FILE`` (uploaded under its own name) or ``NODE.INPUT=FILE`` (uploaded, then that
        input is set to the server's name for it).
        """
        t0 = time.monotonic()
        sets = list(overrides or [])
        for item in uploads or []:
            target, sep, path = item.partition("=")
            if sep and "." in target and not Path(item).exists():
                name = self.upload(path)
                sets.append(f"{target}={json.dumps(name)}")
                self.log(f"uploaded {path} -> {name} (set {target})")
            else:
                name = self.upload(item)
                self.log(f"uploaded {item} -> {name}")
        prompt, ui = self.prepare(workflow, sets)
        if on_event is None and show_progress:
            on_event = ConsoleProgress(prompt)
        ws = self._open_ws()
        try:
            extra = {"extra_pnginfo": {"workflow": ui}} if ui else None
            prompt_id = self.queue_prompt(prompt, extra, allow_partial=allow_partial)
            self.log(f"queued prompt {prompt_id} on {self.server}")
            entry, cached = self.wait(prompt_id, timeout, on_event, ws=ws)
        finally:
            if ws is not None:
                try:
                    ws.close()
                except Exception as exc:  # closing a dead socket must not hide the job's own result
                    self.log(f"closing the websocket failed: {exc}")
        outputs = entry.get("outputs") or {}
        files = self.download_outputs(outputs, out_dir) if out_dir is not None else []
        return JobResult(prompt_id, outputs, files, entry.get("status") or {}, time.monotonic() - t0, cached)
