"""The one drawing canvas: as wide as its column, large Clear and Undo buttons, the drawing kept across pages.

streamlit-drawable-canvas takes a size in pixels and has no option to hide its toolbar, which is
invisible on touch screens yet catches taps near the top-right corner (a tap there wiped a
drawing). A small component of our own (FIT, no iframe) reports the column's width and the
window's height, so the canvas is sized to fit, and hides that toolbar: Undo and Clear are
buttons of the page instead. Undo and Clear hand the canvas a new initial drawing; the strokes
are kept in Session State, so leaving the page and coming back shows the same drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from ui import views

MIN_HEIGHT = 160  # px: room for a digit drawn with a finger
MAX_WIDTH = 900  # px: about twelve digits as tall as a single one
ASPECT = 0.6  # height / width: one digit fills the middle, a few digits fit side by side
WINDOW_SHARE = 0.45  # at most this share of the window's height, so the reading fits below (or beside) it
PENS = {"Thin": 0.05, "Medium": 0.07, "Thick": 0.1}  # stroke width / canvas height: the same ink at any size
DEFAULT_PEN = "Medium"
GUESS_PHONE = (352, 844)  # (column width, window height) before the probe has measured them: a phone upright
GUESS_DESKTOP = (456, 800)  # and a laptop's window (1280x800) with the sidebar open
STEP = 8  # px: widths are reported in steps, so a scrollbar coming and going does not resize the canvas

_FIT_JS = """
const TOOLBAR_STYLE = '.dc-toolbar { display: none !important; }';

function hideToolbars() {
  // The canvas's own toolbar lives in its shadow root, where page CSS cannot reach: the rule goes into every
  // component's shadow root as soon as it exists (before the canvas has built its toolbar in there).
  for (const host of document.querySelectorAll('[data-testid^="stBidiComponent"]')) {
    const root = host.shadowRoot;
    if (root && !root.querySelector('style[data-no-toolbar]')) {
      const style = document.createElement('style');
      style.dataset.noToolbar = '';
      style.textContent = TOOLBAR_STYLE;
      root.prepend(style);
    }
  }
}

function hideToolbarsSoon() {
  hideToolbars();
  requestAnimationFrame(hideToolbars);  // a shadow root attached just after its host was inserted
}

// Streamlit calls this on every rerun that changes `data`; the observers are set up once per element.
const probes = new WeakMap();

export default function ({ parentElement, setStateValue, data }) {
  let probe = probes.get(parentElement);
  if (probe) {
    probe.setStateValue = setStateValue;
    return probe.cleanup;
  }
  const element = parentElement.querySelector('.fit-probe');
  probe = { setStateValue, last: data.known };  // what the canvas is sized for already: no rerun for that
  const report = () => {
    const width = Math.floor(element.getBoundingClientRect().width / data.step) * data.step;
    const height = window.innerHeight;
    const last = probe.last;
    if (width > 0 && (last.width !== width || Math.abs(last.height - height) > 40)) {
      probe.last = { width, height };
      probe.setStateValue('size', probe.last);
    }
  };
  const resized = new ResizeObserver(report);
  resized.observe(element);
  window.addEventListener('resize', report);
  const mounted = new MutationObserver(hideToolbarsSoon);
  mounted.observe(document.body, { childList: true, subtree: true });
  hideToolbarsSoon();
  report();
  probe.cleanup = () => {
    resized.disconnect();
    mounted.disconnect();
    window.removeEventListener('resize', report);
    probes.delete(parentElement);
  };
  probes.set(parentElement, probe);
  return probe.cleanup;
}
"""

FIT = st.components.v2.component(
    "digit_recognizer.canvas_fit",
    html='<div class="fit-probe" style="width: 100%; height: 0"></div>',
    js=_FIT_JS,
    isolate_styles=False,
)


@dataclass(frozen=True)
class Drawing:
    """What is on the canvas: the strokes (Fabric.js objects) and the PNG the canvas rendered of them."""

    objects: list[dict]
    png: bytes | None  # None until the canvas has sent a picture of these strokes


def canvas_size(width: int, window_height: int) -> tuple[int, int]:
    """The canvas's (width, height) for a column `width` px wide in a window `window_height` px tall."""
    width = max(200, min(width, MAX_WIDTH))
    height = round(min(width * ASPECT, window_height * WINDOW_SHARE))
    return width, max(MIN_HEIGHT, height)


