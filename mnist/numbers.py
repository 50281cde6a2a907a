"""Whole numbers: an image of a number -> NumberReading, digit by digit, left to right.

The reading shares preprocess's front end: `ink_map` settles alpha, polarity, lighting and noise.
Two models then read the ink (see read_number): the line reader (reader.py) reads the whole line
at once, which is what gets touching and overlapping digits right; the segmentation here cuts the
ink into digits, each through `to_model_input` (the MNIST recipe a single digit gets) and the
classifier, which gives exact boxes and a second opinion on every digit.

Segmentation is "over-segment where in doubt, then let the classifier choose":
  1. pieces      connected components of the stroke mask, ordered by x; specks dropped, tiny
                 fragments glued to the stroke they broke off from. Each piece is read once on its
                 own (one batch): a narrow piece, or one read confidently, as tall as the line and
                 shaped like the digit it is read as, is taken whole and never cut.
  2. boundaries  where one digit may end and the next begin: the gap before each piece, and inside
                 the doubtful pieces, candidate cuts (cheap top-to-bottom paths through the ink,
                 upright or leaning) and necks (the seams left when a light erosion breaks the
                 thin bridge where two digits touch and each pixel goes back to its nearest core).
  3. choice      every stretch of ink between two boundaries that could be one digit is a candidate
                 (a 5 with a floating bar spans two pieces, touching digits sit either side of a
                 cut); the new ones are classified in one batch, and dynamic programming picks the
                 chain of boundaries whose digits are most plausible: classifier confidence plus
                 simple shape priors (a digit is about as tall as the line, not much wider, shaped
                 like the digit it is read as; a boundary through much ink is unlikely).
The classifier's readings of the chosen digits, made while choosing, are its opinion on each.

Weights and thresholds were tuned on numbers composed from MNIST test digits 0-499 (tests/number_gen.py,
TUNE split); tests and benchmarks/numbers_bench.py score digits 500-999.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mnist.errors import NoDigitFound, TooManyDigits
from mnist.predict import Prediction, Predictor, get_number_classifier
from mnist.preprocess import (
    CROSS,
    SQUARE,
    ImageInput,
    ink_map,
    ink_scale,
    label_components,
    load_image,
    stroke_width,
    to_input_box,
    to_model_input,
)
from mnist.reader import LineReader, get_reader, to_strip
from mnist.results import NumberReading

MAX_DIGITS = 12
CORE = 0.3  # ink above this is stroke (the threshold preprocess labels components at)

# Sizes below are in units of the line height H (the typical digit height).
SPECK = 0.12  # a component whose long side is under this is a fragment or dust, not a digit
GLUE = 0.15  # ... and a fragment this close to a bigger component is glued to it
CUT_WIDTH = 0.35  # components wider than this may hold touching digits (two touching 1s)
CUT_STEP = 0.04  # spacing of the trial cuts
# Trial bands: (half width in H, lean in columns per row). The wide upright band finds the cheap way
# through a gap; narrow leaning ones cut beside slanted 1s and along seams where strokes lie together.
CUT_BANDS = ((0.12, 0.0), (0.05, 0.0), (0.05, 0.36), (0.05, -0.36))
CUT_SPACING = 0.2  # candidate cuts closer than this ...
CUT_MASS = 0.6  # ... must have at least a stroke this long between them
MIN_SIDE = 0.5  # a cut must leave a stroke this long on both sides
MAX_CUT_INK = 2.0  # a cut through more strokes than this (in stroke widths) splits a digit, not two
NECK_DEPTH = 0.45  # erode up to this many stroke widths to break the bridges between touching digits
CRUMB = 0.2  # an island a cut leaves, smaller than this fraction of its side, belongs to the other side
MAX_DIGIT_WIDTH = 1.6  # no single digit is wider than this
MAX_BLANK = 0.25  # no single digit has a clear gap this wide inside it
MAX_SPAN = 10  # boundaries a candidate digit may skip

# Upright aspect (width / height with the slant sheared away) of each digit: geometric mean and sd of
# the log, measured on the first 500 digits of the MNIST test sample in weights/mnist-test-sample (the TUNE split).
ASPECT = {0: (0.81, 0.24), 1: (0.22, 0.19), 2: (0.80, 0.18), 3: (0.70, 0.22), 4: (0.74, 0.22),
          5: (0.75, 0.19), 6: (0.70, 0.20), 7: (0.72, 0.23), 8: (0.68, 0.16), 9: (0.63, 0.15)}  # fmt: skip
# A piece is taken as one digit, uncut, when read this confidently, this tall and this typically shaped.
WHOLE_CONFIDENCE = 0.99
WHOLE_HEIGHT = 0.7
WHOLE_ASPECT_Z = 2.5

# Weights of the chain score (tuned on the generator's TUNE split): per digit, CONFIDENCE * log p plus
# shape priors; per boundary kept, a bonus less its ink cost.
CONFIDENCE = 4.0  # weight of the classifier's log confidence
PER_DIGIT = 1.0  # added per digit: > 0 favours more, shorter digits
SHORT = 10.0  # penalty per H of height below SHORT_BELOW (a loose bar or a sliver alone is no digit)
SHORT_BELOW = 0.9
WIDE = 4.0  # penalty per H of width beyond WIDE_ABOVE (two digits read as one)
WIDE_ABOVE = 1.4
GAP = 2.0  # penalty per H of blank columns inside a digit (merging across a clear gap)
ODD_SHAPE = 0.5  # penalty per sd of upright aspect beyond ODD_SHAPE_Z for the digit read
ODD_SHAPE_Z = 1.5
MERGE = 1.0  # penalty per extra separate piece at least MERGE_TALL high (two whole strokes side by side)
MERGE_TALL = 0.85
CUT_BONUS, CUT_INK = 1.0, 2.0  # a cut kept as a boundary: bonus less this per stroke width it crosses
NECK_BONUS, NECK_SEAM = 2.0, 2.0  # a neck kept as a boundary: bonus less this per stroke width of seam

# Combining the two models (read_number; tuned on the TUNE split): the classifier's probabilities are
# raised to this power before multiplying the line reader's ...
CLEAN_WEIGHT = 1.5  # ... for a segment between clear gaps: the classifier sees exactly one digit
CUT_WEIGHT = 0.3  # ... for one cut out of the ink: the cut may have taken a bit of a neighbour
SPLIT_DOUBT = 0.95  # the reader's digits in one clean segment, the weakest below this: maybe one digit


@dataclass(frozen=True)
class Piece:
    """A connected piece of ink (ink-map pixels), as a mask over its box."""

    x0: int
    y0: int
    x1: int
    y1: int
    mask: np.ndarray  # bool (y1 - y0, x1 - x0)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class Boundary:
    """Where a digit may end: in the gap before piece `piece`, or along a cut through it."""

    piece: int  # index into the pieces; len(pieces) is the end of the line
    x: float  # where it runs, in ink-map columns (orders cuts within a piece)
    left: np.ndarray | None = None  # for a cut: bool mask over the piece's box, the ink that goes left
    cost: float = 0.0  # ink the cut crosses (or the seam it follows), in stroke widths
    kind: str = "gap"  # "gap", "cut" (a path through the ink) or "neck" (a seam between regrown cores)


@dataclass(frozen=True)
class Segment:
    """The ink between two boundaries, as a candidate digit."""

    start: int  # boundary indices
    stop: int
    box: tuple[int, int, int, int]  # ink-map pixels, x1/y1 exclusive
    blank: int  # columns inside the box with no ink (a clear gap a merge would bridge)
    aspect: float  # width / height once its slant is taken out (a leaning 1 is still narrow)
    parts: list[int]  # height in pixels of each piece's share of this ink (several tall ones: several digits?)
    model_input: np.ndarray
    cut: bool = False  # an end runs through ink (a cut or a neck), not along a clear gap


def read_number(
    image: ImageInput, predictor: Predictor | None = None, reader: LineReader | None = None
) -> NumberReading:
    """Any accepted image of a number (1-12 digits) -> its reading. Raises InvalidImage, NoDigitFound, TooManyDigits.

    Two models look at the same ink map. The line reader (reader.py) reads the whole line in one
    forward pass and says how many digits there are and where it read each; the segmentation below
    cuts the ink into digits for the classifier. When every digit the line reader found sits in a
    segment of its own, each digit's probabilities are both models' multiplied (a product of
    experts: where one is unsure, the other decides) on the segment's box and 28x28 input, the
    classifier's weighted up where its segment lies between clear gaps and down where it was cut
    out of the ink. When they don't line up (digits the segmentation could not part), the line
    reader's reading stands, on boxes cut halfway between the places it read its digits, except
    for a digit it read alone in a segment between clear gaps: that one is still multiplied by
    the classifier's reading there, as when the two line up.
    """
    img = load_image(image)
    ink = ink_map(img)
    predictor = predictor or get_number_classifier()
    reader = reader or get_reader()
    segments, opinions = segment_number(ink, predictor)
    strip = to_strip(ink)
    found = [Found(c.probabilities, strip.to_ink_x(c.centre)) for c in reader.read([strip.pixels])[0]]
    if not found:
        raise NoDigitFound("no digit found: the ink does not look like digits")
    found = rejoin_doubtful_splits(found, segments, opinions)
    found = restore_missed_digits(found, segments, opinions)
    if len(found) > MAX_DIGITS:
        raise TooManyDigits(f"found {len(found)} digits; a number can have at most {MAX_DIGITS}")
    aligned = len(segments) == len(found) and all(
        s.box[0] <= f.x < s.box[2] for s, f in zip(segments, found, strict=True)
    )
    # The segment each digit found was read in, where both models read it: every digit's when the two line
    # up, else only a digit read alone in a clean segment (a digit the classifier read itself has its own).
    paired = (
        list(range(len(found)))
        if aligned
        else [alone_in_clean(f, found, segments) if f.segment is None else None for f in found]
    )
    between = places_between(ink, [f.x for f in found]) if None in paired else []
    scale = ink_scale(img.size, ink.shape)
    version = f"{predictor.model_version}+{reader.version}"
    digits = []
    for i, (f, k) in enumerate(zip(found, paired, strict=True)):
        p = f.probabilities
        if k is not None:
            p = p * np.asarray(opinions[k].probabilities) ** (CUT_WEIGHT if segments[k].cut else CLEAN_WEIGHT)
        own = k if k is not None else f.segment
        box, model_input = (segments[own].box, segments[own].model_input) if own is not None else between[i]
        p = p / p.sum()
        box = to_input_box(box, scale, img.size)
        digits.append(Prediction(int(p.argmax()), float(p.max()), [float(v) for v in p], model_input, version, box))
    return NumberReading(
        text="".join(str(d.digit) for d in digits),
        digits=digits,
        boxes=[d.box for d in digits],
        confidence=min(d.confidence for d in digits),
    )


@dataclass(frozen=True)
class Found:
    """A digit found on the line: its probabilities and the ink-map column it was read at."""

    probabilities: np.ndarray  # (10,)
    x: float
    segment: int | None = None  # set when it is the classifier's reading of this segment instead


def rejoin_doubtful_splits(found: list[Found], segments: list[Segment], opinions: list[Prediction]) -> list[Found]:
    """Digits the line reader found inside one clean segment (clear gaps either side), read there with
    some doubt, give way to the classifier's one digit when it is sure and the ink is shaped like it.

    The reader sometimes reads a wide, open 4 as "21"; its own doubt about the extra digit gives it
    away. Two overlapping digits look like one clean segment too, but there the reader is sure.
    """
    out, k = [], 0
    for index, (segment, opinion) in enumerate(zip(segments, opinions, strict=True)):
        inside = [i for i in range(k, len(found)) if segment.box[0] <= found[i].x < segment.box[2]]
        if (
            len(inside) >= 2
            and not segment.cut
            and min(found[i].probabilities.max() for i in inside) < SPLIT_DOUBT
            and reads_as_whole(opinion, segment.aspect)
        ):
            out += found[k : inside[0]]
            x = (segment.box[0] + segment.box[2]) / 2
            out.append(Found(np.asarray(opinion.probabilities), x, index))
            k = inside[-1] + 1
    return out + found[k:]


def restore_missed_digits(found: list[Found], segments: list[Segment], opinions: list[Prediction]) -> list[Found]:
    """A clean segment (clear gaps either side) the line reader read nothing in, that the classifier reads
    as a whole digit (sure, full height, shaped like it), is a digit the reader skipped.

    The line reader now and then drops a digit standing well apart from the rest (a small 6 at the start,
    the second of two 1s); the segmentation cannot miss ink that stands alone.
    """
    if len(found) >= len(segments) or any(s.cut for s in segments):
        return found  # where digits touch, a clean segment may be a digit's loose part: the reader knows better
    tall = float(np.median([s.box[3] - s.box[1] for s in segments]))
    # Only segments as tall as a digit can hold one: a 5's loose top bar is a segment of its own, and
    # centred nearer to where the reader read the 5, it would leave the 5's body looking skipped.
    digit_sized = [i for i, s in enumerate(segments) if s.box[3] - s.box[1] >= WHOLE_HEIGHT * tall]
    # Each digit read belongs to the segment centred nearest to where it was read (leaning digits' boxes overlap).
    centres = [(s.box[0] + s.box[2]) / 2 for s in segments]
    read_in = {min(digit_sized, key=lambda i: abs(centres[i] - f.x)) for f in found}
    out = list(found)
    for index in digit_sized:
        if index not in read_in and reads_as_whole(opinions[index], segments[index].aspect):
            out.append(Found(np.asarray(opinions[index].probabilities), centres[index], index))
    return sorted(out, key=lambda f: f.x)


def alone_in_clean(f: Found, found: list[Found], segments: list[Segment]) -> int | None:
    """The clean segment (clear gaps either side) this digit was read in, when no other segment reaches
    where it was read and no other digit was read in it; else None.

    Where the segmentation and the line reader disagree elsewhere in the number (a digit cut in two, a
    loose bar), a digit standing apart is still one the classifier sees exactly, as when they agree.
    """
    holding = [i for i, s in enumerate(segments) if s.box[0] <= f.x < s.box[2]]
    if len(holding) != 1 or segments[holding[0]].cut:
        return None
    x0, _, x1, _ = segments[holding[0]].box
    return holding[0] if sum(x0 <= g.x < x1 for g in found) == 1 else None


def places_between(ink: np.ndarray, centres: list[float]) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Boxes and 28x28 inputs for digits read at these ink-map columns: the ink between the midpoints."""
    core = ink > CORE
    edges = [0, *(round((a + b) / 2) for a, b in itertools.pairwise(centres)), ink.shape[1]]
    places = []
    for x0, x1 in itertools.pairwise(edges):
        part = np.zeros_like(ink)
        part[:, x0:x1] = ink[:, x0:x1]
        rows, cols = np.flatnonzero(core[:, x0:x1].any(axis=1)), np.flatnonzero(core[:, x0:x1].any(axis=0))
        if rows.size == 0:  # read where there is hardly any ink: show the column around it
            rows, cols = np.arange(ink.shape[0]), np.arange(x1 - x0)
        box = (x0 + int(cols[0]), int(rows[0]), x0 + int(cols[-1]) + 1, int(rows[-1]) + 1)
        try:
            model_input = to_model_input(part, box)
        except NoDigitFound:
            model_input = np.zeros((28, 28), np.uint8)
        places.append((box, model_input))
    return places


