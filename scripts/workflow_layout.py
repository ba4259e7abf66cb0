"""How the ComfyUI frontend sizes nodes, and a stage layout for the example workflows built on it.

Used by scripts/build_workflows.py (to write sizes and positions) and tests/host/test_workflows.py (to check the
files). The facts below were read from ComfyUI frontend 1.27.10, the version ComfyUI 0.3.64 pins
(the ``comfyui-frontend-package`` wheel and its source maps; repository Comfy-Org/ComfyUI_frontend):

* ``app.loadGraphData`` (src/scripts/app.ts) sets every loaded node to ``max(stored size, node.computeSize())``:
  a stored size can make a node bigger, never smaller. A size below ``computeSize`` is silently grown on
  screen, which is how the old hand-guessed heights made nodes overlap.
* ``LGraphNode.computeSize`` (src/lib/litegraph/src/LGraphNode.ts) returns the height *below* the title bar:
  ``rows * NODE_SLOT_HEIGHT`` (rows = max(non-widget inputs, outputs, 1)) + for each visible widget its
  height + 4, + 8 after the widgets, + 6. The title bar (``NODE_TITLE_HEIGHT`` 30) is drawn above ``pos[1]``.
* Widget heights: combo, number, toggle, single-line text, button and the seed's "control after generate"
  combo draw ``NODE_WIDGET_HEIGHT`` (20). DOM widgets (multiline STRING textarea, Markdown note) report
  ``computeLayoutSize().minHeight``, which falls back to 50 when the element sets no CSS min height
  (src/scripts/domWidget.ts). Output previews appear after a run: images through ImagePreviewWidget
  (minHeight 220), videos through the ``video-preview`` DOM widget (256 until the video's aspect is known).
* Width: max(title text + 30 + 9.9 at 14px Arial, slot labels + 2·20 (+5) at 12px Arial, widest widget label
  + 104 (widget margins, arrows and min value width), 140 or 210 with widgets); a node added from the menu
  is made 60 px wider when it has widgets, and at least 400 × 200 with a multiline or Markdown widget
  (``#setInitialSize`` in src/services/litegraphService.ts; ``minNodeSize`` in useStringWidget.ts).
* Groups: ``bounding: [x, y, w, h]`` with a title band of ``font_size * 1.4`` (LGraphGroup.titleHeight);
  "fit group to nodes" pads node bounding rects (title bar included) by 10. A node belongs to the group that
  contains its centre.

The model was checked against the real thing: tests/data/frontend_measured.json holds ``computeSize()`` of every
node type in the examples as frontend 1.27.10 returned it in headless Chromium (scripts/frontend_check.py);
heights agree exactly, widths within a pixel. The frontend does not recompute a smaller size, so leaving
``size`` to the frontend is not an option either: its workflow schema requires ``size`` on every node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# LiteGraph constants (LiteGraphGlobal.ts) and BaseWidget margins, frontend 1.27.10.
NODE_TITLE_HEIGHT = 30
NODE_SLOT_HEIGHT = 20
NODE_WIDGET_HEIGHT = 20
NODE_WIDTH = 140
TITLE_FONT_PX = 14  # NODE_TEXT_SIZE, Arial (titleFontStyle)
SLOT_FONT_PX = 12  # NODE_SUBTEXT_SIZE, Arial (innerFontStyle)
WIDGET_PADDING = 42 + 2 * (15 + 6 + 10)  # minValueWidth + 2 * (margin + arrowMargin + arrowWidth)
DOM_WIDGET_MIN_HEIGHT = 50
MULTILINE_MIN_NODE = (400, 200)
NEW_NODE_EXTRA_WIDTH = 60
IMAGE_PREVIEW_HEIGHT = 220
VIDEO_PREVIEW_HEIGHT = 256
GROUP_FONT_SIZE = 24
GROUP_TITLE_HEIGHT = GROUP_FONT_SIZE * 1.4
MARKDOWN_FONT_PX = 10  # Comfy.TextareaWidget.FontSize default; .comfy-markdown .tiptap uses it

# Nodes whose output (or loaded file) the frontend previews inside the node after a run.
MEDIA_PREVIEW = {"PreviewImage": IMAGE_PREVIEW_HEIGHT, "SaveImage": IMAGE_PREVIEW_HEIGHT,
                 "LoadImage": IMAGE_PREVIEW_HEIGHT, "SaveVideo": VIDEO_PREVIEW_HEIGHT,
                 "LoadVideo": VIDEO_PREVIEW_HEIGHT, "EmoVidSaveVideo": VIDEO_PREVIEW_HEIGHT}
NOTE_TYPES = ("Note", "MarkdownNote")

# Advance widths of Arial (= Liberation Sans, metric-compatible) for ASCII 32..126, in 1/1000 em. The frontend
# measures text with canvas measureText in Arial; with these the widths come out as on screen.
_ARIAL = [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556,
          556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278,
          500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
          556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
          278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584]


def text_width(text: str, px: float) -> float:
    """Width of ``text`` in Arial at ``px`` pixels (non-ASCII counted as a wide glyph)."""
    return px * sum(_ARIAL[ord(c) - 32] if 32 <= ord(c) < 127 else 1000 for c in text) / 1000


@dataclass
class Widget:
    label: str
    height: float = NODE_WIDGET_HEIGHT
    dom: bool = False  # a DOM widget (textarea, Markdown): the node gets at least MULTILINE_MIN_NODE


@dataclass
class NodeShape:
    """What computeSize reads from a node: its title, slot labels and widgets."""

    title: str
    inputs: list[str] = field(default_factory=list)  # sockets that are not widgets
    outputs: list[str] = field(default_factory=list)
    widgets: list[Widget] = field(default_factory=list)
    widget_inputs: list[str] = field(default_factory=list)  # widget input slots (their labels set a min width)
    preview: float = 0.0  # height of the media preview the node shows after a run


def compute_size(shape: NodeShape) -> tuple[float, float]:
    """``LGraphNode.computeSize`` of frontend 1.27.10: the least size the frontend draws this node at.

    Width and height below the title bar; a stored size under it is grown on load (see the module docstring).
    """
    rows = max(len(shape.inputs), len(shape.outputs), 1)
    title_w = NODE_TITLE_HEIGHT + text_width(shape.title, TITLE_FONT_PX) + NODE_TITLE_HEIGHT * 0.33
    in_w = max((text_width(t, SLOT_FONT_PX) for t in shape.inputs), default=0)
    out_w = max((text_width(t, SLOT_FONT_PX) for t in shape.outputs), default=0)
    slots_w = in_w + out_w + 2 * NODE_SLOT_HEIGHT + (5 if in_w and out_w else 0)
    widget_w = max((text_width(t, SLOT_FONT_PX) for t in shape.widget_inputs), default=0)
    widget_w = widget_w + WIDGET_PADDING if widget_w else 0
    width = max(slots_w, widget_w, title_w, NODE_WIDTH * (1.5 if shape.widgets else 1))
    height = rows * NODE_SLOT_HEIGHT
    if shape.widgets:
        height += sum(w.height + 4 for w in shape.widgets) + 8
    return width, height + 6


def frontend_size(shape: NodeShape) -> tuple[int, int]:
    """The size the frontend gives this node when a user adds it, plus the preview a run will add.

    ``#setInitialSize``: computeSize, 60 px wider with widgets, at least 400 x 200 with a multiline or
    Markdown widget. The preview (images 220, video 256, + 4) is added so that a node does not grow into its
    neighbour after the first queue.
    """
    width, height = compute_size(shape)
    if shape.widgets:
        width += NEW_NODE_EXTRA_WIDTH
    if any(w.dom for w in shape.widgets):
        width, height = max(width, MULTILINE_MIN_NODE[0]), max(height, MULTILINE_MIN_NODE[1])
    if shape.preview:
        height += shape.preview + 4
    return int(-(-width // 1)), int(-(-height // 1))


def markdown_height(text: str, width: float) -> float:
    """Height the Markdown note widget needs to show ``text`` without scrolling, at ``width`` px wide.

    The note renders with the textarea font size (10 px Arial) and browser-default block styles: h1 2em bold,
    h2 1.5em bold, paragraph and list margins 1em, list indent 40 px, line height 1.15; 0.5em padding. Lines
    wrap by the Arial widths (bold 10 % wider). Checked against the text heights frontend 1.27.10 renders
    (scripts/frontend_check.py): this estimate is 4-24 % above them.
    """
    px = MARKDOWN_FONT_PX
    inner = width - 2 * 0.5 * px - 12  # padding and the scrollbar gutter
    total, in_list = px, False
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            in_list = False
            continue
        size, indent, margin, bold = px, 0.0, px, 1.0
        if line.startswith("## "):
            size, line, margin, bold = px * 1.5, line[3:], px * 1.5 * 0.83, 1.1
        elif line.startswith("# "):
            size, line, margin, bold = px * 2, line[2:], px * 2 * 0.67, 1.1
        elif line.startswith("- "):
            indent, line = 40.0, line[2:]
            margin = 0 if in_list else px
            in_list = True
        lines, cur = 1, 0.0
        for word in line.replace("**", "").replace("`", "").split(" "):
            w = text_width(word + " ", size) * bold
            if cur and cur + w > inner - indent:
                lines, cur = lines + 1, w
            else:
                cur += w
        total += lines * size * 1.15 + margin
    return total * 1.05


def note_size(title: str, text: str, width: int) -> tuple[int, int]:
    """A Markdown note ``width`` wide and tall enough for its text (never below its computeSize)."""
    w, h = compute_size(NodeShape(title, widgets=[Widget("text", DOM_WIDGET_MIN_HEIGHT, dom=True)]))
    # the text box is the node less 22 px (measured); +5 for its bottom padding
    return int(max(w, width)), int(max(h, markdown_height(text, width) + 27))


# ------------------------------------------------------------------------------------------ rectangles


def node_rect(node: dict) -> tuple[float, float, float, float]:
    """A node's on-screen rectangle [x, y, w, h] including the title bar drawn above pos[1]."""
    x, y = node["pos"]
    w, h = node["size"]
    return x, y - NODE_TITLE_HEIGHT, w, h + NODE_TITLE_HEIGHT


def overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def contains(outer, inner) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1] and inner[0] + inner[2] <= outer[0] + outer[2]
            and inner[1] + inner[3] <= outer[1] + outer[3])


def bounds(rects) -> tuple[float, float, float, float]:
    rects = list(rects)
    x0 = min(r[0] for r in rects)
    y0 = min(r[1] for r in rects)
    return x0, y0, max(r[0] + r[2] for r in rects) - x0, max(r[1] + r[3] for r in rects) - y0


def workflow_bounds(ui: dict) -> tuple[float, float, float, float]:
    """Bounding box of every node (title bars included) and group of a UI workflow."""
    return bounds([node_rect(n) for n in ui["nodes"]] + [tuple(g["bounding"]) for g in ui.get("groups", [])])


# ------------------------------------------------------------------------------------------ stage layout

# In a 1440 x 900 window frontend 1.27.10 puts the canvas at (40, 40), 1400 x 860 (a 40 px menu bar on top,
# a 40 px side bar on the left), and its workflow tabs cover the canvas's top 37 px (measured in headless
# Chromium, scripts/frontend_check.py). extra.ds maps canvas units to that canvas: the view keeps clear of the tabs.
VIEW_LEFT, VIEW_TOP = 0, 37
SCREEN = (1400 - VIEW_LEFT, 860 - VIEW_TOP)
# Every workflow opens at 75 % zoom or more on that usable 1400 x 823: its bounding box is at most
# 1866 x 1097 canvas units, less the 20 px margin zoom_to_fit keeps on each side.
MIN_ZOOM = 0.75
FIT = (int(SCREEN[0] / MIN_ZOOM), int(SCREEN[1] / MIN_ZOOM))
GAP = 32  # between groups and notes
NODE_GAP = 20  # between nodes in a group (below one node's body, above the next one's title bar)
GROUP_PAD = 10  # what "fit group to nodes" pads (LGraphGroup.resizeTo)


