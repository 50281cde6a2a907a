"""How the engine holds up on spoilt digits, and whether its verdict tells digits from everything else.

    python -m benchmarks.robustness [--count 200] [--seed 1] [--families a,b] [--no-verdict]

MNIST test digits (all 10,000 when MNIST_DATA_DIR or ../shared/data/mnist has them, else the committed
1,000) are spoilt by every mnist.degrade family at severities 1-3 and handed in as white-on-black grey
pictures, the way digit collections store them; each condition is read by the engine (mnist.predict_batch)
and by the same network on a plain resize (the whole picture squashed to 28x28). Frame-filling digits are
also read in the other polarity (dark ink on light). A reading counts as right when its digit is right,
whatever the verdict. Then the verdicts: held-back non-digit material (every mnist.nondigits family, the
fonts family never trained on), two digits side by side, and real digits (MNIST test digits as they are and
redrawn by tests/redraw.py); and the expected calibration error (ECE, 15 bins) of the confidence.
Targets (issue "Engine"): mean over families >= 97%, no family below 90%, frame-filling >= 97%; non-digits
flagged >= 95%; two digits "several_digits" >= 90%; real digits "digit" >= 98% and right >= 99.5%; ECE <= 2%.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.predict_latency import naive_input
from mnist.config import ROOT
from mnist.data import load_split
from mnist.degrade import FAMILIES, SEVERITIES, as_image, degrade, to_photo
from mnist.errors import NoDigitFound
from mnist.nondigits import FAMILIES as NON_DIGIT_FAMILIES
from mnist.nondigits import TRAINED, sample
from mnist.predict import Prediction, get_predictor
from mnist.preprocess import candidate_views
from mnist.synth import LAYOUTS, STYLES, render
from tests.redraw import VARIANTS, redraw
from tests.support.sample import mnist_sample

CHUNK = 64


def test_digits() -> tuple[np.ndarray, np.ndarray]:
    """The full MNIST test set when its files are at hand, else the committed 1,000-digit sample."""
    data_dir = os.environ.get("MNIST_DATA_DIR") or str(ROOT.parent / "shared" / "data" / "mnist")
    if Path(data_dir, "t10k-images-idx3-ubyte.gz").exists():
        images, labels = load_split("test", data_dir)
        return images.numpy(), labels.numpy()
    return mnist_sample()


def read(images: list) -> list[Prediction | None]:
    """The engine's reading of each picture (None where it found nothing), in batches of one forward pass."""
    predictor = get_predictor()
    out: list[Prediction | None] = []
    for start in range(0, len(images), CHUNK):
        views, where = [], []
        for image in images[start : start + CHUNK]:
            try:
                views.append(candidate_views(image))
                where.append(len(views) - 1)
            except NoDigitFound:
                where.append(None)
        readings = predictor.read(views)
        out += [None if k is None else readings[k] for k in where]
    return out


def read_plain(images: list) -> np.ndarray:
    """The same network on the whole picture squashed to 28x28: the digit it reads in each."""
    predictor = get_predictor()
    inputs = [naive_input(image) for image in images]
    chunks = [inputs[i : i + 256] for i in range(0, len(inputs), 256)]
    return np.concatenate([predictor.probabilities(chunk)[:, :10].argmax(1) for chunk in chunks])


def right(readings: list[Prediction | None], labels: np.ndarray) -> np.ndarray:
    return np.array([r is not None and r.digit == int(y) for r, y in zip(readings, labels, strict=True)])