def segment_number(ink: np.ndarray, predictor: Predictor) -> tuple[list[Segment], list[Prediction]]:
    """Ink map -> the digits left to right (boxes in ink-map pixels), chosen as described in the module doc,
    and the classifier's reading of each (already made while choosing)."""
    core = ink > CORE
    pieces, height = find_pieces(core)
    if not pieces:
        raise NoDigitFound("no digit found: the image looks blank")
    if len(pieces) > 3 * MAX_DIGITS:
        raise TooManyDigits(f"found {len(pieces)} separate marks; a number can have at most {MAX_DIGITS} digits")
    alone = [build_segment(ink, core, [(p, p.mask)], k, k + 1) for k, p in enumerate(pieces)]
    alone_read = predictor.classify([s.model_input for s in alone])  # each piece as if it were a digit
    bounds = boundaries(ink, pieces, height, looks_whole(pieces, alone, alone_read, height))
    segments = candidate_segments(ink, core, pieces, bounds, height)
    # Pieces read above need no second look; everything else is scored in one more batch.
    piece_of = [_single_piece(bounds, s) for s in segments]
    fresh = iter(predictor.classify([s.model_input for s, k in zip(segments, piece_of, strict=True) if k is None]))
    scored = [alone_read[k] if k is not None else next(fresh) for k in piece_of]
    chosen = best_chain(bounds, segments, scored, height)
    if chosen is None:  # no chain got through: each piece is read as a digit, so the reading still comes back
        return alone, alone_read
    return [segments[i] for i in chosen], [scored[i] for i in chosen]


