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
# The strokes of a 7 on the 320 px canvas: the top bar, then the long diagonal.
SEVEN = [[(90, 75), (235, 75), (145, 270)]]


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


def clear_canvas(page, canvas) -> None:
    """The canvas toolbar's bin (it shows while the pointer is over the canvas)."""
    canvas.hover()
    page.locator(".dc-toolbar button[title^='Reset canvas']").click()
    page.locator(".predicted-digit").wait_for(state="detached")


def stroke(page, canvas, strokes: list[list[tuple[int, int]]]) -> None:
    """Draw polylines with the mouse on the canvas (coordinates in canvas pixels)."""
    box = canvas.bounding_box()
    for line in strokes:
        x, y = line[0]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in line[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=15)
        page.mouse.up()
