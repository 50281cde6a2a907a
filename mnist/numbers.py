"""Multi-digit segmentation: an image of a whole number -> NumberReading, digit by digit, left to right.

The reading shares preprocess's front end: `ink_map` settles alpha, polarity, lighting and noise,
and every digit found goes through `to_model_input`, the same MNIST recipe a single digit gets.

Segmentation is "over-segment, then let the classifier choose":
  1. pieces    connected components of the binarised ink; specks dropped, tiny fragments glued to
               their neighbour; components wide enough to hold two digits are cut along shortest
               ink-avoiding paths at the most promising columns (candidate cuts, not decisions);
  2. lattice   every run of consecutive pieces that could be one digit is a candidate segment:
               a 5 with a floating bar or a 4 in two strokes is a run of two pieces, touching
               digits are two runs on either side of a cut;
  3. choice    all candidates are classified in one batch, and dynamic programming picks the
               partition of the pieces that maximises classifier confidence plus simple shape
               priors (a digit is about as tall as the line and not much wider than tall).
The chosen digits then go through one more batched forward pass for the final reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mnist.errors import NoDigitFound, TooManyDigits
from mnist.predict import Prediction, Predictor, get_predictor
from mnist.preprocess import ImageInput, ink_map, ink_scale, label_components, load_image, to_model_input

MAX_DIGITS = 12
CORE = 0.3  # ink above this is stroke (the threshold preprocess labels components at)

# Shapes below are in units of the line height H (the typical digit height).
SPECK = 0.12  # a component whose long side is under this is a speck or a fragment, not a digit
GLUE = 0.15  # ... and a fragment this close to a bigger component is glued to it
CUT_WIDTH = 0.5  # components wider than this may hold several touching digits
CUT_STEP = 0.04  # spacing of the trial cut columns
CUT_BAND = 0.25  # how far a cut may wander left or right of its column
CUT_SPACING = 0.15  # keep at most one candidate cut per this width
MAX_SEGMENT_WIDTH = 1.6  # no single digit is wider than this
MAX_PIECES = 6  # pieces per candidate digit

# Weights of the segment score (log classifier confidence + priors); tuned on the generator's TUNE split.
PER_DIGIT = -0.5  # each extra digit must earn its place: resists over-cutting a 0 into two 1s
SHORT = 6.0  # penalty per unit of height below 0.6 H (a loose bar alone is no digit)
WIDE = 4.0  # penalty per unit of width beyond 1.0 H (two digits read as one)
GAP = 8.0  # penalty per unit of blank column inside a segment (merging across a clear gap)
CUT_INK = 0.8  # penalty per stroke width of ink a cut goes through


@dataclass(frozen=True)
class NumberReading:
    """A whole number read from an image: its text, and each digit with its box in input pixels."""

    text: str
    digits: list[Prediction]  # left to right
    boxes: list[tuple[int, int, int, int]]  # (x0, y0, x1, y1) in input pixels, x1/y1 exclusive
    confidence: float  # the weakest digit's: a number is only as sure as its least sure digit


@dataclass(frozen=True)
class Piece:
    """A piece of ink at ink-map resolution: a component or part of one, as a mask over its box."""

    x0: int
    y0: int
    x1: int
    y1: int
    mask: np.ndarray  # bool (y1 - y0, x1 - x0)
    component: int  # the connected component it came from
    area: int
    cut_cost: float | None = None  # ink cost of the cut on its left, when a cut made it

    @property
    def centre_x(self) -> float:
        return (self.x0 + self.x1) / 2


@dataclass(frozen=True)
class Segment:
    """A run of consecutive pieces taken as one digit."""

    start: int
    stop: int
    box: tuple[int, int, int, int]  # ink-map pixels
    model_input: np.ndarray


def read_number(image: ImageInput, predictor: Predictor | None = None) -> NumberReading:
    """Any accepted image of a number (1-12 digits) -> its reading. Raises InvalidImage, NoDigitFound, TooManyDigits."""
    img = load_image(image)
    ink = ink_map(img)
    predictor = predictor or get_predictor()
    segments = segment_number(ink, predictor)
    scale = ink_scale(img.size, ink.shape)
    boxes = [to_input_box(s.box, scale, img.size) for s in segments]
    # The final answer: every digit in one forward pass.
    digits = predictor.classify([s.model_input for s in segments], boxes)
    return NumberReading(
        text="".join(str(d.digit) for d in digits),
        digits=digits,
        boxes=boxes,
        confidence=min(d.confidence for d in digits),
    )


def segment_number(ink: np.ndarray, predictor: Predictor) -> list[Segment]:
    """Ink map -> the digits left to right (boxes in ink-map pixels), chosen as described in the module doc."""
    core = ink > CORE
    pieces, height = find_pieces(ink, core)
    if not pieces:
        raise NoDigitFound("no digit found: the image looks blank")
    if len(pieces) > 4 * MAX_DIGITS:
        raise TooManyDigits(f"found {len(pieces)} separate marks; a number can have at most {MAX_DIGITS} digits")
    pieces, cut_costs = cut_wide_pieces(ink, core, pieces, height)
    spans = candidate_spans(pieces, height)
    segments = [make_segment(ink, core, pieces, a, b) for a, b in spans]
    scored = predictor.classify([s.model_input for s in segments]) if len(spans) > 1 else []
    chosen = best_partition(pieces, segments, scored, cut_costs, height)
    if len(chosen) > MAX_DIGITS:
        raise TooManyDigits(f"found {len(chosen)} digits; a number can have at most {MAX_DIGITS}")
    return chosen


# --------------------------------------------------------------------------- pieces


def find_pieces(ink: np.ndarray, core: np.ndarray) -> tuple[list[Piece], float]:
    """Connected components of the stroke mask, specks dropped and fragments glued -> (pieces by x, line height)."""
    labels, count = label_components(core)
    if count == 0:
        return [], 0.0
    pieces = [p for p in _component_pieces(labels, count) if p.area >= 4]
    if not pieces:
        return [], 0.0
    height = line_height(pieces)
    big = [p for p in pieces if max(p.x1 - p.x0, p.y1 - p.y0) >= SPECK * height]
    small = [p for p in pieces if max(p.x1 - p.x0, p.y1 - p.y0) < SPECK * height]
    for frag in small:
        # A fragment next to a stroke is part of it (a broken stroke, a dot of a 7's bar); alone, it's dust.
        near = min(big, key=lambda p: _box_distance(p, frag), default=None)
        if near is not None and _box_distance(near, frag) <= GLUE * height:
            big[big.index(near)] = _union(near, frag, near.component)
    return sorted(big, key=lambda p: p.centre_x), height


def _component_pieces(labels: np.ndarray, count: int) -> list[Piece]:
    """One Piece per label, with its exact box and mask."""
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    order = np.argsort(lab, kind="stable")
    ys, xs, lab = ys[order], xs[order], lab[order]
    bounds = np.searchsorted(lab, np.arange(1, count + 2))
    pieces = []
    for k in range(count):
        y, x = ys[bounds[k] : bounds[k + 1]], xs[bounds[k] : bounds[k + 1]]
        if y.size == 0:
            continue
        x0, y0, x1, y1 = int(x.min()), int(y.min()), int(x.max()) + 1, int(y.max()) + 1
        mask = np.zeros((y1 - y0, x1 - x0), bool)
        mask[y - y0, x - x0] = True
        pieces.append(Piece(x0, y0, x1, y1, mask, k + 1, int(y.size)))
    return pieces


def line_height(pieces: list[Piece]) -> float:
    """Typical digit height: the median height of the substantial components (specks and bars don't count)."""
    biggest = max(p.area for p in pieces)
    heights = [p.y1 - p.y0 for p in pieces if p.area >= 0.2 * biggest]
    return float(np.median(heights))


def _box_distance(a: Piece, b: Piece) -> float:
    dx = max(a.x0 - b.x1, b.x0 - a.x1, 0)
    dy = max(a.y0 - b.y1, b.y0 - a.y1, 0)
    return math.hypot(dx, dy)


def _union(a: Piece, b: Piece, component: int) -> Piece:
    """Two pieces as one (same mask semantics, bigger box)."""
    x0, y0, x1, y1 = min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for p in (a, b):
        mask[p.y0 - y0 : p.y1 - y0, p.x0 - x0 : p.x1 - x0] |= p.mask
    return Piece(x0, y0, x1, y1, mask, component, a.area + b.area)


# --------------------------------------------------------------------------- candidate cuts


def cut_wide_pieces(
    ink: np.ndarray, core: np.ndarray, pieces: list[Piece], height: float
) -> tuple[list[Piece], list[float]]:
    """Split components that may hold touching digits at their candidate cuts.

    Returns the new pieces (by x) and, for each boundary between piece i and i+1, the cost of
    keeping that boundary: 0 between separate components, the cut's ink cost inside one.
    """
    out: list[Piece] = []
    for piece in pieces:
        if piece.x1 - piece.x0 <= CUT_WIDTH * height:
            out.append(piece)
            continue
        local = ink[piece.y0 : piece.y1, piece.x0 : piece.x1] * piece.mask
        paths, costs = candidate_cuts(local, height)
        out.extend(_split(piece, paths, costs))
    out.sort(key=lambda p: p.centre_x)
    boundary = [0.0] * max(0, len(out) - 1)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        if a.component == b.component and b.cut_cost is not None:
            boundary[i] = b.cut_cost
    return out, boundary


def candidate_cuts(local: np.ndarray, height: float) -> tuple[list[np.ndarray], list[float]]:
    """Ink of one component -> the most promising cut paths (one column per row), with their ink cost.

    A cut is a top-to-bottom path moving at most one column per row, so it can follow a slanted
    gap between two leaning digits; its cost is the ink it crosses, in stroke widths. Trial cuts
    start every CUT_STEP * H, and the local minima of their cost are kept (column-projection
    minima, but along the best path instead of a straight column).
    """
    h, w = local.shape
    margin = max(2, round(0.12 * height))  # a cut this close to an end would leave a sliver
    step = max(1, round(CUT_STEP * height))
    columns = np.arange(margin, w - margin + 1, step)
    if columns.size == 0:
        return [], []
    band = max(2, round(CUT_BAND * height))
    paths, raw = shortest_cuts(local, columns, band)
    stroke = stroke_width(local)
    costs = raw / stroke
    keep = _local_minima(costs, max(1, round(CUT_SPACING * height / step)))
    return [paths[i] for i in keep], [float(costs[i]) for i in keep]


def shortest_cuts(local: np.ndarray, columns: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray]:
    """For each start column, the cheapest top-to-bottom path within +-band of it; vectorised over columns.

    -> (paths (K, h) absolute columns, costs (K,) in ink pixels).
    """
    h, w = local.shape
    offsets = np.arange(-band, band + 1)
    cols = columns[:, None] + offsets[None, :]  # (K, B) absolute columns of each band
    valid = (cols >= 0) & (cols < w)
    safe = np.clip(cols, 0, w - 1)
    # Cost of a pixel: its ink, plus a tiny bias towards the band's centre so ties stay near the start column.
    bias = 0.002 * np.abs(offsets)[None, :]
    inf = np.float32(1e9)
    acc = np.where(valid, local[0][safe] + bias, inf)
    back = np.zeros((h, *cols.shape), np.int8)
    for r in range(1, h):
        row = np.where(valid, local[r][safe] + bias, inf)
        left = np.concatenate([np.full((len(cols), 1), inf), acc[:, :-1]], axis=1) + 0.01
        right = np.concatenate([acc[:, 1:], np.full((len(cols), 1), inf)], axis=1) + 0.01
        stacked = np.stack([left, acc, right])
        choice = stacked.argmin(axis=0)
        acc = stacked[choice, np.arange(len(cols))[:, None], np.arange(cols.shape[1])[None, :]] + row
        back[r] = choice - 1  # -1: came from the left neighbour, 0: straight, +1: from the right
    end = acc.argmin(axis=1)
    costs = acc[np.arange(len(cols)), end]
    idx = np.empty((len(cols), h), np.int64)
    idx[:, -1] = end
    for r in range(h - 1, 0, -1):
        idx[:, r - 1] = idx[:, r] + back[r, np.arange(len(cols)), idx[:, r]]
    paths = np.take_along_axis(cols, idx, axis=1)
    return paths, costs.astype(np.float64)


def stroke_width(local: np.ndarray) -> float:
    """Typical stroke width in pixels: 2 * area / perimeter of the stroke mask."""
    mask = local > CORE
    area = int(mask.sum())
    p = np.pad(mask, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return max(1.0, 2.0 * area / max(1, int((mask & ~inner).sum())))


def _local_minima(costs: np.ndarray, radius: int) -> list[int]:
    """Indices of costs that are the minimum within +-radius (first of a plateau), left to right."""
    keep = []
    for i, c in enumerate(costs):
        window = costs[max(0, i - radius) : i + radius + 1]
        if c <= window.min() and not (keep and i - keep[-1] <= radius and costs[keep[-1]] == c):
            keep.append(i)
    return keep


def _split(piece: Piece, paths: list[np.ndarray], costs: list[float]) -> list[Piece]:
    """Cut a piece along paths (sorted left to right, made non-crossing) into sub-pieces."""
    if not paths:
        return [piece]
    h, w = piece.mask.shape
    stacked = np.maximum.accumulate(np.stack(paths), axis=0)  # a later cut never crosses an earlier one
    cols = np.arange(w)[None, :]
    parts, lefts = [], np.zeros(h, np.int64)
    bounds = [*list(stacked), np.full(h, w)]
    for k, right in enumerate(bounds):
        region = (cols >= lefts[:, None]) & (cols < right[:, None])
        mask = piece.mask & region
        lefts = right
        if not mask.any():
            continue
        rows, cs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cs[0]), int(cs[-1]) + 1
        x0, y0, x1, y1 = piece.x0 + x0, piece.y0 + y0, piece.x0 + x1, piece.y0 + y1
        cost = costs[k - 1] if k > 0 and parts else None
        parts.append(Piece(x0, y0, x1, y1, mask[y0 - piece.y0 : y1 - piece.y0, x0 - piece.x0 : x1 - piece.x0], piece.component, int(mask.sum()), cost))
    return parts


# --------------------------------------------------------------------------- the lattice


def candidate_spans(pieces: list[Piece], height: float) -> list[tuple[int, int]]:
    """Runs of consecutive pieces [start, stop) narrow enough to be one digit (every single piece counts)."""
    spans = []
    for a in range(len(pieces)):
        x0, x1 = pieces[a].x0, pieces[a].x1
        spans.append((a, a + 1))
        for b in range(a + 2, min(len(pieces), a + MAX_PIECES) + 1):
            x0, x1 = min(x0, pieces[b - 1].x0), max(x1, pieces[b - 1].x1)
            if x1 - x0 > MAX_SEGMENT_WIDTH * height:
                break
            spans.append((a, b))
    return spans


def make_segment(ink: np.ndarray, core: np.ndarray, pieces: list[Piece], start: int, stop: int) -> Segment:
    """Pieces [start, stop) -> their ink alone (neighbours masked out) in MNIST form."""
    run = pieces[start:stop]
    x0, y0 = min(p.x0 for p in run), min(p.y0 for p in run)
    x1, y1 = max(p.x1 for p in run), max(p.y1 for p in run)
    mine = np.zeros((y1 - y0, x1 - x0), bool)
    for p in run:
        mine[p.y0 - y0 : p.y1 - y0, p.x0 - x0 : p.x1 - x0] |= p.mask
    # Keep the faint anti-aliased rim around our strokes, but never another piece's strokes.
    pad = 1
    Y0, X0 = max(0, y0 - pad), max(0, x0 - pad)
    Y1, X1 = min(ink.shape[0], y1 + pad), min(ink.shape[1], x1 + pad)
    grown = np.zeros((Y1 - Y0, X1 - X0), bool)
    grown[y0 - Y0 : y1 - Y0, x0 - X0 : x1 - X0] = mine
    grown = _dilate(grown)
    region = ink[Y0:Y1, X0:X1]
    keep = grown & (~core[Y0:Y1, X0:X1] | np.pad(mine, ((y0 - Y0, Y1 - y1), (x0 - X0, X1 - x1))))
    alone = np.where(keep, region, 0).astype(np.float32)
    return Segment(start, stop, (x0, y0, x1, y1), to_model_input(alone))


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation."""
    p = np.pad(mask, 1)
    h, w = mask.shape
    return np.logical_or.reduce([p[i : i + h, j : j + w] for i in range(3) for j in range(3)])


def best_partition(
    pieces: list[Piece],
    segments: list[Segment],
    scored: list[Prediction],
    cut_costs: list[float],
    height: float,
) -> list[Segment]:
    """Dynamic programming over the lattice: the partition of the pieces with the best total score."""
    n = len(pieces)
    if len(segments) == 1:
        return segments
    by_stop: dict[int, list[tuple[Segment, float]]] = {}
    for seg, pred in zip(segments, scored, strict=True):
        by_stop.setdefault(seg.stop, []).append((seg, segment_score(pieces, seg, pred, height)))
    best = [-math.inf] * (n + 1)
    came: list[Segment | None] = [None] * (n + 1)
    best[0] = 0.0
    for stop in range(1, n + 1):
        for seg, score in by_stop.get(stop, []):
            # Keeping a cut as a digit boundary costs the ink it goes through.
            total = best[seg.start] + score - (CUT_INK * cut_costs[seg.start - 1] if seg.start > 0 else 0.0)
            if total > best[stop]:
                best[stop], came[stop] = total, seg
    chosen, at = [], n
    while at > 0:
        seg = came[at]
        assert seg is not None  # every single piece is a span, so every prefix is reachable
        chosen.append(seg)
        at = seg.start
    return chosen[::-1]


def segment_score(pieces: list[Piece], seg: Segment, pred: Prediction, height: float) -> float:
    """How plausible it is that this run of pieces is one digit: log confidence plus shape priors."""
    x0, y0, x1, y1 = seg.box
    h, w = (y1 - y0) / height, (x1 - x0) / height
    score = math.log(max(pred.confidence, 1e-6)) + PER_DIGIT
    score -= SHORT * max(0.0, 0.6 - h)
    score -= WIDE * max(0.0, w - 1.0)
    score -= GAP * blank_columns(pieces[seg.start : seg.stop]) / height
    return score


def blank_columns(run: list[Piece]) -> int:
    """Columns inside the run's extent that no piece covers: the clear gaps a merge would bridge."""
    spans = sorted((p.x0, p.x1) for p in run)
    blank, reach = 0, spans[0][1]
    for a, b in spans[1:]:
        blank += max(0, a - reach)
        reach = max(reach, b)
    return blank


# --------------------------------------------------------------------------- boxes


def to_input_box(box: tuple[int, int, int, int], scale: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """An ink-map box -> input pixels (outward rounding, clipped to the image)."""
    x0, y0, x1, y1 = box
    w, h = size
    return (
        max(0, math.floor(x0 * scale)),
        max(0, math.floor(y0 * scale)),
        min(w, math.ceil(x1 * scale)),
        min(h, math.ceil(y1 * scale)),
    )