def scaled(objects: list[dict], factor: float) -> list[dict]:
    """Strokes moved and scaled by `factor` (the canvas was resized: a turned phone, a wider window)."""
    return [
        obj
        | {
            "left": obj.get("left", 0) * factor,
            "top": obj.get("top", 0) * factor,
            "scaleX": obj.get("scaleX", 1) * factor,
            "scaleY": obj.get("scaleY", 1) * factor,
        }
        for obj in objects
    ]


class Canvas:
    """One canvas's state in Session State under `key`: its strokes, its last picture, its size and pen."""

    def __init__(self, key: str) -> None:
        self.key = key
        state = st.session_state.setdefault(
            f"{key}_state", {"objects": [], "png": None, "size": None, "seed": {"objects": []}, "loads": 0}
        )
        self.state = state

    def reseed(self, objects: list[dict], png: bytes | None = None) -> None:
        """Load these strokes into the canvas: a new initial drawing, which a mounted canvas draws and sends
        back (`png` is their picture when it is known already: a canvas mounted afresh sends nothing)."""
        self.state["loads"] += 1
        self.state["seed"] = {"objects": objects, "load": self.state["loads"]}
        self.state["objects"] = objects
        self.state["png"] = png

    def undo(self) -> None:
        """Remove the last stroke."""
        self.reseed(self.state["objects"][:-1])

    def clear(self) -> None:
        """Remove every stroke."""
        self.reseed([])

    def resize(self, size: tuple[int, int]) -> None:
        """Fit the canvas to a new size, keeping the drawing in proportion."""
        old = self.state["size"]
        self.state["size"] = size
        if old and self.state["objects"]:
            self.reseed(scaled(self.state["objects"], size[1] / old[1]))

    def drawing(self) -> Drawing:
        return Drawing(self.state["objects"], self.state["png"])


def arrive(key: str = "draw") -> None:
    """Call on every full run of the page (not from its fragment): arriving on the page mounts the canvas
    afresh, so it starts from the strokes kept in Session State instead of a blank."""
    pad = Canvas(key)
    if pad.state["objects"] != pad.state["seed"]["objects"]:
        pad.reseed(pad.state["objects"], pad.state["png"])


def draw(key: str = "draw") -> Drawing:
    """The canvas and its buttons; returns what is drawn."""
    pad = Canvas(key)
    # The probe's last report (it is drawn after the canvas, which paints first): until the column is measured
    # the canvas takes the size last measured, or a likely one, and the probe reports only another one.
    reported = (st.session_state.get(f"{key}_fit") or {}).get("size")
    if reported:
        pad.state["column"] = (int(reported["width"]), int(reported["height"]))
    known = pad.state.get("column") or (GUESS_PHONE if views.on_phone() else GUESS_DESKTOP)
    size = canvas_size(*known)
    if size != pad.state["size"]:
        pad.resize(size)
    width, height = size
    pen = st.session_state.get(f"{key}_pen") or DEFAULT_PEN
    result = st_canvas(
        stroke_width=max(2, round(height * PENS[pen])),
        stroke_color="#FFFFFF",
        background_color="#000000",
        width=width,
        height=height,
        drawing_mode="freedraw",
        initial_drawing=pad.state["seed"],
        return_image_data=True,
        key=f"{key}_canvas",
    )
    png = result.image_bytes
    # The canvas's value is its last send: new only when the picture changed (after Undo or Clear the old
    # value is still there until the canvas has drawn the new initial drawing and sent it).
    if png is not None and hash(png) != pad.state.get("sent"):
        pad.state["sent"] = hash(png)
        pad.state["objects"] = (result.json_data or {}).get("objects") or []
        pad.state["png"] = png
    has_strokes = bool(pad.state["objects"])
    with st.container(horizontal=True, vertical_alignment="center", key=f"{key}_tools"):
        st.button("Undo", icon=":material/undo:", key=f"{key}_undo", on_click=pad.undo, disabled=not has_strokes)
        st.button("Clear", icon=":material/delete:", key=f"{key}_clear", on_click=pad.clear, disabled=not has_strokes)
        with st.popover("Pen", icon=":material/brush:"):
            st.segmented_control("Pen width", list(PENS), default=DEFAULT_PEN, key=f"{key}_pen")
    FIT(
        data={"step": STEP, "known": {"width": known[0], "height": known[1]}},
        key=f"{key}_fit",
        default={"size": None},
        on_size_change=lambda: None,
    )
    return pad.drawing()