# --------------------------------------------------------------------------- pieces


def find_pieces(core: np.ndarray) -> tuple[list[Piece], float]:
    """Connected components of the stroke mask, specks dropped and fragments glued -> (pieces by x, line height)."""
    labels, count = label_components(core)
    pieces = [p for p in _component_pieces(labels, count) if p.area >= 4]
    if not pieces:
        return [], 0.0
    height = line_height(pieces)
    big = [p for p in pieces if max(p.x1 - p.x0, p.y1 - p.y0) >= SPECK * height]
    for frag in (p for p in pieces if max(p.x1 - p.x0, p.y1 - p.y0) < SPECK * height):
        # A fragment next to a stroke is part of it (a broken stroke, the end of a bar); alone, it's dust.
        near = min(big, key=lambda p: _box_distance(p, frag), default=None)
        if near is not None and _box_distance(near, frag) <= GLUE * height:
            big[big.index(near)] = _union(near, frag)
    return sorted(big, key=lambda p: (p.x0 + p.x1) / 2), height


def _component_pieces(labels: np.ndarray, count: int) -> list[Piece]:
    """One Piece per label, with its exact box and mask."""
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    order = np.argsort(lab, kind="stable")
    ys, xs, lab = ys[order], xs[order], lab[order]
    starts = np.searchsorted(lab, np.arange(1, count + 2))
    pieces = []
    for k in range(count):
        y, x = ys[starts[k] : starts[k + 1]], xs[starts[k] : starts[k + 1]]
        if y.size:
            x0, y0 = int(x.min()), int(y.min())
            mask = np.zeros((int(y.max()) + 1 - y0, int(x.max()) + 1 - x0), bool)
            mask[y - y0, x - x0] = True
            pieces.append(Piece(x0, y0, x0 + mask.shape[1], y0 + mask.shape[0], mask))
    return pieces


