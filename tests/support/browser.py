"""Browser-test helpers shared by the dashboard's e2e tests and the scale-out test: Debian Chromium, drawing, images."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.support.sample import first_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Strokes are written in canvas heights from the canvas's top-left corner, so a digit keeps its shape and
# size on a canvas of any width (the canvas is as wide as its column: a phone's is narrower).
# A 7: the top bar, then the long diagonal.
SEVEN = [[(0.3, 0.2), (0.75, 0.2), (0.45, 0.85)]]
# Digits one canvas-height wide cell each, to write numbers: see number_strokes.
DIGIT_STROKES = {
    "1": [[(0.2, 0.15), (0.17, 0.85)]],
    "4": [[(0.2, 0.15), (0.05, 0.6), (0.4, 0.6)], [(0.3, 0.3), (0.3, 0.88)]],
    "7": [[(0.02, 0.2), (0.38, 0.2), (0.15, 0.85)]],
}


def mnist_digit(digit: int, *, side: int = 280, paper: bool = True) -> Image.Image:
    """The first MNIST test image of `digit`, enlarged; black ink on white paper by default."""
    pixels = first_of(digit)
    image = Image.fromarray(255 - pixels if paper else pixels).resize((side, side), Image.Resampling.BILINEAR)
    return image.convert("RGB")


def png_file(path: Path, image: Image.Image) -> Path:
    image.save(path, format="PNG")
    return path


def require_chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing; a clear failure when that is impossible."""
    if not CHROMIUM.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False, timeout=1200)
    if not CHROMIUM.exists():
        pytest.fail(
            "Browser tests need Debian's Chromium at /usr/bin/chromium and it could not be installed "
            "(run `apt-get update && apt-get install -y chromium` as root)."
        )
    return str(CHROMIUM)


# In the page: the time of the last pointer release (window.__up) and of the first reading shown after it
# (window.__shown, when a .predicted-digit appears).
WATCH_READINGS = """() => {
    window.__up = null; window.__shown = null;
    window.addEventListener('pointerup', () => { window.__up = performance.now(); window.__shown = null; }, true);
    new MutationObserver(() => {
        if (window.__up !== null && window.__shown === null && document.querySelector('.predicted-digit'))
            window.__shown = performance.now();
    }).observe(document.body, {subtree: true, childList: true});
}"""


def release_to_reading_ms(page, canvas, strokes: list[list[tuple[int, int]]]) -> float:
    """Draw, and wait for the reading: milliseconds from the last pointer release to the digit on screen
    (the page must have run WATCH_READINGS)."""
    stroke(page, canvas, strokes)
    page.wait_for_function("() => window.__shown !== null")
    return page.evaluate("() => window.__shown - window.__up")


def clear_canvas(page) -> None:
    """The page's Clear button under the canvas; then no reading is shown."""
    page.get_by_role("button", name="Clear").click()
    page.locator(".predicted-digit, .predicted-number").first.wait_for(state="detached")


def number_strokes(text: str, *, start: float = 0.12, advance: float = 0.5) -> list[list[tuple[float, float]]]:
    """The strokes of a number written left to right with DIGIT_STROKES, `advance` canvas heights apart."""
    return [
        [(start + i * advance + x, y) for x, y in line] for i, digit in enumerate(text) for line in DIGIT_STROKES[digit]
    ]


def _points(canvas, line: list[tuple[float, float]], steps: int = 15) -> list[tuple[float, float]]:
    """A polyline in canvas heights -> page points, `steps` per segment."""
    box = canvas.bounding_box()
    side = box["height"]
    corners = [(box["x"] + x * side, box["y"] + y * side) for x, y in line]
    points = [corners[0]]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:], strict=False):
        points += [(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps) for k in range(1, steps + 1)]
    return points


def stroke(page, canvas, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw polylines with the mouse on the canvas (coordinates in canvas heights)."""
    for line in strokes:
        points = _points(canvas, line)
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y)
        page.mouse.up()


def touch_stroke(page, canvas, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw polylines with a finger (CDP touch events, as a phone sends them; coordinates in canvas heights)."""
    cdp = page.context.new_cdp_session(page)
    try:
        for line in strokes:
            points = _points(canvas, line)
            for kind, (x, y) in [("touchStart", points[0])] + [("touchMove", p) for p in points[1:]]:
                cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    finally:
        cdp.detach()
