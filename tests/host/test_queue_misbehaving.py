"""``emovid queue`` / ComfyClient against a server that misbehaves: drops a POST, redirects elsewhere, streams
forever, hangs, answers garbage; and a local disk that fails mid-download. Real HTTP on 127.0.0.1
(tests/host/misbehaving_server.py), real write errors (tests/helpers/write_errors.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from emovid_core.host.cli import main as cli_main
from emovid_core.host.queue_client import ComfyClient, ServerDropped, parse_size
from tests.helpers.write_errors import run_emovid_with_file_size_limit
from tests.host.misbehaving_server import (
    Misbehaving,
    close_without_reply,
    cut_short,
    endless,
    hang,
    raw_json,
    redirect,
    send,
    send_json,
    stall_after,
)

WF = {"9": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}


def _queue(srv, tmp_path: Path, capsys, *extra: str) -> tuple[int, str, float]:
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps(WF))
    t0 = time.monotonic()
    rc = cli_main(["queue", str(wf), "--server", srv.url, "--out", str(tmp_path / "out"), "--no-websocket",
                   "--retries", "2", *extra])
    return rc, capsys.readouterr().err, time.monotonic() - t0


def _left_in(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if p.is_file()) if out.exists() else []


def _last_line(err: str) -> str:
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_a_dropped_prompt_post_is_sent_once_and_said_to_be_maybe_queued(tmp_path, capsys):
    with Misbehaving({"POST /prompt": close_without_reply, "GET /history": lambda h, b: send_json(h, {})}) as srv:
        client = ComfyClient(srv.url, use_websocket=False, backoff=0.05, log=lambda m: None)
        with pytest.raises(ServerDropped) as ei:
            client.run(WF, out_dir=tmp_path / "dl", timeout=20)
        assert srv.count("POST", "/prompt") == 1  # never resent
        msg = str(ei.value)
        assert f"{srv.url} dropped the connection after receiving POST /prompt" in msg and "not resent" in msg
        assert f"may have been queued (prompt id {srv.prompt_ids[0]})" in msg
        assert "do not list it" in msg and "is the server running" not in msg
        # When the server did queue it, its queue says so (asked with a GET, which is safe to send).
        srv.routes["GET /queue"] = lambda h, b: send_json(h, {"queue_running": [[0, srv.prompt_ids[-1], {}, {}, []]],
                                                             "queue_pending": []})
        rc, err, _ = _queue(srv, tmp_path, capsys)
        assert srv.count("POST", "/prompt") == 2  # one per run
    line = _last_line(err)
    assert rc == 7 and "ServerDropped" in line and "the server's queue lists it" in line and "not resent" in line


@pytest.mark.parametrize("where", ["another host", "another scheme"])
def test_a_redirect_to_another_host_or_scheme_is_not_followed(tmp_path, capsys, where):
    with Misbehaving() as elsewhere, Misbehaving() as srv:
        loc = (f"{elsewhere.url}/view?filename=evil.bin" if where == "another host"
               else srv.url.replace("http://", "https://") + "/view?filename=out.bin")
        srv.routes["GET /view"] = redirect(loc)
        rc, err, _ = _queue(srv, tmp_path, capsys)
        assert elsewhere.requests == []  # not even asked
    line = _last_line(err)
    assert rc == 7 and "redirected (HTTP 302) to " + loc in line and "did not follow" in line
    assert _left_in(tmp_path / "out") == []


def test_a_redirect_within_the_server_is_followed(tmp_path, capsys):
    def view(h, b):
        if "moved" in h.path:
            return send(h, 200, b"the real bytes", "application/octet-stream")
        send(h, 307, b"", "text/plain", {"Location": "/view?filename=moved.bin"})

    with Misbehaving({"GET /view": view}) as srv:
        rc, err, _ = _queue(srv, tmp_path, capsys)
    assert rc == 0, err
    assert (tmp_path / "out" / "out.bin").read_bytes() == b"the real bytes"


@pytest.mark.parametrize("announced", [None, 10 * 1024**3])
def test_an_endless_download_stops_at_max_download_and_leaves_no_part_file(tmp_path, capsys, announced):
    with Misbehaving({"GET /view": endless(content_length=announced)}) as srv:
        rc, err, dt = _queue(srv, tmp_path, capsys, "--max-download", "8M", "--timeout", "60")
    line = _last_line(err)
    assert rc == 8 and "DownloadFailed" in line
    assert ("announces 10.0 GiB, over the limit of 8.0 MiB" if announced else "larger than the limit of 8.0 MiB") in line
    assert "--max-download" in line and "/view?filename=out.bin" in line
    assert _left_in(tmp_path / "out") == []  # no out.bin, no out.bin.part
    assert dt < 30


@pytest.mark.parametrize("case", ["trickles forever", "stalls mid-body"])
def test_timeout_bounds_a_download_that_never_ends(tmp_path, capsys, case):
    behaviour = endless(rate=100_000, chunk=2048) if case == "trickles forever" else stall_after(b"x" * 1000, 10**9)
    with Misbehaving({"GET /view": behaviour}) as srv:
        rc, err, dt = _queue(srv, tmp_path, capsys, "--timeout", "1.5")
    line = _last_line(err)
    assert rc == 5 and "reading " in line and "/view?filename=out.bin" in line and "--timeout of 1.5 s ran out" in line
    assert 1.4 <= dt < 4.5
    assert _left_in(tmp_path / "out") == []


@pytest.mark.parametrize("route", ["POST /prompt", "GET /history", "every route"])
def test_a_hanging_server_is_bounded_by_timeout(tmp_path, capsys, route):
    routes = {r: hang for r in ("POST /prompt", "GET /history", "GET /queue", "POST /interrupt", "POST /queue")} \
        if route == "every route" else {route: hang}
    with Misbehaving(routes) as srv:
        rc, err, dt = _queue(srv, tmp_path, capsys, "--timeout", "1.5")
        prompts = srv.count("POST", "/prompt")
    line = _last_line(err)
    assert rc == 5 and "--timeout of 1.5 s ran out" in line and prompts == 1
    assert 1.4 <= dt < 1.5 + 1.0 + 2.0  # the deadline, the 1 s of clean-up grace, slack for a busy machine
    if route != "GET /history":
        assert "may have been queued" in line
    else:
        assert "it was interrupted" in line  # the server still answers /interrupt


def _entry_is_a_list(h, b):
    send_json(h, {h.path.rsplit("/", 1)[-1]: [1, 2]})


def _node_output_is_a_list(h, b):
    send_json(h, {h.path.rsplit("/", 1)[-1]: {"outputs": {"9": ["out.bin"]}, "status": {"status_str": "success"}}})


@pytest.mark.parametrize("route,behaviour,expect", [
    ("GET /history", cut_short(b'{"abc": ', 500), "the body was cut short after 8 bytes of 500 bytes"),
    ("GET /history", raw_json("<html>502 Bad Gateway</html>"), "answered HTTP 200 with a body that is not JSON"),
    ("GET /history", raw_json("[1, 2]"), "expected a JSON object, got a JSON list ([1, 2])"),
    ("GET /history", _entry_is_a_list, "the entry of prompt"),
    ("GET /history", _node_output_is_a_list, "/history: the outputs of node 9: expected a JSON object, got a JSON list"),
    ("POST /prompt", raw_json('["queued"]'), "/prompt: expected a JSON object, got a JSON list"),
    ("GET /view", cut_short(b"abc", 100), "/view?filename=out.bin&subfolder=&type=output: the body was cut short after 3 bytes"),
])
def test_a_bad_answer_is_one_clear_error_with_the_url_and_exit_7(tmp_path, capsys, route, behaviour, expect):
    with Misbehaving({route: behaviour}) as srv:
        rc, err, _ = _queue(srv, tmp_path, capsys)
    line = _last_line(err)
    assert rc == 7 and line.startswith("emovid queue: BadResponse: ") and expect in line
    assert srv.url in line
    assert _left_in(tmp_path / "out") == []


def test_a_write_error_during_a_download_names_the_file_and_leaves_no_part_file(tmp_path):
    body = bytes(range(256)) * (4 * 4096)  # 4 MiB
    with Misbehaving({"GET /view": lambda h, b: send(h, 200, body, "application/octet-stream")}) as srv:
        wf = tmp_path / "wf.json"
        wf.write_text(json.dumps(WF))
        out = tmp_path / "out"
        proc = run_emovid_with_file_size_limit(["queue", str(wf), "--server", srv.url, "--out", str(out),
                                                "--no-websocket"], limit=1 << 20)
    line = _last_line(proc.stderr)
    assert proc.returncode == 8, proc.stderr
    assert f"cannot write {out / 'out.bin'}: File too large" in line
    assert _left_in(out) == []


def test_parse_size():
    assert parse_size("4GiB") == parse_size("4G") == 4 * 1024**3
    assert parse_size("500M") == 500 * 1024**2 and parse_size("1024") == 1024
    with pytest.raises(ValueError, match="500X"):
        parse_size("500X")
