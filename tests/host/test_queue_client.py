"""The queue client against a local ComfyUI stand-in speaking the real protocol over HTTP and a websocket.

The stand-in (stdlib only, 127.0.0.1) implements ComfyUI 0.3.64's /prompt (validation with node_errors),
/history, /view, /upload/image, /object_info, /interrupt, /queue and /ws (RFC 6455 text frames with the
status/execution_start/executing/progress/executed/execution_success/execution_error events). It writes real
PNG files. The same client runs against the real ComfyUI in tests/host/test_comfyui_integration.py.
"""

from __future__ import annotations

import base64
import email.parser
import hashlib
import io
import json
import os
import select
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from emovid_core.host.cli import main as cli_main
from emovid_core.host.object_info import core_object_info
from emovid_core.host.queue_client import (
    ComfyClient,
    ExecutionFailed,
    PromptTimeout,
    PromptValidationError,
    QueueError,
    ServerUnreachable,
)

CORE_INFO = core_object_info()
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _ws_frame(text: str) -> bytes:
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


class FakeComfyUI:
    """A ComfyUI stand-in. Knobs: ``ws_enabled``, ``fail_node`` (node id raising at run time), ``hang``
    (run until /interrupt), ``step_delay`` (seconds per sampler step), ``evil_names`` (report a '../' file name)."""

    def __init__(self, root: Path, port: int = 0):
        self.root = root
        for d in ("input", "output", "temp"):
            (root / d).mkdir(parents=True, exist_ok=True)
        info = {k: CORE_INFO[k] for k in ("EmptyImage", "SaveImage", "PreviewImage", "LoadImage")}
        # A node that reports step progress like a sampler, without needing a model.
        info["StepNode"] = {"input": {"required": {"steps": ["INT", {"default": 4, "min": 1, "max": 100}]}},
                            "input_order": {"required": ["steps"]}, "output": [], "output_is_list": [],
                            "output_name": [], "name": "StepNode", "display_name": "Step Node",
                            "category": "testing", "output_node": True}
        self.object_info = json.loads(json.dumps(info))
        self.ws_enabled = True
        self.fail_node: str | None = None
        self.hang = False
        self.step_delay = 0.0
        self.evil_names = False
        self.partial = False  # answer 200 with node_errors, as ComfyUI does when only some outputs fail
        self.prompts: list[dict] = []
        self.interrupts: list[dict] = []
        self.history: dict[str, dict] = {}
        self.clients: dict[str, socket.socket] = {}
        self.lock = threading.Lock()
        self.interrupted = threading.Event()
        self.stopping = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep pytest output clean
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, data) -> None:
                self._send(code, json.dumps(data).encode())

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                path = url.path.removeprefix("/api")
                q = urllib.parse.parse_qs(url.query)
                if path == "/ws":
                    return self._websocket(q.get("clientId", [""])[0])
                if path == "/object_info":
                    return self._json(200, fake.object_info)
                if path == "/system_stats":
                    return self._json(200, {"system": {"comfyui_version": "fake"}})
                if path.startswith("/history/"):
                    pid = path.split("/", 2)[2]
                    with fake.lock:
                        entry = fake.history.get(pid)
                    return self._json(200, {pid: entry} if entry else {})
                if path == "/view":
                    name, sub = q.get("filename", [""])[0], q.get("subfolder", [""])[0]
                    kind = q.get("type", ["output"])[0]
                    if name.startswith("/") or ".." in name:
                        return self._send(400, b"bad name", "text/plain")
                    f = (fake.root / kind / sub / name).resolve()
                    if not str(f).startswith(str((fake.root / kind).resolve())) or not f.is_file():
                        return self._send(404, b"not found", "text/plain")
                    return self._send(200, f.read_bytes(), "image/png")
                self._send(404, b"no route", "text/plain")

            def do_POST(self):
                path = urllib.parse.urlparse(self.path).path.removeprefix("/api")
                body = self._body()
                if path == "/prompt":
                    return self._prompt(json.loads(body))
                if path == "/interrupt":
                    fake.interrupts.append(json.loads(body or b"{}"))
                    fake.interrupted.set()
                    return self._json(200, {})
                if path == "/queue":
                    return self._json(200, {})
                if path == "/upload/image":
                    msg = email.parser.BytesParser().parsebytes(
                        f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body)
                    fields, data, fname = {}, None, None
                    for part in msg.get_payload():
                        name = part.get_param("name", header="content-disposition")
                        if name == "image":
                            data, fname = part.get_payload(decode=True), part.get_filename()
                        else:
                            fields[name] = part.get_payload(decode=True).decode()
                    if data is None:
                        return self._send(400, b"no image", "text/plain")
                    dest = fake.root / fields.get("type", "input") / fields.get("subfolder", "") / fname
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
                    return self._json(200, {"name": fname, "subfolder": fields.get("subfolder", ""), "type": "input"})
                self._send(404, b"no route", "text/plain")

            def _prompt(self, payload):
                prompt = payload.get("prompt")
                if not isinstance(prompt, dict):
                    return self._json(400, {"error": {"type": "no_prompt", "message": "No prompt provided",
                                                      "details": "", "extra_info": {}}, "node_errors": {}})
                node_errors = {}
                for nid, node in prompt.items():
                    ctype = node.get("class_type")
                    if ctype not in fake.object_info:
                        return self._json(400, {"error": {"type": "invalid_prompt", "message":
                                          f"Cannot execute because node {ctype} does not exist.",
                                          "details": f"Node ID '#{nid}'", "extra_info": {}}, "node_errors": {}})
                    spec = fake.object_info[ctype]["input"].get("required", {})
                    errs = []
                    for name, s in spec.items():
                        v = node["inputs"].get(name)
                        if v is None:
                            errs.append({"type": "required_input_missing", "message": "Required input is missing",
                                         "details": name, "extra_info": {"input_name": name}})
                        elif s[0] == "INT" and not isinstance(v, list) and v < s[1].get("min", -2**63):
                            errs.append({"type": "value_smaller_than_min",
                                         "message": f"Value {v} smaller than min of {s[1]['min']}", "details": name,
                                         "extra_info": {"input_name": name, "received_value": v}})
                        elif ctype == "LoadImage" and name == "image" and not (fake.root / "input" / v).is_file():
                            errs.append({"type": "value_not_in_list", "message": "Value not in list",
                                         "details": f"image: '{v}' not in []",
                                         "extra_info": {"input_name": name, "received_value": v}})
                    if errs:
                        node_errors[nid] = {"errors": errs, "dependent_outputs": [], "class_type": ctype}
                if node_errors and fake.partial:
                    pid = str(uuid.uuid4())
                    fake.prompts.append(payload)
                    ok = {k: v for k, v in prompt.items() if k not in node_errors}
                    threading.Thread(target=fake._execute, args=(pid, ok, payload.get("client_id")), daemon=True).start()
                    return self._json(200, {"prompt_id": pid, "number": 1, "node_errors": node_errors})
                if node_errors:
                    return self._json(400, {"error": {"type": "prompt_outputs_failed_validation",
                                                      "message": "Prompt outputs failed validation", "details": "",
                                                      "extra_info": {}}, "node_errors": node_errors})
                pid = payload.get("prompt_id") or str(uuid.uuid4())
                fake.prompts.append(payload)
                threading.Thread(target=fake._execute, args=(pid, prompt, payload.get("client_id")), daemon=True).start()
                self._json(200, {"prompt_id": pid, "number": len(fake.prompts), "node_errors": {}})

            def _websocket(self, client_id: str):
                if not fake.ws_enabled or self.headers.get("Upgrade", "").lower() != "websocket":
                    return self._send(404, b"no websocket", "text/plain")
                accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest())
                self.send_response(101, "Switching Protocols")
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept.decode())
                self.end_headers()
                self.wfile.flush()
                sock = self.connection
                with fake.lock:
                    fake.clients[client_id] = sock
                fake.send(client_id, "status", {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id})
                while not fake.stopping.is_set():  # hold the connection until the client closes it
                    r, _, _ = select.select([sock], [], [], 0.2)
                    if r:
                        try:
                            data = sock.recv(1024)
                        except OSError:
                            break
                        if not data:
                            break
                        if data[0] & 0x0F == 0x8:  # close frame: answer it, as a real server does
                            with fake.lock:
                                sock.sendall(b"\x88\x00")
                            break
                with fake.lock:
                    fake.clients.pop(client_id, None)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def send(self, client_id, event, data) -> None:
        with self.lock:
            sock = self.clients.get(client_id)
            if sock is not None:
                try:
                    sock.sendall(_ws_frame(json.dumps({"type": event, "data": data})))
                except OSError:
                    self.clients.pop(client_id, None)

    def _execute(self, pid: str, prompt: dict, client_id: str) -> None:
        messages = [["execution_start", {"prompt_id": pid}]]
        self.send(client_id, "execution_start", {"prompt_id": pid})
        outputs, values = {}, {}
        status = "success"
        for nid in sorted(prompt, key=int):
            node = prompt[nid]
            ctype, ins = node["class_type"], node["inputs"]
            self.send(client_id, "executing", {"node": nid, "display_node": nid, "prompt_id": pid})
            if nid == self.fail_node:
                err = {"prompt_id": pid, "node_id": nid, "node_type": ctype, "executed": [],
                       "exception_message": "Expected tensor of shape [1, 16]; got [1, 4]",
                       "exception_type": "RuntimeError", "traceback": ["Traceback...\n", "RuntimeError: shape\n"],
                       "current_inputs": {}, "current_outputs": {}}
                self.send(client_id, "execution_error", err)
                messages.append(["execution_error", err])
                status = "error"
                break
            if ctype == "EmptyImage":
                c = ins["color"]
                values[nid] = Image.new("RGB", (ins["width"], ins["height"]), ((c >> 16) & 255, (c >> 8) & 255, c & 255))
            elif ctype == "LoadImage":
                values[nid] = Image.open(self.root / "input" / ins["image"]).convert("RGB")
            elif ctype == "StepNode":
                steps = ins["steps"]
                for i in range(1, steps + 1):
                    if self.hang:
                        while not self.interrupted.wait(0.05):
                            pass
                    if self.interrupted.is_set():
                        data = {"prompt_id": pid, "node_id": nid, "node_type": ctype, "executed": []}
                        self.send(client_id, "execution_interrupted", data)
                        messages.append(["execution_interrupted", data])
                        status = "error"
                        break
                    time.sleep(self.step_delay)
                    self.send(client_id, "progress", {"value": i, "max": steps, "prompt_id": pid, "node": nid})
                if status == "error":
                    break
            elif ctype in ("SaveImage", "PreviewImage"):
                img = values[ins["images"][0]]
                kind = "output" if ctype == "SaveImage" else "temp"
                prefix = ins.get("filename_prefix", "ComfyUI") if kind == "output" else "ComfyUI_temp_abcde"
                sub, stem = (prefix.rsplit("/", 1) if "/" in prefix else ("", prefix))
                fname = f"{stem}_{len(list((self.root / kind / sub).glob(stem + '*'))) + 1:05d}_.png"
                (self.root / kind / sub).mkdir(parents=True, exist_ok=True)
                img.save(self.root / kind / sub / fname)
                reported = "../" + fname if self.evil_names else fname
                ui = {"images": [{"filename": reported, "subfolder": sub, "type": kind}]}
                outputs[nid] = ui
                self.send(client_id, "executed", {"node": nid, "display_node": nid, "output": ui, "prompt_id": pid})
        if status == "success":
            self.send(client_id, "executing", {"node": None, "prompt_id": pid})
            self.send(client_id, "execution_success", {"prompt_id": pid})
            messages.append(["execution_success", {"prompt_id": pid}])
        with self.lock:
            self.history[pid] = {"prompt": [1, pid, prompt, {}, list(outputs)], "outputs": outputs,
                                 "status": {"status_str": status, "completed": status == "success",
                                            "messages": messages}, "meta": {}}