@dataclass
class Block:
    """One thing placed in the column flow: a titled group of nodes (a stage) or a lone note."""

    nodes: list[dict]
    title: str | None = None  # None: a note outside any group
    color: str | None = None

    @property
    def top(self) -> float:
        return GROUP_TITLE_HEIGHT + GROUP_PAD if self.title else 0

    @property
    def pad(self) -> float:
        return GROUP_PAD if self.title else 0

    def columns(self, max_h: float) -> list[list[dict]]:
        """The block's nodes stacked in sub-columns no taller than ``max_h`` (one unless the stage is tall)."""
        cols: list[list[dict]] = [[]]
        h = 0.0
        for n in self.nodes:
            need = NODE_TITLE_HEIGHT + n["size"][1]
            if cols[-1] and self.top + h + NODE_GAP + need + self.pad > max_h:
                cols.append([])
                h = 0.0
            h += (NODE_GAP if cols[-1] else 0) + need
            cols[-1].append(n)
        return cols

    def measure(self, max_h: float) -> tuple[float, float]:
        cols = self.columns(max_h)
        node_w = max(n["size"][0] for n in self.nodes)
        height = max(sum(NODE_TITLE_HEIGHT + n["size"][1] for n in c) + NODE_GAP * (len(c) - 1) for c in cols)
        return len(cols) * node_w + (len(cols) - 1) * NODE_GAP + 2 * self.pad, self.top + height + self.pad

    def place(self, x: float, y: float, width: float, max_h: float) -> dict | None:
        """Put the nodes at (x, y), widened to fill ``width``; return the stage's group (None for a note)."""
        cols = self.columns(max_h)
        node_w = (width - 2 * self.pad - (len(cols) - 1) * NODE_GAP) / len(cols)
        bottom = y
        for i, col in enumerate(cols):
            cy = y + self.top
            for n in col:
                n["size"][0] = int(node_w)
                n["pos"] = [round(x + self.pad + i * (node_w + NODE_GAP)), round(cy + NODE_TITLE_HEIGHT)]
                cy += NODE_TITLE_HEIGHT + n["size"][1] + NODE_GAP
            bottom = max(bottom, cy - NODE_GAP)
        if not self.title:
            return None
        return {"id": 0, "title": self.title,
                "bounding": [round(x), round(y), round(width), round(bottom + self.pad - y)],
                "color": self.color, "font_size": GROUP_FONT_SIZE, "flags": {}}