def ece(readings: list[Prediction | None], labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: |confidence - accuracy| averaged over confidence bins, weighted by count."""
    pairs = [(r.confidence, r.digit == int(y)) for r, y in zip(readings, labels, strict=True) if r is not None]
    if not pairs:
        return float("nan")
    conf, ok = np.array([c for c, _ in pairs]), np.array([o for _, o in pairs], float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(conf[inside].mean() - ok[inside].mean())
    return float(total)


def verdicts(readings: list[Prediction | None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in readings:
        key = "blank" if r is None else r.verdict
        counts[key] = counts.get(key, 0) + 1
    return counts


def degradations(digits, labels, families, count: int, seed: int) -> tuple[float, list]:
    """Per family and severity: engine and plain-resize accuracy. -> (frame-filling accuracy, all readings)."""
    print(f"{'condition':22s} {'sev':>3s} {'engine':>7s} {'plain':>7s} {'unsure':>7s}  verdicts")
    family_scores, plain_scores, kept = {}, {}, []
    frame_right = []
    for family in families:
        per_sev, per_plain = [], []
        for severity in SEVERITIES:
            rng = np.random.default_rng([seed, list(FAMILIES).index(family), severity])
            pick = rng.choice(len(labels), size=min(count, len(labels)), replace=False)
            images = [as_image(degrade(rng, digits[i] / 255.0, family, severity)) for i in pick]
            readings = read(images)
            ok, plain = right(readings, labels[pick]), read_plain(images) == labels[pick]
            per_sev.append(ok.mean())
            per_plain.append(plain.mean())
            kept.append((readings, labels[pick]))
            unsure = np.mean([r is None or r.verdict != "digit" for r in readings])
            print(
                f"{family:22s} {severity:3d} {ok.mean():7.1%} {plain.mean():7.1%} {unsure:7.1%}  {verdicts(readings)}"
            )
            if family == "frame_fill":
                frame_right.append(ok)
                dark = [to_photo(rng, degrade(rng, digits[i] / 255.0, family, severity), invert=True) for i in pick]
                ok_dark = right(read(dark), labels[pick])
                frame_right.append(ok_dark)
                print(f"{'frame_fill dark ink':22s} {severity:3d} {ok_dark.mean():7.1%}")
        family_scores[family], plain_scores[family] = np.mean(per_sev), np.mean(per_plain)
    worst = min(family_scores, key=family_scores.get)
    print(
        f"\nmean over {len(families)} families: engine {np.mean(list(family_scores.values())):.1%}, "
        f"plain resize {np.mean(list(plain_scores.values())):.1%}; "
        f"lowest family {worst} {family_scores[worst]:.1%}"
    )
    frame = float(np.concatenate(frame_right).mean()) if frame_right else float("nan")
    if frame_right:
        print(f"frame-filling low-resolution digits (both polarities, all severities): {frame:.1%}")
    return frame, kept


def non_digits(count: int, seed: int) -> None:
    print("\nnon-digit material flagged (verdict not 'digit'):")
    flagged_all = []
    for family in NON_DIGIT_FAMILIES:
        rng = np.random.default_rng([seed, 7, list(NON_DIGIT_FAMILIES).index(family)])
        images = []
        for _ in range(count):
            ink = sample(rng, family)
            style = int(rng.integers(3))
            if style == 0:
                images.append(as_image(ink))
            elif style == 1:
                images.append(to_photo(rng, ink))
            else:
                big = np.kron(ink, np.ones((8, 8), np.float32))
                images.append(render(rng, big, STYLES[int(rng.integers(len(STYLES)))]))
        readings = read(images)
        flagged = np.array([r is None or r.verdict != "digit" for r in readings])
        flagged_all.append(flagged)
        held = "" if family in TRAINED else "  (held out of training)"
        print(f"  {family:10s} {flagged.mean():7.1%}  {verdicts(readings)}{held}")
    print(f"  all {np.concatenate(flagged_all).mean():.1%}")


def several(digits, count: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 11])
    images = []
    for k in range(count):
        pick = digits[rng.choice(len(digits), size=2, replace=False)]
        ink, _, _ = LAYOUTS["cells" if k % 3 == 0 else "drawn"](rng, list(pick), "separated")
        images.append(render(rng, ink, STYLES[k % len(STYLES)]) if k % 2 else to_photo(rng, ink))
    readings = read(images)
    share = np.mean([r is not None and r.verdict == "several_digits" for r in readings])
    print(f"\ntwo digits side by side read as 'several_digits': {share:.1%}  {verdicts(readings)}")


def real_digits(digits, labels, count: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 13])
    pick = rng.choice(len(labels), size=min(count, len(labels)), replace=False)
    sets = {"MNIST test": ([digits[i] for i in pick], labels[pick])}
    few = pick[: max(1, count // 10)]
    images, truth = [], []
    for variant in VARIANTS:
        images += [redraw(variant, digits[i], seed, int(i)) for i in few]
        truth += [labels[i] for i in few]
    sets["redrawn (17 ways)"] = (images, np.array(truth))
    print("\nreal digits:")
    for name, (images, truth) in sets.items():
        readings = read(images)
        ok = right(readings, truth)
        sure = np.array([r is not None and r.verdict == "digit" for r in readings])
        print(
            f"  {name:18s} n={len(truth):5d}  'digit' {sure.mean():6.1%}  right {ok.mean():6.2%}  "
            f"right when 'digit' {ok[sure].mean():6.2%}  ECE {ece(readings, truth):.2%}  {verdicts(readings)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="digits per condition")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--families", default="", help="comma-separated degradation families (default: all)")
    parser.add_argument("--no-verdict", action="store_true", help="skip the verdict figures")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    digits, labels = test_digits()
    print(f"model {get_predictor().model_version}, {len(labels):,} test digits, {args.count} per condition")
    families = [f for f in args.families.split(",") if f] or list(FAMILIES)
    _, kept = degradations(digits, labels, families, args.count, args.seed)
    readings = [r for rs, _ in kept for r in rs]
    truth = np.concatenate([y for _, y in kept])
    print(f"ECE on all spoilt digits: {ece(readings, truth):.2%}")
    if not args.no_verdict:
        non_digits(args.count, args.seed)
        several(digits, args.count, args.seed)
        real_digits(digits, labels, 10 * args.count, args.seed)
    print(f"\n{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