def line_height(pieces: list[Piece]) -> float:
    """Typical digit height: a high percentile of the ink's vertical extent per column, or most of the
    band the ink occupies, whichever is taller.

    Columns, not components: touching digits make one component taller than any of its digits
    (their vertical jitter adds up), while most columns through a thick-stroked digit span all of
    it. Thin pen strokes leave few such columns (bars and diagonals are short), so the ink band
    (its 1st to 99th percentile rows, less a jitter allowance) sets a floor.
    """
    extents, rows = [], []
    for p in pieces:
        filled = p.mask.any(axis=0)
        top = np.argmax(p.mask, axis=0)
        bottom = p.mask.shape[0] - np.argmax(p.mask[::-1], axis=0)
        extents.append((bottom - top)[filled])
        rows.append(np.nonzero(p.mask)[0] + p.y0)
    lo, hi = np.percentile(np.concatenate(rows), [1, 99])
    return max(1.0, float(np.percentile(np.concatenate(extents), 90)), 0.85 * float(hi - lo))


def _box_distance(a: Piece, b: Piece) -> float:
    dx = max(a.x0 - b.x1, b.x0 - a.x1, 0)
    dy = max(a.y0 - b.y1, b.y0 - a.y1, 0)
    return math.hypot(dx, dy)


def _union(a: Piece, b: Piece) -> Piece:
    """Two pieces as one (bigger box, both masks)."""
    x0, y0, x1, y1 = min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for p in (a, b):
        mask[p.y0 - y0 : p.y1 - y0, p.x0 - x0 : p.x1 - x0] |= p.mask
    return Piece(x0, y0, x1, y1, mask)


