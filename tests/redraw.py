"""The redrawn variants live in mnist.redraw (a fine-tune is evaluated on them); the tests' and benchmarks' old
imports still work through here."""

from mnist.redraw import VARIANTS, place, redraw, strokes

__all__ = ["VARIANTS", "place", "redraw", "strokes"]
