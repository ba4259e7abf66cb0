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

import errno
import http.client
import io
import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..atomic import write_error

DEFAULT_SERVER = "http://127.0.0.1:8188"
# Retrying a refused connection: ComfyUI takes ~10 s to start, so the default waits out a fresh start.
# A reset or aborted connection is retried for GET only (see ComfyClient._open).
RETRYABLE = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)
DEFAULT_MAX_DOWNLOAD = 4 * 1024**3  # per output file; a Wan2.1 video is tens of MB (--max-download)
JSON_LIMIT = 256 * 1024**2  # /object_info of a server with many packs is a few tens of MB
CHUNK = 1 << 20


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
    """The job's --timeout ran out (while waiting, or on any request), or the server stopped answering."""

    exit_code = 5


class BadResponse(QueueError):
    """The server answered something unusable: cut short, not JSON, the wrong shape, a redirect elsewhere."""

    exit_code = 7


class ServerDropped(BadResponse):
    """The server closed the connection after receiving a request, without answering."""


class DownloadFailed(QueueError):
    """An output could not be saved: larger than --max-download, or the local write failed (disk full, ...)."""

    exit_code = 8


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


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def parse_size(text: str) -> int:
    """``4GiB``, ``500M``, ``2g``, ``1048576`` -> bytes (binary units)."""
    t = str(text).strip().lower().removesuffix("b").removesuffix("i")
    scale = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale > 1 else t)
    except ValueError:
        value = -1
    if value <= 0:
        raise ValueError(f"size {text!r} is not a positive size such as 500M, 4G or 4GiB")
    return int(value * scale)


def _expect(data: Any, kind: type, where: str) -> Any:
    if not isinstance(data, kind):
        names = {dict: "a JSON object", list: "a JSON list", str: "a string", type(None): "null"}
        raise BadResponse(f"{where}: expected {names.get(kind, kind.__name__)}, got "
                          f"{names.get(type(data), type(data).__name__)} ({json.dumps(data)[:80]})")
    return data


def _origin(url: str) -> tuple:
    u = urllib.parse.urlsplit(url)
    return u.scheme.lower(), (u.hostname or "").lower(), u.port or {"http": 80, "https": 443}.get(u.scheme.lower())


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the server (same scheme, host and port): never fetch from elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if _origin(newurl) != _origin(req.full_url):
            fp.close()
            raise BadResponse(f"{req.get_method()} {req.full_url} was redirected (HTTP {code}) to {newurl}, another "
                              "host or scheme; the client only fetches from --server and did not follow it")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _set_read_timeout(resp, seconds: float) -> None:
    # urlopen's timeout is fixed when the connection opens; the job's deadline shrinks, so each read gets its own.
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


@contextmanager
def _saving(dest: Path):
    try:
        yield
    except OSError as exc:
        raise DownloadFailed(str(write_error(dest, exc))) from None


class _FileBody:
    """A request body of ``head``, the file's bytes and ``tail``, streamed in blocks (a video upload is never held
    in memory). Iterating again starts again, so a request retried after a refused connection sends it whole."""

    BLOCK = 1 << 20

    def __init__(self, head: bytes, path: Path, tail: bytes):
        self.head, self.path, self.tail = head, path, tail
        self.size = path.stat().st_size

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self):
        yield self.head
        sent = 0
        with open(self.path, "rb") as fh:
            while block := fh.read(self.BLOCK):
                sent += len(block)
                yield block
        if sent != self.size:  # the server would read a body of the wrong length
            raise OSError(f"{self.path} changed size while it was uploaded ({self.size} -> {sent} bytes)")
        yield self.tail


