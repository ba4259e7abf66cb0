"""Open the example workflows in a real ComfyUI frontend (headless Chromium) and report what it draws.

    python scripts/frontend_check.py --server http://127.0.0.1:8188 --out shots/ [NAME ...]

Needs a running ComfyUI with this pack in custom_nodes/ and a Chromium binary (``--chromium``). For each
example it loads the file the template browser serves (``/api/workflow_templates/<pack>/<name>.json``) with
``app.loadGraphData``, as Browse Templates does, then saves a 1440 x 900 screenshot and reports each node's
stored size against the frontend's ``computeSize()`` and any two nodes whose drawn rectangles overlap.
It also opens Browse Templates on the pack's category and saves ``template_browser.png``. Exit status 1 when a
node is drawn bigger than the file says or nodes overlap. It sets three user settings on that server (no
first-start template dialog, no missing-model or missing-node warnings): use a throw-away server
(``--base-directory``). A development check, not a test (no browser on CI).
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """(async () => {
  const app = window.app;
  // A Markdown note's rendered text, top of the box to the bottom of its last block, in canvas units.
  const textHeight = (n) => {
    const box = n.widgets?.[0]?.element?.querySelector('.tiptap');
    const last = box?.lastElementChild;
    if (!last) return undefined;
    return (last.getBoundingClientRect().bottom - box.getBoundingClientRect().top) / app.canvas.ds.scale;
  };
  const r = await fetch('/api/workflow_templates');
  const listed = await r.json();
  const wf = await (await fetch('/api/workflow_templates/' + PACK + '/' + NAME + '.json')).json();
  await app.loadGraphData(wf, true, true, NAME);
  await new Promise(res => setTimeout(res, 1500));
  const nodes = app.graph.nodes.map(n => ({id: n.id, type: n.type, title: n.title,
      size: Array.from(n.size), min: Array.from(n.computeSize()), rect: Array.from(n.boundingRect),
      text_height: n.type === 'MarkdownNote' ? textHeight(n) : undefined}));
  const groups = app.graph.groups.map(g => ({title: g.title, rect: Array.from(g._bounding),
      nodes: Array.from(g.children || []).map(c => c.id)}));
  return JSON.stringify({listed, nodes, groups, ds: {scale: app.canvas.ds.scale, offset: Array.from(app.canvas.ds.offset)}});
})()"""


# A first start opens the template dialog and a file naming absent models opens a warning: both hide the canvas.
QUIET_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Workflow.ShowMissingModelsWarning": False,
                  "Comfy.Workflow.ShowMissingNodesWarning": False}

BROWSE = """(async () => {
  await window.app.extensionManager.command.execute('Comfy.BrowseTemplates');
  await new Promise(res => setTimeout(res, 1500));
  const item = [...document.querySelectorAll('li, a, button, div')].reverse()
      .find(e => e.children.length === 0 && e.textContent.trim() === LABEL);
  if (item) item.click();
  await new Promise(res => setTimeout(res, 2500));
  return [...document.querySelectorAll('[data-testid^="template-workflow-"]')].map(e => e.dataset.testid);
})()"""


def _post(url: str, value) -> None:
    req = urllib.request.Request(url, data=json.dumps(value).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def _get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Browser:
    """Chromium driven over the DevTools protocol (websocket-client is a dependency of the pack)."""

    def __init__(self, chromium: str, port: int = 9333):
        self.profile = tempfile.mkdtemp(prefix="emovid-chromium-")
        self.proc = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                      f"--remote-debugging-port={port}", "--remote-allow-origins=*",
                                      f"--user-data-dir={self.profile}", "--window-size=1440,900",
                                      "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                pages = [t for t in _get(f"http://127.0.0.1:{port}/json") if t["type"] == "page"]
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("chromium did not start its DevTools endpoint")
        import websocket

        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=120)
        self.n = 0

    def call(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, js: str):
        res = self.call("Runtime.evaluate", expression=js, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(res["exceptionDetails"].get("exception", {}).get("description", res))
        return res["result"].get("value")

    def close(self):
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def overlapping(nodes: list[dict]) -> list[tuple[int, int]]:
    def hit(a, b):
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]

    return [(a["id"], b["id"]) for i, a in enumerate(nodes) for b in nodes[i + 1:] if hit(a["rect"], b["rect"])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="workflow stems (default: every workflows/*.json)")
    ap.add_argument("--server", default="http://127.0.0.1:8188")
    ap.add_argument("--pack", default="ComfyUI-EmoVid", help="the pack's folder name in custom_nodes/")
    ap.add_argument("--out", type=Path, default=Path("frontend_shots"))
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args(argv)
    names = args.names or sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
    args.out.mkdir(parents=True, exist_ok=True)
    for key, value in QUIET_SETTINGS.items():
        _post(f"{args.server}/api/settings/{key}", value)
    browser = Browser(args.chromium)
    bad = 0
    try:
        browser.call("Emulation.setDeviceMetricsOverride", width=1440, height=900, deviceScaleFactor=1, mobile=False)
        browser.call("Page.enable")
        browser.call("Page.navigate", url=args.server)
        for _ in range(150):
            time.sleep(0.4)
            if browser.evaluate("!!(window.app && window.app.graph && window.app.canvas)"):
                break
        time.sleep(3)
        report = {}
        for name in names:
            js = PROBE.replace("PACK", json.dumps(args.pack)).replace("NAME", json.dumps(name))
            data = json.loads(browser.evaluate(js))
            shot = browser.call("Page.captureScreenshot", format="png")
            (args.out / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
            grown = [n for n in data["nodes"] if n["min"][0] > n["size"][0] + 0.5 or n["min"][1] > n["size"][1] + 0.5]
            clashes = overlapping(data["nodes"])
            report[name] = data
            bad += bool(grown or clashes)
            print(f"{name}: {len(data['nodes'])} nodes, {len(data['groups'])} groups, zoom {data['ds']['scale']:.2f}, "
                  f"grown by the frontend: {[(n['id'], n['type']) for n in grown]}, overlaps: {clashes}")
        listed = report[names[0]]["listed"].get(args.pack, []) if names else []
        print(f"/workflow_templates lists for {args.pack}: {sorted(listed)}")
        # The template browser on this pack's category (labelled by locales/en/main.json).
        label = json.loads((ROOT / "locales" / "en" / "main.json").read_text())["templateWorkflows"]["category"]
        cards = browser.evaluate(BROWSE.replace("LABEL", json.dumps(label.get(args.pack, args.pack))))
        shot = browser.call("Page.captureScreenshot", format="png")
        (args.out / "template_browser.png").write_bytes(base64.b64decode(shot["data"]))
        print(f"template browser cards: {cards}")
        (args.out / "report.json").write_text(json.dumps(report, indent=1))
    finally:
        browser.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
