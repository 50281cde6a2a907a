"""Latency and throughput of mnist.predict, and what doing preprocessing right costs and buys.

    python -m benchmarks.predict_latency [--threads N] [--repeat 300] [--sample 200]

Prints one table: p50/p99 latency of a single prediction (a 280x280 canvas image as the
drawing canvas sends it, RGBA with the strokes in alpha; and a 28x28 MNIST digit),
throughput at batch 256 (the network alone on prepared inputs, and predict_batch end to
end), each for our pipeline and for the naive one (the whole image resized to 28x28, no
crop, no centring); the canvas latency again while another process keeps a core busy, with
an intra-op thread per core and with one (what the app uses); then the accuracy of
both pipelines on re-drawn real MNIST test digits.
Targets: canvas p50 <= 2 ms and <= 1.5x the naive pipeline's; network >= 10,000 images/s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from mnist.errors import InvalidImage, NoDigitFound
from mnist.predict import CORES, get_predictor, predict, predict_batch
from mnist.preprocess import load_image, preprocess
from tests.redraw import redraw
from tests.support.sample import mnist_sample

BATCH = 256
ACCURACY_VARIANTS = ("black_on_white", "white_on_transparent", "photo_uneven", "thin_pen", "tiny_corner", "ruled_lines")


def naive_input(image) -> np.ndarray:
    """What many demos do: grey, invert if the paper is light, squash the whole image to 28x28."""
    grey = load_image(image).convert("L")
    arr = np.asarray(grey.resize((28, 28), Image.Resampling.LANCZOS))
    return 255 - arr if arr.mean() > 127 else arr


def naive_predict(image):
    return get_predictor().classify([naive_input(image)])[0]


def naive_predict_batch(images):
    return get_predictor().classify([naive_input(image) for image in images])


def latency(fn, image, repeat: int) -> tuple[float, float]:
    """(p50, p99) in milliseconds of fn(image), after a warm-up."""
    for _ in range(10):
        fn(image)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - started)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def throughput(fn, batch, rounds: int = 5) -> float:
    """Images per second of fn(batch), best of a few rounds (after a warm-up)."""
    fn(batch)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn(batch)
        best = min(best, time.perf_counter() - started)
    return len(batch) / best


@contextmanager
def busy_core():
    """Another process spinning on one core for the duration (what a busy machine looks like)."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        hog.kill()
        hog.wait()


def ours_predict_batch(images):
    """predict_batch's pipeline, but an image with no digit found counts as a miss (None)."""
    prepared = []
    for image in images:
        try:
            prepared.append(preprocess(image).model_input)
        except (NoDigitFound, InvalidImage):
            prepared.append(None)
    found = get_predictor().classify([m for m in prepared if m is not None])
    it = iter(found)
    return [next(it) if m is not None else None for m in prepared]


def accuracy(fn_batch, variant: str, images, labels, seed: int = 2024) -> float:
    drawn = [redraw(variant, image, seed, i) for i, image in enumerate(images)]
    predictions = fn_batch(drawn)
    return float(np.mean([p is not None and p.digit == label for p, label in zip(predictions, labels, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: 1, as the app)")
    parser.add_argument("--repeat", type=int, default=300, help="single-image timings per figure")
    parser.add_argument("--sample", type=int, default=200, help="re-drawn digits per variant for accuracy")
    args = parser.parse_args()
    images, labels = mnist_sample()
    predictor = get_predictor()  # sets one intra-op thread, as the app runs
    if args.threads:
        torch.set_num_threads(args.threads)
    canvas = redraw("white_on_transparent", images[0], 0, 0)  # (280, 280, 4) uint8, as the canvas sends it
    digit28 = images[1]
    canvases = [redraw("white_on_transparent", images[i], 0, i) for i in range(BATCH)]
    prepared = [p.model_input for p in predict_batch(canvases)]

    rows = [
        (
            "single 280x280 canvas, p50 / p99 ms",
            latency(predict, canvas, args.repeat),
            latency(naive_predict, canvas, args.repeat),
        ),
        (
            "single 28x28 digit, p50 / p99 ms",
            latency(predict, digit28, args.repeat),
            latency(naive_predict, digit28, args.repeat),
        ),
    ]
    network = throughput(predictor.classify, prepared)
    ours_batch = throughput(predict_batch, canvases)
    naive_batch = throughput(naive_predict_batch, canvases)
    threads = torch.get_num_threads()
    contended = {}
    with busy_core():
        for n in sorted({CORES, threads}, reverse=True):
            torch.set_num_threads(n)
            contended[n] = (latency(predict, canvas, args.repeat), latency(naive_predict, canvas, args.repeat))
    torch.set_num_threads(threads)

    print(f"torch {torch.__version__}, {threads} CPU threads, model {predictor.model_version}")
    print()
    print(f"{'':44}{'ours (MNIST-style)':>22}{'naive (resize 28x28)':>24}")
    for name, ours, naive in rows:
        print(f"{name:44}{ours[0]:>12.2f} / {ours[1]:<7.2f}{naive[0]:>14.2f} / {naive[1]:<7.2f}")
    for n, (ours, naive) in contended.items():
        name = f"canvas, other core busy, {n} thread{'s' if n > 1 else ''}, ms"
        print(f"{name:44}{ours[0]:>12.2f} / {ours[1]:<7.2f}{naive[0]:>14.2f} / {naive[1]:<7.2f}")
    print(f"{'batch 256, network only (classify), img/s':44}{network:>22,.0f}{network:>24,.0f}")
    print(f"{'batch 256 canvases, end to end, img/s':44}{ours_batch:>22,.0f}{naive_batch:>24,.0f}")
    print()
    print(f"accuracy on {args.sample} re-drawn MNIST test digits per variant")
    print(f"{'variant':44}{'ours':>22}{'naive':>24}")
    sample_images, sample_labels = images[: args.sample], labels[: args.sample]
    for variant in ACCURACY_VARIANTS:
        ours = accuracy(ours_predict_batch, variant, sample_images, sample_labels)
        naive = accuracy(naive_predict_batch, variant, sample_images, sample_labels)
        print(f"{variant:44}{ours:>21.1%} {naive:>23.1%}")
    print()
    p50, naive50 = rows[0][1][0], rows[0][2][0]
    print(
        f"targets: canvas p50 <= 2 ms: {'met' if p50 <= 2 else 'MISSED'} ({p50:.2f} ms); "
        f"<= 1.5x naive: {'met' if p50 <= 1.5 * naive50 else 'MISSED'} ({p50 / naive50:.2f}x); "
        f"network >= 10,000 img/s at batch 256: {'met' if network >= 10_000 else 'MISSED'} ({network:,.0f})"
    )


if __name__ == "__main__":
    main()