# --------------------------------------------------------------------------- boundaries and cuts


def looks_whole(pieces: list[Piece], alone: list[Segment], read: list[Prediction], height: float) -> list[bool]:
    """Which pieces are plainly one digit, so are never cut: narrow, or read confidently, as tall as the
    line and shaped like the digit they are read as (a 1 and an 8 run together read as an 8, but too wide).

    Cutting only where there is doubt keeps well-separated numbers as reliable as single digits.
    """
    return [
        p.x1 - p.x0 <= CUT_WIDTH * height or (reads_as_whole(r, s.aspect) and p.y1 - p.y0 >= WHOLE_HEIGHT * height)
        for p, s, r in zip(pieces, alone, read, strict=True)
    ]


def _single_piece(bounds: list[Boundary], segment: Segment) -> int | None:
    """The piece a segment is, when it is exactly one whole piece (gap to gap)."""
    a, b = bounds[segment.start], bounds[segment.stop]
    if a.left is None and b.left is None and b.piece == a.piece + 1:
        return a.piece
    return None


def reads_as_whole(reading: Prediction, aspect: float) -> bool:
    """The classifier is sure of this ink and it is shaped like the digit read: plainly one whole digit."""
    return reading.confidence >= WHOLE_CONFIDENCE and aspect_z(reading.digit, aspect) <= WHOLE_ASPECT_Z


def aspect_z(digit: int, aspect: float) -> float:
    """How unusual an upright aspect ratio is for a digit, in standard deviations of log aspect."""
    mean, sd = ASPECT[digit]
    return abs(math.log(max(aspect, 1e-3) / mean)) / sd


def boundaries(ink: np.ndarray, pieces: list[Piece], height: float, whole: list[bool]) -> list[Boundary]:
    """All places a digit may end, left to right: the gap before each piece, cuts through doubtful ones, the end."""
    out = []
    for k, piece in enumerate(pieces):
        out.append(Boundary(k, float(piece.x0)))
        if not whole[k]:
            local = ink[piece.y0 : piece.y1, piece.x0 : piece.x1] * piece.mask
            for path, cost in zip(*candidate_cuts(local, height), strict=True):
                out.append(Boundary(k, piece.x0 + float(path.mean()), left_of(piece.mask, path), cost, "cut"))
            for x, left, cost in neck_splits(piece.mask, height):
                out.append(Boundary(k, piece.x0 + x, left, cost, "neck"))
    out.sort(key=lambda b: (b.piece, b.left is not None, b.x))
    out.append(Boundary(len(pieces), float(max(p.x1 for p in pieces))))
    return out


def neck_splits(mask: np.ndarray, height: float) -> list[tuple[float, np.ndarray, float]]:
    """Boundaries at the narrow necks where two digits touch: (x, ink going left, seam length in strokes).

    Eroding the strokes a little breaks the thin bridge where two digits meet while each digit keeps
    a core; every pixel then goes back to the core it is closest to along the ink. The seam between
    two regrown neighbours follows the real contact, however the digits lean or overlap, which a
    top-to-bottom cut cannot. Several depths, since bridges and strokes come in all widths.
    """
    stroke = core_stroke_width(mask.astype(np.float32))
    out: list[tuple[float, np.ndarray, float]] = []
    seen: list[np.ndarray] = []
    eroded = mask
    for step in range(1, max(2, round(NECK_DEPTH * stroke)) + 1):
        eroded = _erode(eroded, cross=step % 2 == 1)
        if step < 2:
            continue
        labels, count = label_components(eroded)
        if count < 2:
            continue
        areas = np.bincount(labels.ravel())
        cores = np.flatnonzero(areas >= 0.1 * stroke * height)
        cores = cores[cores > 0]
        if len(cores) < 2:
            continue
        regions = _regrow(mask, labels, cores)
        order = sorted(range(len(cores)), key=lambda i: _centre_x(regions == i + 1))
        left = np.zeros_like(mask)
        for i in order[:-1]:
            left = left | (regions == i + 1)
            if any(np.count_nonzero(left ^ other) < 0.2 * stroke * height for other in seen):
                continue
            seen.append(left)
            out.append((_seam_x(left, mask), left, _seam(left, mask & ~left) / stroke))
    return out