API_WF = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 40, "height": 24, "batch_size": 1, "color": 0xFF8000},
          "_meta": {"title": "Orange"}},
    "2": {"class_type": "StepNode", "inputs": {"steps": 4}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "emo/test"}},
    "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}


@pytest.fixture()
def fake(tmp_path):
    with FakeComfyUI(tmp_path / "server") as srv:
        yield srv


def _client(srv, **kw) -> tuple[ComfyClient, list[str]]:
    logs: list[str] = []
    return ComfyClient(srv.url, log=logs.append, backoff=0.05, **kw), logs


def test_run_over_websocket_downloads_outputs_and_reports_progress(fake, tmp_path):
    client, logs = _client(fake)
    events = []
    job = client.run(API_WF, out_dir=tmp_path / "dl", timeout=30, on_event=lambda e, d: events.append((e, d)))
    # Every output file came back byte-identical under its subfolder; the preview went under temp/.
    got = sorted(p.relative_to(tmp_path / "dl").as_posix() for p in job.files)
    assert got == ["emo/test_00001_.png", "temp/ComfyUI_temp_abcde_00001_.png"]
    assert (tmp_path / "dl/emo/test_00001_.png").read_bytes() == (fake.root / "output/emo/test_00001_.png").read_bytes()
    assert Image.open(tmp_path / "dl/emo/test_00001_.png").getpixel((3, 3)) == (255, 128, 0)
    assert job.outputs["3"]["images"][0]["subfolder"] == "emo"
    # Progress came over the websocket: nodes in order, then the sampler's steps 1..4.
    executing = [d["node"] for e, d in events if e == "executing" and d.get("node")]
    assert executing == ["1", "2", "3", "4"]
    assert [(d["value"], d["max"]) for e, d in events if e == "progress"] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert not any("polling" in m for m in logs)
    # The server saw our client id (so events were addressed to us).
    assert fake.prompts[0]["client_id"] == client.client_id