def _flow(blocks: list[Block], cap: float) -> list[list[tuple[Block, float, float]]]:
    """Blocks top to bottom in columns no taller than ``cap`` (a taller block wraps inside its group)."""
    columns: list[list[tuple[Block, float, float]]] = [[]]
    used = 0.0
    for block in blocks:
        w, h = block.measure(cap)
        if columns[-1] and used + GAP + h > cap:
            columns.append([])
            used = 0.0
        used += (GAP if columns[-1] else 0) + h
        columns[-1].append((block, w, h))
    return columns


def _extent(columns) -> tuple[float, float]:
    width = sum(max(w for _, w, _ in col) for col in columns) + GAP * (len(columns) - 1)
    height = max(sum(h for _, _, h in col) + GAP * (len(col) - 1) for col in columns)
    return width, height


def zoom_to_fit(width: float, height: float, screen=SCREEN, margin: float = 20) -> float:
    return min(1.0, screen[0] / (width + 2 * margin), screen[1] / (height + 2 * margin))


def layout(blocks: list[Block]) -> list[dict]:
    """Place the blocks in reading order (top to bottom, then the next column to the right) at the column
    height that shows the whole graph largest on a 1440 x 900 screen; returns the groups (ids from 1).

    Blocks in one column share its width: nodes are widened to it, which the frontend keeps."""
    best = None
    for cap in range(400, FIT[1] + 1, 20):
        cols = _flow(blocks, cap)
        w, h = _extent(cols)
        if zoom_to_fit(w, h) >= MIN_ZOOM:
            key = (zoom_to_fit(w, h), -w * h)
            if best is None or key > best[0]:
                best = (key, cap, cols)
    if best is None:
        w, h = _extent(_flow(blocks, FIT[1]))
        raise ValueError(f"the stages need {w:.0f} x {h:.0f} canvas units at the least, more than a "
                         f"{SCREEN[0]} x {SCREEN[1]} canvas shows at {MIN_ZOOM:.0%} zoom with a 20 px margin "
                         f"(1440 x 900 window): re-arrange the stages or split the workflow in two")
    _, cap, cols = best
    groups, x = [], 0.0
    for col in cols:
        col_w = max(w for _, w, _ in col)
        y = 0.0
        for block, _, h in col:
            group = block.place(x, y, col_w, cap)
            if group:
                group["id"] = len(groups) + 1
                groups.append(group)
            y += h + GAP
        x += col_w + GAP
    return groups


def view_for(ui: dict) -> dict:
    """``extra.ds`` (scale, offset) that shows the whole graph centred in the free part of a 1440 x 900 window
    on load (the frontend restores it: Comfy.EnableWorkflowViewRestore is on by default). Screen = (canvas +
    offset) * scale."""
    x, y, w, h = workflow_bounds(ui)
    scale = round(zoom_to_fit(w, h), 3)
    return {"scale": scale, "offset": [round((VIEW_LEFT + (SCREEN[0] - w * scale) / 2) / scale - x, 1),
                                       round((VIEW_TOP + (SCREEN[1] - h * scale) / 2) / scale - y, 1)]}


def node_shape(node: dict, info: dict) -> NodeShape:
    """The :class:`NodeShape` of a UI-format node, its widgets read from its /object_info entry."""
    from emovid_core.host.workflow_convert import _has_control, _has_upload, _is_widget, input_specs

    if node["type"] in NOTE_TYPES:
        return NodeShape(node.get("title") or node["type"],
                         widgets=[Widget("text", DOM_WIDGET_MIN_HEIGHT, dom=True)])
    entry = info[node["type"]]
    widgets, labels = [], []
    for spec in input_specs(entry):
        if not _is_widget(spec):
            continue
        multiline = spec.type == "STRING" and spec.options.get("multiline")
        widgets.append(Widget(spec.name, DOM_WIDGET_MIN_HEIGHT if multiline else NODE_WIDGET_HEIGHT,
                              dom=bool(multiline)))
        labels.append(spec.name)
        if _has_control(spec):
            widgets.append(Widget("control_after_generate"))
        if _has_upload(spec):  # the upload button; its input slot is labelled like the button
            widgets.append(Widget("upload"))
            labels.append("choose file to upload")
    return NodeShape(
        title=node.get("title") or entry.get("display_name") or node["type"],
        inputs=[s["name"] for s in node.get("inputs", []) if not s.get("widget")],
        outputs=[o["name"] for o in node.get("outputs", [])],
        widgets=widgets, widget_inputs=labels, preview=MEDIA_PREVIEW.get(node["type"], 0.0))
