"""A ComfyUI stand-in on 127.0.0.1 that misbehaves on purpose (used by tests/host/test_queue_misbehaving.py and
benchmarks/bench_queue_misbehaving.py).

The happy protocol is the minimum ``emovid queue`` needs: ``POST /prompt`` answers a prompt id, ``GET
/history/<id>`` answers a finished entry whose one output is ``out.bin``, ``GET /queue`` lists nothing. Each route
can be replaced by a behaviour ``fn(handler, body)`` from this module or the test. Every loop is bounded (by
``stop``, a byte budget and a time budget) so a server thread always ends by itself.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUTPUT = {"9": {"images": [{"filename": "out.bin", "subfolder": "", "type": "output"}]}}
MAX_SECONDS = 120.0  # no behaviour runs longer than this, whatever the client does


class Misbehaving:
    def __init__(self, routes: dict | None = None):
        self.routes = dict(routes or {})  # "POST /prompt", "GET /history", "GET /view", "GET /queue", ...
        self.requests: list[tuple[str, str]] = []
        self.prompt_ids: list[str] = []
        self.stop = threading.Event()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _dispatch(self, method: str):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                srv.requests.append((method, self.path))
                route = f"{method} /" + path.strip("/").split("/", 1)[0]
                if route == "POST /prompt":
                    srv.prompt_ids.append(json.loads(body).get("prompt_id", ""))
                fn = srv.routes.get(route) or DEFAULTS.get(route)
                if fn is None:
                    return send(self, 404, b"no route")
                fn(self, body)

            def do_GET(self):
                self._dispatch("GET")

            def do_POST(self):
                self._dispatch("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.misbehaving_stop = self.stop  # what every behaviour loop watches
        self.httpd.handle_error = lambda request, address: None  # a client hanging up on us is the point
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def send(h, code: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
    h.send_response(code)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def send_json(h, data, code: int = 200) -> None:
    send(h, code, json.dumps(data).encode())


def _prompt_ok(h, body):
    send_json(h, {"prompt_id": json.loads(body)["prompt_id"], "number": 1, "node_errors": {}})


def _history_done(h, body):
    pid = h.path.rsplit("/", 1)[-1]
    send_json(h, {pid: {"prompt": [], "outputs": OUTPUT, "status": {"status_str": "success", "completed": True,
                                                                   "messages": []}, "meta": {}}})


def _view_small(h, body):
    send(h, 200, b"\x89PNG-ish output bytes", "application/octet-stream")


DEFAULTS = {
    "POST /prompt": _prompt_ok,
    "GET /history": _history_done,
    "GET /view": _view_small,
    "GET /queue": lambda h, b: send_json(h, {"queue_running": [], "queue_pending": []}),
    "POST /interrupt": lambda h, b: send_json(h, {}),
    "POST /queue": lambda h, b: send_json(h, {}),
}


# ------------------------------------------------------------------------------------------------ behaviours


def close_without_reply(h, body):
    """Read the request (already done), answer nothing, close."""
    h.close_connection = True


def hang(h, body):
    """Accept the request and never answer (until the server stops or MAX_SECONDS)."""
    h.server.misbehaving_stop.wait(MAX_SECONDS)  # hold the connection open, answering nothing
    h.close_connection = True


def stall_after(data: bytes, announced: int):
    """Announce ``announced`` bytes, send ``data``, then go silent with the connection open."""
    return cut_short(data, announced, then=hang)


def endless(rate: float | None = None, chunk: int = 1 << 20, content_length: int | None = None):
    """Stream bytes forever (close-delimited, no Content-Length unless given), at ``rate`` bytes/s if set."""

    def fn(h, body):
        h.protocol_version = "HTTP/1.0"  # the body ends when the connection closes
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        if content_length is not None:
            h.send_header("Content-Length", str(content_length))
        h.send_header("Connection", "close")
        h.end_headers()
        block = b"\0" * chunk
        t0 = time.monotonic()
        sent = 0
        stop = h.server.misbehaving_stop
        while not stop.is_set() and time.monotonic() - t0 < MAX_SECONDS and sent < 64 * 1024**3:
            try:
                h.wfile.write(block)
            except OSError:
                break  # the client hung up: what it should do
            sent += chunk
            if rate:
                time.sleep(max(0.0, sent / rate - (time.monotonic() - t0)))
        h.close_connection = True

    return fn


def cut_short(data: bytes, announced: int, then=None):
    """Announce ``announced`` bytes, send ``data`` (fewer), close (or first ``then(h, body)``)."""

    def fn(h, body):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(announced))
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()
        if then is not None:
            then(h, body)
        h.close_connection = True

    return fn


def raw_json(text: str):
    return lambda h, body: send(h, 200, text.encode())


def redirect(location: str, code: int = 302):
    return lambda h, body: send(h, code, b"", "text/plain", {"Location": location})