def _place(part: Path, dest: Path, replace: bool) -> Path:
    """Move the finished ``part`` to ``dest``; without ``replace`` never over an existing file (see ``download``)."""
    if replace:
        os.replace(part, dest)
        return dest
    for n in range(10000):
        cand = dest if n == 0 else dest.with_name(f"{dest.stem}-{n}{dest.suffix}")
        try:
            os.link(part, cand)  # fails if cand exists: no window in which another writer's file is replaced
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: check, then rename
            if os.path.lexists(cand):
                continue
            os.replace(part, cand)
            return cand
        part.unlink()
        return cand
    raise OSError(errno.EEXIST, f"no free name next to {dest}")


class ComfyClient:
    """A small client for one ComfyUI server. Every method raises :class:`QueueError` subclasses on failure.

    Time: every request is bounded on connect and on each read by ``request_timeout``; inside :meth:`run` also
    by the job's deadline (``timeout``), which covers uploads, queueing, waiting and downloads together.
    """

    def __init__(self, server: str | None = None, client_id: str | None = None, *, connect_retries: int = 6,
                 backoff: float = 0.5, request_timeout: float = 60.0, use_websocket: bool = True,
                 max_download: int = DEFAULT_MAX_DOWNLOAD, log: Callable[[str], None] | None = None):
        self.server = normalize_server(server)
        self.client_id = client_id or uuid.uuid4().hex
        self.connect_retries = max(1, int(connect_retries))
        self.backoff = float(backoff)
        self.request_timeout = float(request_timeout)
        self.use_websocket = use_websocket
        self.max_download = int(max_download)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._opener = urllib.request.build_opener(_SameOriginRedirects)
        self._deadline: float | None = None  # monotonic time the current job must end by (run())
        self._job_timeout = 0.0

    # ---------------------------------------------------------------- HTTP
    def _op_timeout(self, what: str) -> float:
        """Seconds one blocking step (connect, one read) may take: request_timeout, and never past the deadline."""
        if self._deadline is None:
            return self.request_timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise PromptTimeout(f"{what}: the job's --timeout of {self._job_timeout:g} s ran out (raise --timeout "
                                "for long jobs)")
        return min(self.request_timeout, left)

    @contextmanager
    def _grace(self, seconds: float = 1.0):
        """Short, single-attempt requests outside the job's deadline: cleaning up after a timeout or a drop."""
        saved = self._deadline, self.request_timeout, self.connect_retries
        self._deadline, self.request_timeout, self.connect_retries = time.monotonic() + seconds, seconds, 1
        try:
            yield
        finally:
            self._deadline, self.request_timeout, self.connect_retries = saved

    def _timed_out(self, what: str, seconds: float) -> PromptTimeout:
        if self._deadline is not None and time.monotonic() >= self._deadline - 0.05:
            return PromptTimeout(f"{what}: the job's --timeout of {self._job_timeout:g} s ran out (raise --timeout "
                                 "for long jobs)")
        return PromptTimeout(f"{what}: no answer from {self.server} for {seconds:g} s; the server is busy or stuck")

    def _open(self, method: str, path: str, body: bytes | _FileBody | None = None, headers: dict | None = None):
        """The server's response (HTTP errors included), after connect retries; the caller closes it.

        Only a refused connection is retried for every method (nothing reached the server). A connection dropped
        after the request went out is retried for GET only: a POST (a prompt!) is never sent twice.
        """
        url = self.server + path
        delay = self.backoff
        last: BaseException | None = None
        for attempt in range(1, self.connect_retries + 1):
            timeout = self._op_timeout(f"{method} {path}")
            req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
            try:
                return self._opener.open(req, timeout=timeout)
            except urllib.error.HTTPError as exc:
                return exc
            except urllib.error.URLError as exc:  # raised while connecting or sending the request
                reason = exc.reason
                if isinstance(reason, TimeoutError):
                    raise self._timed_out(f"{method} {path}: connecting to {self.server}", timeout) from None
                if not isinstance(reason, ConnectionRefusedError) and not (method == "GET" and isinstance(reason, RETRYABLE)):
                    if isinstance(reason, RETRYABLE + (BrokenPipeError,)):
                        raise ServerDropped(f"{self.server} dropped the connection while receiving {method} {path} "
                                            f"({reason}); it was not resent") from None
                    raise ServerUnreachable(f"cannot reach ComfyUI at {self.server}: {reason}") from None
                last = reason
            except TimeoutError:  # the request went out; no answer came
                raise self._timed_out(f"{method} {path}", timeout) from None
            except (ConnectionError, http.client.RemoteDisconnected) as exc:  # the request went out; no answer came
                if method != "GET":
                    raise ServerDropped(f"{self.server} dropped the connection after receiving {method} {path}, "
                                        f"without answering ({type(exc).__name__}: {exc}); it was not resent") from None
                last = exc
            except http.client.HTTPException as exc:  # a status line or headers that are not HTTP
                raise BadResponse(f"{method} {url}: the answer is not valid HTTP ({type(exc).__name__}: {exc})") from None
            if attempt < self.connect_retries:
                if self._deadline is not None and time.monotonic() + delay >= self._deadline:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        if not isinstance(last, ConnectionRefusedError):
            raise ServerDropped(f"{self.server} dropped the connection on {method} {path} ({last}), "
                                f"{attempt} time(s)") from None
        raise ServerUnreachable(
            f"cannot connect to ComfyUI at {self.server} after {attempt} attempt{'s' if attempt > 1 else ''} ({last}); "
            "is the server running? Start it with `python main.py --listen 127.0.0.1 --port 8188` "
            "or pass the right address with --server URL"
        )

    def _read_body(self, resp, url: str, write: Callable[[bytes], Any], limit: int, too_big: type[QueueError]) -> int:
        """Stream ``resp``'s body into ``write`` in chunks: at most ``limit`` bytes, each read bounded in time."""
        n = 0
        expected = resp.headers.get("Content-Length")
        expected = int(expected) if expected and expected.isdigit() else None
        if expected is not None and expected > limit:
            raise too_big(f"GET {url}: the server announces {_size(expected)}, over the limit of {_size(limit)}"
                          + (" (--max-download)" if too_big is DownloadFailed else ""))
        while True:
            timeout = self._op_timeout(f"reading {url} ({_size(n)} so far)")
            _set_read_timeout(resp, timeout)
            try:
                chunk = resp.read1(CHUNK)  # what has arrived (read() would wait to fill the whole chunk)
            except TimeoutError:
                raise self._timed_out(f"reading {url} ({_size(n)} so far)", timeout) from None
            except http.client.IncompleteRead as exc:
                raise BadResponse(f"{url}: the body was cut short after {_size(n + len(exc.partial))}"
                                  + (f" of {_size(expected)}" if expected else "")) from None
            except (OSError, http.client.HTTPException) as exc:
                raise BadResponse(f"{url}: the connection broke after {_size(n)} ({type(exc).__name__}: {exc})") from None
            if not chunk:
                break
            n += len(chunk)
            if n > limit:
                raise too_big(f"GET {url}: the body is larger than the limit of {_size(limit)}"
                              + (" (--max-download)" if too_big is DownloadFailed else ""))
            write(chunk)
        if expected is not None and n < expected:
            raise BadResponse(f"{url}: the body was cut short after {_size(n)} of {_size(expected)}")
        return n

    def _request(self, method: str, path: str, body: bytes | _FileBody | None = None, headers: dict | None = None,
                 limit: int = JSON_LIMIT) -> tuple[int, bytes]:
        resp = self._open(method, path, body, headers)
        with resp:
            buf = io.BytesIO()
            self._read_body(resp, self.server + path, buf.write, limit, BadResponse)
            return resp.status, buf.getvalue()

    def _json(self, method: str, path: str, payload: Any = None, body: bytes | _FileBody | None = None,
              headers: dict | None = None) -> tuple[int, Any]:
        if payload is not None:
            body, headers = json.dumps(payload).encode(), {"Content-Type": "application/json"}
        status, raw = self._request(method, path, body, headers)
        try:
            data = json.loads(raw.decode() or "null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if status == 200:
                raise BadResponse(f"{method} {self.server}{path} answered HTTP 200 with a body that is not JSON "
                                  f"({exc}; it starts {raw[:60]!r})") from None
            data = raw.decode(errors="replace")
        return status, data

    def _ok_json(self, method: str, path: str, payload: Any = None, expect: type = dict) -> Any:
        status, data = self._json(method, path, payload)
        if status != 200:
            raise QueueError(f"{method} {path} returned HTTP {status}: {str(data)[:500]}")
        return _expect(data, expect, f"{method} {self.server}{path}")

    def system_stats(self) -> dict:
        return self._ok_json("GET", "/system_stats")

    def object_info(self) -> dict:
        return self._ok_json("GET", "/object_info")

    def history(self, prompt_id: str) -> dict | None:
        path = f"/history/{urllib.parse.quote(prompt_id)}"
        data = self._ok_json("GET", path)
        entry = data.get(prompt_id)
        if entry is None:
            return None
        where = f"GET {self.server}{path}"
        _expect(entry, dict, f"{where}: the entry of prompt {prompt_id}")
        for key in ("outputs", "status"):
            if entry.get(key) is not None:
                _expect(entry[key], dict, f"{where}: {key!r} of prompt {prompt_id}")
        return entry

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop ``prompt_id`` if it is running and drop it from the queue if it is still waiting."""
        self._json("POST", "/interrupt", {"prompt_id": prompt_id} if prompt_id else {})
        if prompt_id:
            self._json("POST", "/queue", {"delete": [prompt_id]})

    def _try_interrupt(self, prompt_id: str) -> str:
        """Interrupt after a timeout, briefly and without failing (the server may be the one that hangs)."""
        try:
            with self._grace():
                self.interrupt(prompt_id)
            return "it was interrupted"
        except QueueError as exc:
            return f"interrupting it failed too ({exc})"

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        """One output file's bytes, in memory (at most ``max_download``); :meth:`download` streams to disk."""
        q = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder or "", "type": type or "output"})
        status, raw = self._request("GET", f"/view?{q}", limit=self.max_download)
        if status != 200:
            raise QueueError(f"downloading {filename!r} (subfolder {subfolder!r}, type {type!r}) failed: HTTP {status}")
        return raw

    def download(self, filename: str, subfolder: str, type: str, dest: str | Path, *, replace: bool = False) -> Path:
        """Stream one output file to ``dest`` through ``dest.part`` (renamed on success, removed on any failure).

        An existing ``dest`` is replaced only with ``replace``; otherwise the file is saved beside it under the
        first free name ``NAME-1.EXT``, ``NAME-2.EXT``, ... and that path is returned. A server's file counter
        starts again after a restart, so the same name from two runs is usually two different files.
        """
        dest = Path(dest)
        q = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder or "", "type": type or "output"})
        url = f"{self.server}/view?{q}"
        part = dest.with_name(dest.name + ".part")
        resp = self._open("GET", f"/view?{q}")
        try:
            if resp.status != 200:
                raise QueueError(f"downloading {filename!r} (subfolder {subfolder!r}, type {type!r}) failed: "
                                 f"HTTP {resp.status}")
            with _saving(dest):
                dest.parent.mkdir(parents=True, exist_ok=True)
                fh = open(part, "wb", buffering=0)  # unbuffered: a write error (disk full) raises at that write

            def write(data: bytes) -> None:
                with _saving(dest):
                    while data:
                        data = data[fh.write(data):]

            with fh:
                self._read_body(resp, url, write, self.max_download, DownloadFailed)
            with _saving(dest):
                dest = _place(part, dest, replace)
        finally:
            resp.close()
            if part.exists():
                part.unlink()
        return dest

    def upload(self, path: str | Path, subfolder: str = "", type: str = "input", overwrite: bool = True) -> str:
        """Upload a file into the server's input folder; returns the name to put in a LoadImage/LoadVideo input."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--upload {str(path)!r}: no such file")
        boundary = uuid.uuid4().hex
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{val}\r\n'.encode()
                        for key, val in (("subfolder", subfolder), ("type", type),
                                         ("overwrite", "true" if overwrite else "false")))
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
                 f"Content-Type: {ctype}\r\n\r\n").encode()
        body = _FileBody(head, path, f"\r\n--{boundary}--\r\n".encode())
        status, info = self._json("POST", "/upload/image", body=body,
                                  headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                           "Content-Length": str(len(body))})
        if status != 200:
            raise QueueError(f"uploading {str(path)!r} failed: HTTP {status}: {str(info)[:300]}")
        where = f"POST {self.server}/upload/image"
        _expect(info, dict, where)
        if not isinstance(info.get("name"), str):
            raise BadResponse(f"{where}: the answer has no file 'name' ({str(info)[:200]})")
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]

    def queue_prompt(self, prompt: dict, extra_data: dict | None = None, prompt_id: str | None = None,
                     allow_partial: bool = False) -> str:
        payload: dict[str, Any] = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            payload["extra_data"] = extra_data
        # Chosen here, so that after a dropped connection or a timeout we can still tell whether it was queued.
        payload["prompt_id"] = prompt_id = prompt_id or str(uuid.uuid4())
        try:
            status, data = self._json("POST", "/prompt", payload)
        except ServerDropped as exc:
            raise ServerDropped(f"{exc}. The prompt may have been queued (prompt id {prompt_id}): "
                                f"{self._queued_state(prompt_id)}") from None
        except PromptTimeout as exc:  # a server that hangs here would hang on the check too: do not ask it
            raise PromptTimeout(f"{exc}. The prompt may have been queued (prompt id {prompt_id}): check the "
                                "server's queue before queueing it again") from None
        if status == 400 or (status == 200 and isinstance(data, dict) and data.get("error")):
            data = data if isinstance(data, dict) else {"error": {"message": str(data)}}
            err = data.get("error") if isinstance(data.get("error"), dict) else {"message": str(data.get("error"))}
            raise PromptValidationError(format_node_errors(data, prompt), err, data.get("node_errors") or {})
        if status != 200:
            raise QueueError(f"POST /prompt returned HTTP {status}: {str(data)[:500]}")
        _expect(data, dict, f"POST {self.server}/prompt")
        if not isinstance(data.get("prompt_id"), str):
            raise BadResponse(f"POST {self.server}/prompt: the answer has no 'prompt_id' ({json.dumps(data)[:200]})")
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

    def _queued_state(self, prompt_id: str) -> str:
        """What the server says about ``prompt_id`` (asked briefly, once): queued, finished, unknown."""
        try:
            with self._grace():
                queue = self._ok_json("GET", "/queue")
                items = list(queue.get("queue_running") or []) + list(queue.get("queue_pending") or [])
                if any(isinstance(it, list) and len(it) > 1 and it[1] == prompt_id for it in items):
                    return "the server's queue lists it, so it will run; do not queue it again"
                if self.history(prompt_id) is not None:
                    return "the server's history lists it, so it ran; do not queue it again"
            return "the server's queue and history do not list it; check the server before queueing it again"
        except QueueError as exc:
            return f"asking the server failed too ({exc}); check its queue before queueing it again"

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
            # at most half of what is left: a server that hangs here still leaves time for the prompt's error
            timeout = min(10.0, self._op_timeout("opening the websocket") / 2)
            ws = websocket.create_connection(f"{url}/ws?clientId={urllib.parse.quote(self.client_id)}", timeout=timeout)
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
        deadline = min(time.monotonic() + float(timeout), self._deadline or float("inf"))
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
            if not isinstance(ev, dict) or not isinstance(ev.get("data") or {}, dict):
                return True  # not an event we know: progress is best effort, /history decides
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
                raise PromptTimeout(f"prompt {prompt_id} did not finish within {self._job_timeout or timeout:g} s; "
                                    f"{self._try_interrupt(prompt_id)} (raise --timeout for long jobs)")
            live = state["ws"] is not None and not state["finished"]
            if live:
                pump()
            elif not state["finished"]:
                time.sleep(min(poll_interval, max(0.0, deadline - now), max(0.0, next_poll - now)))
            if state["finished"] or time.monotonic() >= next_poll:
                try:
                    entry = self.history(prompt_id)
                except PromptTimeout as exc:
                    raise PromptTimeout(f"prompt {prompt_id}: {exc}; {self._try_interrupt(prompt_id)}") from None
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
            for msg in status.get("messages") or []:
                name, data = (msg[0], msg[1]) if isinstance(msg, list) and len(msg) == 2 else (None, None)
                if not isinstance(data, dict):
                    continue
                if name == "execution_error":
                    raise ExecutionFailed(format_execution_error(data), data)
                if name == "execution_interrupted":
                    raise ExecutionFailed(f"prompt {prompt_id} was interrupted at node {data.get('node_id')} "
                                          f"({data.get('node_type')})", data)
            raise ExecutionFailed(f"prompt {prompt_id} failed ({status.get('status_str')})", {})
        return entry

    # ---------------------------------------------------------------- outputs
    def download_outputs(self, outputs: dict, out_dir: str | Path, *, replace: bool = False) -> list[Path]:
        """Fetch every file an output node reported (images, gifs, videos, ...) into ``out_dir``.

        Files keep the server's subfolder; temp files (previews) go under ``temp/``. Each is streamed to disk
        (:meth:`download`): at most ``max_download`` bytes, never held in memory. Existing files are kept unless
        ``replace`` (the new one gets a free name; compare the returned paths with the server's names).
        """
        out_dir = Path(out_dir)
        files: list[Path] = []
        seen: set[tuple] = set()  # one file can be listed twice (e.g. under "images" and VHS-style "gifs")
        for nid in sorted(outputs, key=str):
            ui = _expect(outputs[nid] or {}, dict, f"{self.server}/history: the outputs of node {nid}")
            for items in ui.values():
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
                    got = self.download(item["filename"], item.get("subfolder", ""), kind, dest, replace=replace)
                    if got != dest:
                        self.log(f"{dest} exists and was kept; saved the new file as {got.name} "
                                 "(pass --force to replace)")
                    files.append(got)
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

    def run(self, workflow: dict, out_dir: str | Path | None = None, *, timeout: float = 600.0, replace: bool = False,
            overrides: list[str] | None = None, uploads: list[str] | None = None,
            on_event: Callable[[str, dict], None] | None = None, show_progress: bool = False,
            allow_partial: bool = False) -> JobResult:
        """Upload inputs, queue, follow progress, wait, download outputs.

        ``show_progress`` prints node names and step bars to stderr (:class:`ConsoleProgress`).
        ``allow_partial`` runs a prompt whose outputs only partly passed validation (default: fail).

        ``uploads`` items are ``FILE`` (uploaded under its own name) or ``NODE.INPUT=FILE`` (uploaded, then that
        input is set to the server's name for it).

        ``timeout`` bounds the whole job (uploads, queueing, waiting, downloads): every connect and every read
        also ends by then. ``replace`` lets a download replace an existing file in ``out_dir`` (default: the file
        there is kept and the new one saved under a free name, see :meth:`download`).
        """
        t0 = time.monotonic()
        self._deadline, self._job_timeout = t0 + float(timeout), float(timeout)
        try:
            return self._run(workflow, out_dir, t0, timeout, overrides, uploads, on_event, show_progress, allow_partial,
                             replace)
        finally:
            self._deadline = None

    def _run(self, workflow, out_dir, t0, timeout, overrides, uploads, on_event, show_progress, allow_partial,
             replace=False):
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
        files = self.download_outputs(outputs, out_dir, replace=replace) if out_dir is not None else []
        return JobResult(prompt_id, outputs, files, entry.get("status") or {}, time.monotonic() - t0, cached)
