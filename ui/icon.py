"""The page icon, drawn here: Streamlit would fetch a Material icon's favicon from a font CDN."""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw

ACCENT = (79, 70, 229)  # the theme's primaryColor


@cache
def page_icon() -> Image.Image:
    """A 64 px indigo tile with a handwritten-looking 7 on it."""
    icon = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    pen = ImageDraw.Draw(icon)
    pen.rounded_rectangle((0, 0, 63, 63), radius=14, fill=ACCENT)
    pen.line([(17, 19), (46, 17), (28, 50)], fill="white", width=7, joint="curve")
    return icon