def _erode(mask: np.ndarray, cross: bool) -> np.ndarray:
    """One step of binary erosion (a 4-neighbour cross or a 3x3 square, alternated to stay round)."""
    return ndimage.binary_erosion(mask, CROSS if cross else SQUARE)


def _regrow(mask: np.ndarray, labels: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """Give every ink pixel the number (1..) of the core nearest to it along the ink (grown one ring at a time)."""
    relabel = np.zeros(labels.max() + 1, np.int32)
    relabel[cores] = np.arange(1, len(cores) + 1)
    regions = relabel[labels]
    while True:
        grown = ndimage.maximum_filter(regions, 3, mode="constant")
        fill = mask & (regions == 0) & (grown > 0)
        if not fill.any():
            return regions
        regions = np.where(fill, grown, regions)


def _centre_x(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean()) if mask.any() else 0.0


def _seam(left: np.ndarray, right: np.ndarray) -> int:
    """Pixels of `left` touching `right` (8-neighbourhood): the length of the bridge between them."""
    return int((left & ndimage.binary_dilation(right, SQUARE)).sum())


def _seam_x(left: np.ndarray, mask: np.ndarray) -> float:
    """Where a boundary runs: midway between the left part's mean right edge and the right part's left edge."""
    right = mask & ~left
    cols = np.arange(mask.shape[1])
    last = np.where(left.any(axis=1), np.max(np.where(left, cols, -1), axis=1), np.nan)
    first = np.where(right.any(axis=1), np.min(np.where(right, cols, mask.shape[1]), axis=1), np.nan)
    values = np.concatenate([last[~np.isnan(last)], first[~np.isnan(first)]])
    return float(values.mean()) if values.size else 0.0


def candidate_cuts(local: np.ndarray, height: float) -> tuple[list[np.ndarray], list[float]]:
    """Ink of one piece -> the most promising cut paths (one column per row, left to right) and their ink cost.

    A cut is a top-to-bottom path moving at most one column per row within a band around a line,
    upright or leaning, so it can follow the slanted gap between two leaning digits; its cost is the
    ink it crosses, in stroke widths. Trial cuts start every CUT_STEP * H; of the many that slide
    into the same gap only the cheapest is kept. They are candidates: the classifier decides.
    """
    h, w = local.shape
    margin = max(2, round(0.08 * height))  # a cut this close to an end would leave a sliver
    columns = np.arange(margin, w - margin + 1, max(1, round(CUT_STEP * height)))
    if columns.size == 0:
        return [], []
    stroke = core_stroke_width(local)
    found = [shortest_cuts(local, columns, max(1, round(band * height)), lean) for band, lean in CUT_BANDS]
    paths = np.concatenate([p for p, _ in found])
    costs = np.concatenate([c for _, c in found]) / stroke
    where = paths.mean(axis=1)
    # Two cuts are different only if they run apart, or if a whole stroke lies between them
    # (both sides of a thin 1); the cheapest of each cluster is kept.
    cum = np.concatenate([np.zeros((h, 1), np.float32), np.cumsum(local, axis=1)], axis=1)
    rows = np.arange(h)
    stroke_mass = CUT_MASS * height * stroke
    left_mass = cum[rows[None, :], paths].sum(axis=1)
    # A cut must leave a digit's worth of ink on both sides, not clip the end of a stroke.
    useful = (costs <= MAX_CUT_INK) & (
        np.minimum(left_mass, cum[:, -1].sum() - left_mass) >= MIN_SIDE * height * stroke
    )
    keep: list[int] = []
    for i in np.argsort(costs, kind="stable"):
        if not useful[i]:
            continue
        left_of_i = cum[rows, paths[i]]
        if all(
            abs(where[i] - where[j]) >= CUT_SPACING * height
            or np.abs(left_of_i - cum[rows, paths[j]]).sum() >= stroke_mass
            for j in keep
        ):
            keep.append(int(i))
    keep.sort(key=lambda i: where[i])
    return [paths[i] for i in keep], [float(costs[i]) for i in keep]


def shortest_cuts(
    local: np.ndarray, columns: np.ndarray, band: int, lean: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """For each start column, the cheapest top-to-bottom path within +-band of a line through it.

    The line leans `lean` columns per row (0 = upright). Vectorised over the columns;
    -> (paths (K, h) local columns, costs (K,) in ink pixels).
    """
    h, w = local.shape
    offsets = np.arange(-band, band + 1)
    shift = np.round(lean * (np.arange(h) - (h - 1) / 2)).astype(np.int64)
    cols = columns[:, None] + offsets[None, :]  # (K, B) band columns at the middle row
    k_idx, b_idx = np.arange(len(cols))[:, None], np.arange(cols.shape[1])[None, :]
    bias = 0.002 * np.abs(offsets)[None, :]  # ties stay near the line
    off_image = np.float32(1e9)

    def row_cost(r: int) -> np.ndarray:
        at = cols + shift[r]
        return np.where((at >= 0) & (at < w), local[r][np.clip(at, 0, w - 1)] + bias, off_image)

    acc = row_cost(0)
    back = np.zeros((h, *cols.shape), np.int8)
    beyond = np.full((len(cols), 1), np.float32(1e30))  # outside the band: never taken
    for r in range(1, h):
        left = np.concatenate([beyond, acc[:, :-1]], axis=1) + 0.01
        right = np.concatenate([acc[:, 1:], beyond], axis=1) + 0.01
        stacked = np.stack([left, acc, right])
        choice = stacked.argmin(axis=0)
        acc = stacked[choice, k_idx, b_idx] + row_cost(r)
        back[r] = choice - 1  # -1: came from the left neighbour, 0: straight down, +1: from the right
    idx = np.empty((len(cols), h), np.int64)
    idx[:, -1] = acc.argmin(axis=1)
    costs = acc[np.arange(len(cols)), idx[:, -1]]
    for r in range(h - 1, 0, -1):
        idx[:, r - 1] = idx[:, r] + back[r, np.arange(len(cols)), idx[:, r]]
    paths = np.take_along_axis(cols, idx, axis=1) + shift[None, :]
    return np.clip(paths, 0, w), costs.astype(np.float64)


def left_of(mask: np.ndarray, path: np.ndarray) -> np.ndarray:
    """The ink a cut sends left: left of the path, plus the islands it cuts off on the right.

    A neighbour's stroke often reaches past the cut (a 2's tail under the next digit); the part
    beyond the path is then an island, still the 2's, and goes back with it. Islands smaller than
    CRUMB of their side's largest part swap sides in both directions.
    """
    left = mask & (np.arange(mask.shape[1])[None, :] < path[:, None])
    right = mask & ~left
    return (left & ~_crumbs(left)) | _crumbs(right)


def _crumbs(mask: np.ndarray) -> np.ndarray:
    """The small islands of a mask: parts under CRUMB of its largest part."""
    labels, count = label_components(mask)
    if count < 2:
        return np.zeros_like(mask)
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    small = areas < CRUMB * areas.max()
    small[0] = False
    return small[labels]


def core_stroke_width(local: np.ndarray) -> float:
    """Typical stroke width in pixels of the strokes' cores, at least 1."""
    return max(1.0, stroke_width(local > CORE))


# --------------------------------------------------------------------------- candidate digits


def candidate_segments(
    ink: np.ndarray, core: np.ndarray, pieces: list[Piece], bounds: list[Boundary], height: float
) -> list[Segment]:
    """Every stretch between two boundaries narrow enough to be one digit, in MNIST form."""
    segments = []
    for i in range(len(bounds) - 1):
        for j in range(i + 1, min(len(bounds), i + 1 + MAX_SPAN)):
            # Consecutive boundaries always make a candidate, so every chain can reach the end.
            limits = None if j == i + 1 else (MAX_DIGIT_WIDTH * height, MAX_BLANK * height)
            segment = make_segment(ink, core, pieces, bounds, i, j, limits)
            if segment is not None:
                segments.append(segment)
    return segments


def make_segment(
    ink: np.ndarray,
    core: np.ndarray,
    pieces: list[Piece],
    bounds: list[Boundary],
    i: int,
    j: int,
    limits: tuple[float, float] | None = None,
) -> Segment | None:
    """The ink right of boundary i and left of boundary j, alone (neighbours masked out); None if empty,
    or beyond the (width, blank columns) limits."""
    a, b = bounds[i], bounds[j]
    parts = []
    for k in range(a.piece, min(b.piece, len(pieces) - 1) + 1):
        piece = pieces[k]
        if k == b.piece and b.left is None:
            break  # the gap before piece k: nothing of it is ours
        mask = piece.mask
        if k == a.piece and a.left is not None:
            mask = mask & ~a.left
        if k == b.piece and b.left is not None:
            mask = mask & b.left
        if mask.any():
            parts.append((piece, mask))
    return build_segment(ink, core, parts, i, j, limits, cut=a.left is not None or b.left is not None)


def build_segment(
    ink: np.ndarray,
    core: np.ndarray,
    parts: list[tuple[Piece, np.ndarray]],
    start: int,
    stop: int,
    limits: tuple[float, float] | None = None,
    cut: bool = False,
) -> Segment | None:
    """Pieces' ink (each limited to a mask) as one candidate digit; None if there is no ink or it is beyond
    the (width, blank columns) limits: far too wide, or spanning a clear gap, for one digit."""
    if not parts or sum(int(m.sum()) for _, m in parts) < 4:
        return None
    x0, y0 = min(p.x0 for p, _ in parts), min(p.y0 for p, _ in parts)
    mine = np.zeros((max(p.y1 for p, _ in parts) - y0, max(p.x1 for p, _ in parts) - x0), bool)
    for p, m in parts:
        mine[p.y0 - y0 : p.y1 - y0, p.x0 - x0 : p.x1 - x0] |= m
    rows, cols_any = np.flatnonzero(mine.any(axis=1)), mine.any(axis=0)
    cs = np.flatnonzero(cols_any)
    mine = mine[rows[0] : rows[-1] + 1, cs[0] : cs[-1] + 1]
    x0, y0 = x0 + int(cs[0]), y0 + int(rows[0])
    box = (x0, y0, x0 + mine.shape[1], y0 + mine.shape[0])
    blank = int((~cols_any[cs[0] : cs[-1] + 1]).sum())
    if limits is not None and (mine.shape[1] > limits[0] or blank > limits[1]):
        return None
    parts_h = [int(np.ptp(np.flatnonzero(m.any(axis=1)))) + 1 for _, m in parts if m.any()]
    model_input = to_model_input(_alone(ink, core, mine, box))
    return Segment(start, stop, box, blank, upright_aspect(mine), parts_h, model_input, cut)


def upright_aspect(mask: np.ndarray) -> float:
    """Width / height of the ink after shearing its slant away (slope from second moments), robust to outliers."""
    ys, xs = np.nonzero(mask)
    ys, xs = ys.astype(np.float64), xs.astype(np.float64)
    dy = ys - ys.mean()
    slope = float((dy * (xs - xs.mean())).mean() / dy.var()) if dy.var() > 0 else 0.0
    upright = xs - slope * dy
    lo_x, hi_x = np.percentile(upright, [1, 99])
    lo_y, hi_y = np.percentile(ys, [1, 99])
    return float((hi_x - lo_x + 1) / (hi_y - lo_y + 1))


def _alone(ink: np.ndarray, core: np.ndarray, mine: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Ink of our strokes plus their faint anti-aliased rim (1 px), never another digit's strokes."""
    x0, y0, x1, y1 = box
    h, w = ink.shape
    X0, Y0, X1, Y1 = max(0, x0 - 1), max(0, y0 - 1), min(w, x1 + 1), min(h, y1 + 1)
    ours = np.zeros((Y1 - Y0, X1 - X0), bool)
    ours[y0 - Y0 : y1 - Y0, x0 - X0 : x1 - X0] = mine
    grown = ndimage.binary_dilation(ours, SQUARE)
    keep = ours | (grown & ~core[Y0:Y1, X0:X1])
    return np.where(keep, ink[Y0:Y1, X0:X1], 0).astype(np.float32)


# --------------------------------------------------------------------------- the choice


def best_chain(
    bounds: list[Boundary], segments: list[Segment], scored: list[Prediction], height: float
) -> list[int] | None:
    """Dynamic programming: the chain of boundaries from the start to the end with the best total score,
    as the indices of its segments, left to right.

    None if no chain reaches the end (crossing cuts can leave nothing between two boundaries).
    """
    best = [-math.inf] * len(bounds)
    came: list[int | None] = [None] * len(bounds)
    best[0] = 0.0
    for index in sorted(range(len(segments)), key=lambda i: segments[i].stop):
        segment = segments[index]
        if best[segment.start] == -math.inf:
            continue
        total = best[segment.start] + segment_score(segment, scored[index], height)
        if segment.stop < len(bounds) - 1:
            total += cut_score(bounds[segment.stop])
        if total > best[segment.stop]:
            best[segment.stop], came[segment.stop] = total, index
    chosen, at = [], len(bounds) - 1
    while at > 0:
        index = came[at]
        if index is None:
            return None
        chosen.append(index)
        at = segments[index].start
    return chosen[::-1]


def cut_score(boundary: Boundary) -> float:
    """Ending a digit at a cut or neck: crossing little ink is evidence of two digits, crossing much, of one."""
    if boundary.kind == "cut":
        return CUT_BONUS - CUT_INK * boundary.cost
    if boundary.kind == "neck":
        return NECK_BONUS - NECK_SEAM * boundary.cost
    return 0.0


def segment_score(segment: Segment, prediction: Prediction, height: float) -> float:
    """How plausible it is that this stretch of ink is one digit: log confidence plus shape priors."""
    x0, y0, x1, y1 = segment.box
    h, w = (y1 - y0) / height, (x1 - x0) / height
    score = CONFIDENCE * math.log(max(prediction.confidence, 1e-6)) + PER_DIGIT
    score -= SHORT * max(0.0, SHORT_BELOW - h)
    score -= WIDE * max(0.0, w - WIDE_ABOVE)
    score -= GAP * segment.blank / height
    score -= ODD_SHAPE * max(0.0, aspect_z(prediction.digit, segment.aspect) - ODD_SHAPE_Z)
    score -= MERGE * max(0, sum(h >= MERGE_TALL * height for h in segment.parts) - 1)
    return score