def test_console_progress_names_nodes_and_draws_step_bars(fake, tmp_path, capsys):
    client, _ = _client(fake)
    client.run(API_WF, out_dir=tmp_path / "dl", timeout=30, show_progress=True)
    err = capsys.readouterr().err
    assert "[1] Orange" in err and "[2] StepNode" in err
    assert "#" * 20 + " 4/4" in err


def test_polling_fallback_without_websocket(fake, tmp_path):
    fake.ws_enabled = False
    client, logs = _client(fake)
    job = client.run(API_WF, out_dir=tmp_path / "dl", timeout=30)
    assert len(job.files) == 2 and all(p.is_file() for p in job.files)
    assert any("polling /history" in m for m in logs)


def test_ui_workflow_is_converted_with_the_servers_object_info(fake, tmp_path):
    ui = {
        "last_node_id": 3, "last_link_id": 1, "version": 0.4,
        "nodes": [
            {"id": 1, "type": "EmptyImage", "mode": 0, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
             "widgets_values": [32, 16, 1, 255]},
            {"id": 2, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
             "outputs": [], "widgets_values": ["ui/conv"]},
            {"id": 3, "type": "Note", "mode": 0, "inputs": [], "outputs": [], "widgets_values": ["hello"]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
    }
    client, _ = _client(fake)
    job = client.run(ui, out_dir=tmp_path / "dl", timeout=30, overrides=["1.width=20"])
    sent = fake.prompts[0]
    assert sent["prompt"]["1"]["inputs"] == {"width": 20, "height": 16, "batch_size": 1, "color": 255}
    assert sent["prompt"]["2"]["inputs"] == {"images": ["1", 0], "filename_prefix": "ui/conv"}
    assert "3" not in sent["prompt"]
    assert sent["extra_data"]["extra_pnginfo"]["workflow"] == ui  # the UI graph travels with it, as from the browser
    assert Image.open(job.files[0]).size == (20, 16)


def test_validation_error_is_readable_and_cli_exits_3(fake, tmp_path, capsys):
    wf = json.loads(json.dumps(API_WF))
    wf["1"]["inputs"]["width"] = 0
    client, _ = _client(fake)
    with pytest.raises(PromptValidationError) as ei:
        client.run(wf, out_dir=tmp_path / "dl", timeout=30)
    msg = str(ei.value)
    assert "node 1 (EmptyImage, 'Orange'), input 'width': Value 0 smaller than min of 1" in msg
    assert "[value_smaller_than_min]" in msg and ei.value.node_errors["1"]["class_type"] == "EmptyImage"
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(wf))
    rc = cli_main(["queue", str(path), "--server", fake.url, "--out", str(tmp_path / "o")])
    assert rc == 3
    assert "input 'width'" in capsys.readouterr().err
    assert not fake.prompts  # nothing was queued


def test_execution_error_names_node_and_exception_and_cli_exits_4(fake, tmp_path, capsys):
    fake.fail_node = "2"
    client, _ = _client(fake)
    with pytest.raises(ExecutionFailed) as ei:
        client.run(API_WF, out_dir=tmp_path / "dl", timeout=30)
    assert ei.value.node_id == "2" and ei.value.node_type == "StepNode"
    assert "node 2 (StepNode) failed: RuntimeError: Expected tensor of shape" in str(ei.value)
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(API_WF))
    assert cli_main(["queue", str(path), "--server", fake.url, "--out", str(tmp_path / "o")]) == 4
    assert "node 2 (StepNode) failed" in capsys.readouterr().err


def test_timeout_interrupts_the_prompt_and_cli_exits_5(fake, tmp_path, capsys):
    fake.hang = True
    client, _ = _client(fake)
    t0 = time.monotonic()
    with pytest.raises(PromptTimeout) as ei:
        client.run(API_WF, out_dir=tmp_path / "dl", timeout=1.0)
    assert 0.9 <= time.monotonic() - t0 < 10
    assert fake.interrupts and fake.interrupts[0].get("prompt_id")
    assert "interrupted" in str(ei.value) and "--timeout" in str(ei.value)
    fake.interrupted.clear()
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(API_WF))
    assert cli_main(["queue", str(path), "--server", fake.url, "--out", str(tmp_path / "o"), "--timeout", "0.5"]) == 5
    assert "PromptTimeout" in capsys.readouterr().err


def test_upload_sets_the_input_and_the_server_reads_the_file(fake, tmp_path):
    src = tmp_path / "frame.png"
    Image.new("RGB", (12, 10), (10, 200, 30)).save(src)
    wf = {"1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
          "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "up"}}}
    client, logs = _client(fake)
    job = client.run(wf, out_dir=tmp_path / "dl", timeout=30, uploads=[f"1.image={src}"])
    assert (fake.root / "input/frame.png").read_bytes() == src.read_bytes()
    assert fake.prompts[0]["prompt"]["1"]["inputs"]["image"] == "frame.png"
    assert Image.open(job.files[0]).getpixel((0, 0)) == (10, 200, 30)
    with pytest.raises(FileNotFoundError, match="nosuch.png"):
        client.upload(tmp_path / "nosuch.png")


def test_refused_connection_retries_with_backoff_then_stops_clearly(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    client = ComfyClient(f"127.0.0.1:{port}", connect_retries=3, backoff=0.1, log=lambda m: None)
    t0 = time.monotonic()
    with pytest.raises(ServerUnreachable) as ei:
        client.run(API_WF, out_dir=tmp_path / "dl")
    assert time.monotonic() - t0 >= 0.1 + 0.2  # two back-off sleeps between three attempts
    msg = str(ei.value)
    assert f"127.0.0.1:{port}" in msg and "after 3 attempts" in msg and "--server" in msg
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(API_WF))
    assert cli_main(["queue", str(path), "--server", f"http://127.0.0.1:{port}", "--retries", "1"]) == 6


def test_server_that_comes_up_late_is_reached_by_retrying(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    holder = {}

    def start_later():
        time.sleep(0.4)
        holder["srv"] = FakeComfyUI(tmp_path / "late", port=port).__enter__()

    t = threading.Thread(target=start_later)
    t.start()
    try:
        client = ComfyClient(f"http://127.0.0.1:{port}", connect_retries=8, backoff=0.1, log=lambda m: None)
        job = client.run(API_WF, out_dir=tmp_path / "dl", timeout=30)
        assert len(job.files) == 2
    finally:
        t.join()
        if "srv" in holder:
            holder["srv"].__exit__(None, None, None)


def test_server_supplied_names_cannot_escape_the_output_folder(fake, tmp_path):
    fake.evil_names = True
    client, _ = _client(fake)
    # The server refuses '..' in /view, so the client must not even ask for a path outside --out.
    with pytest.raises(QueueError) as ei:
        client.run(API_WF, out_dir=tmp_path / "dl", timeout=30)
    assert "HTTP 400" in str(ei.value)
    assert not (tmp_path / "test_00001_.png").exists()
    from emovid_core.host.queue_client import _safe_rel

    assert _safe_rel("../../etc", "../passwd") == Path("etc/passwd")


def test_cli_queue_end_to_end(fake, tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(API_WF))
    rc = cli_main(["queue", str(path), "--server", fake.url, "--out", str(tmp_path / "o"), "--set", "2.steps=2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "downloaded" in out and (tmp_path / "o/emo/test_00001_.png").is_file()
    assert fake.prompts[0]["prompt"]["2"]["inputs"]["steps"] == 2
    with Image.open(io.BytesIO((tmp_path / "o/emo/test_00001_.png").read_bytes())) as im:
        assert im.size == (40, 24)


def test_partly_valid_prompt_fails_unless_allowed(fake, tmp_path):
    fake.partial = True
    wf = json.loads(json.dumps(API_WF))
    wf["5"] = {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}}
    client, logs = _client(fake)
    with pytest.raises(PromptValidationError) as ei:
        client.run(wf, out_dir=tmp_path / "dl", timeout=30)
    assert "node 5 (EmptyImage), input 'width'" in str(ei.value) and "--allow-partial" in str(ei.value)
    assert fake.interrupts and fake.interrupts[-1]["prompt_id"]  # the queued prompt was withdrawn
    fake.interrupted.clear()
    job = client.run(wf, out_dir=tmp_path / "dl2", timeout=30, allow_partial=True)
    assert len(job.files) == 2 and any("will be skipped" in m for m in logs)


def test_downloads_keep_files_already_in_out_unless_force(fake, tmp_path, capsys):
    """A file in --out that the server's output name collides with is kept; --force replaces it."""
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(API_WF))
    out = tmp_path / "o"
    mine = out / "emo" / "test_00001_.png"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own file")
    (out / "emo" / "test_00001_-1.png").write_bytes(b"also mine")
    rc = cli_main(["queue", str(path), "--server", fake.url, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    assert mine.read_bytes() == b"my own file"
    assert (out / "emo" / "test_00001_-1.png").read_bytes() == b"also mine"
    new = out / "emo" / "test_00001_-2.png"
    with Image.open(new) as im:
        assert im.size == (40, 24)
    assert f"{mine} exists and was kept; saved the new file as {new.name}" in captured.err
    assert f"downloaded {new}" in captured.out
    assert not list(out.rglob("*.part"))

    second = out / "emo" / "test_00002_.png"  # the fake server's counter moves on, as ComfyUI's does
    second.write_bytes(b"replace me")
    rc = cli_main(["queue", str(path), "--server", fake.url, "--out", str(out), "--force"])
    assert rc == 0
    with Image.open(second) as im:
        assert im.size == (40, 24)
    assert not (out / "emo" / "test_00002_-1.png").exists()


def test_a_large_upload_is_streamed_in_blocks_and_arrives_whole(fake, tmp_path, monkeypatch):
    """The multipart body is sent block by block from the file, never read into memory whole."""
    from emovid_core.host import queue_client

    src = tmp_path / "clip.mp4"
    src.write_bytes(os.urandom(3 * 65536 + 123))
    blocks = []
    real_iter = queue_client._FileBody.__iter__

    def counting_iter(self):
        for b in real_iter(self):
            blocks.append(len(b))
            yield b

    monkeypatch.setattr(queue_client._FileBody, "BLOCK", 65536)
    monkeypatch.setattr(queue_client._FileBody, "__iter__", counting_iter)
    client, _ = _client(fake)
    assert client.upload(src) == "clip.mp4"
    assert (fake.root / "input/clip.mp4").read_bytes() == src.read_bytes()
    assert max(blocks) == 65536 and len(blocks) >= 6  # head, 4 file blocks, tail
