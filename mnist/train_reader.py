"""python -m mnist.train_reader: train the number reader (LineNet, CTC) on numbers made of MNIST training digits.

Read top to bottom: make_examples() (synthetic numbers, rendered and read back through the same front
end and strip recipe as at prediction time), batches(), train(), main(). Numbers are composed by
mnist.synth from training digits 0-54,999; digits 55,000-59,999 (never trained on) make the
validation numbers. The MNIST test set is not used here at all: tests and benchmarks score the reader
on numbers composed from test digits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import time
from datetime import UTC, datetime
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from mnist.config import READER_CARD_PATH, READER_WEIGHTS_PATH, ROOT
from mnist.data import load_split, resolve_data_dir
from mnist.errors import NoDigitFound
from mnist.model import LineNet
from mnist.predict import load_weights, model_version_of
from mnist.preprocess import ink_map
from mnist.reader import decode, strip_batch, to_strip
from mnist.synth import GAP_TYPES, LAYOUTS, STYLES, render

TRAIN_DIGITS = range(0, 55_000)
VALIDATION_DIGITS = range(55_000, 60_000)
GAPS = (*GAP_TYPES, "mixed")
GAP_WEIGHTS = (0.3, 0.25, 0.25, 0.2)
MAX_TRAIN_DIGITS = 12
CACHE_DIR = ROOT / "data" / "reader_cache"
FRONT_END = ("synth.py", "preprocess.py", "reader.py")  # the modules make_examples' strips depend on

_digits: tuple[np.ndarray, np.ndarray] | None = None  # set in each worker by _init


def _init(data_dir: str) -> None:
    global _digits
    images, labels = load_split("train", data_dir)
    _digits = images.numpy(), labels.numpy()


def _examples(job: tuple[int, int, int, int, float]) -> tuple[list[np.ndarray], list[str], list[str]]:
    """(seed, count, first digit index, last, share of cells) -> strips, texts, kinds (runs in a worker).

    A kind is the gap type, after "cells " for a number laid out as MNIST cells (synth.compose_cells).
    """
    seed, count, lo, hi, cells = job
    images, labels = _digits
    rng = np.random.default_rng(seed)
    strips, texts, gaps = [], [], []
    while len(strips) < count:
        n = int(rng.integers(1, 9)) if rng.random() < 0.85 else int(rng.integers(9, MAX_TRAIN_DIGITS + 1))
        gap = GAPS[int(rng.choice(len(GAPS), p=GAP_WEIGHTS))]
        chosen = rng.integers(lo, hi, size=n)
        layout = "cells" if cells and rng.random() < cells else "drawn"
        ink, _, _ = LAYOUTS[layout](rng, [images[i] for i in chosen], gap)
        image = render(rng, ink, STYLES[int(rng.integers(len(STYLES)))])
        try:
            strip = to_strip(ink_map(image))
        except NoDigitFound:  # a render whose ink the front end drops entirely is not trained on
            continue
        strips.append(strip.pixels)
        texts.append("".join(str(int(labels[i])) for i in chosen))
        gaps.append(gap if layout == "drawn" else f"cells {gap}")
    return strips, texts, gaps


def front_end_version() -> str:
    """A short hash of the code that turns digits into strips (composing, rendering, the front end, the strip
    recipe): cached strips made by other code are not reused, so a preprocessing fix reaches the next training."""
    digest = hashlib.sha256()
    for name in FRONT_END:
        digest.update((ROOT / "mnist" / name).read_bytes())
    return digest.hexdigest()[:8]


def make_examples(
    count: int, seed: int, digits: range, data_dir: Path, cache_dir: Path, workers: int = 2, cells: float = 0.0
) -> dict:
    """`count` rendered numbers as strips (a `cells` share laid out as MNIST cells), cached in `cache_dir` by
    count, seed, digits, share and front-end version."""
    share = f"-cells{cells:g}" if cells else ""
    path = cache_dir / f"strips-{count}-{seed}-{digits.start}-{digits.stop}{share}-{front_end_version()}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            widths = z["widths"]
            flat = z["pixels"]
            splits = np.cumsum(widths)[:-1]
            return {"strips": np.split(flat, splits, axis=1), "texts": list(z["texts"]), "gaps": list(z["gaps"])}
    shard = 500
    jobs = [
        (seed * 100_003 + k, min(shard, count - k * shard), digits.start, digits.stop, cells)
        for k in range(math.ceil(count / shard))
    ]
    strips, texts, gaps = [], [], []
    start = time.perf_counter()
    with Pool(workers, initializer=_init, initargs=(str(data_dir),)) as pool:
        for s, t, g in pool.imap(_examples, jobs):
            strips += s
            texts += t
            gaps += g
            print(f"  examples {len(strips):,}/{count:,} ({time.perf_counter() - start:.0f} s)", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, pixels=np.concatenate(strips, axis=1), widths=np.array([s.shape[1] for s in strips]),
             texts=np.array(texts), gaps=np.array(gaps))  # fmt: skip
    return {"strips": strips, "texts": texts, "gaps": gaps}


def batches(widths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar widths (little padding): sort within random pools of 50 batches."""
    order = rng.permutation(len(widths))
    pool = batch_size * 50
    out = []
    for i in range(0, len(order), pool):
        chunk = order[i : i + pool]
        chunk = chunk[np.argsort(widths[chunk], kind="stable")]
        out += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random vertical shifts and squeezes of whole strips: lines are never perfectly centred."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1 + (torch.rand(n, generator=generator) - 0.5) * 0.2
    theta[:, 1, 1] = 1 + (torch.rand(n, generator=generator) - 0.5) * 0.2
    theta[:, 1, 2] = (torch.rand(n, generator=generator) - 0.5) * 0.25
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = x.min()
    return F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background


def sequence_accuracy(net: LineNet, data: dict, batch_size: int = 128) -> dict[str, float]:
    """Whole-number accuracy of greedy decoding, overall and per kind (gap type, "cells ..." for MNIST cells)."""
    net.eval()
    right = {kind: [0, 0] for kind in (*GAPS, *(f"cells {g}" for g in GAPS))}
    strips = data["strips"]
    with torch.inference_mode():
        for i in range(0, len(strips), batch_size):
            x, frames = strip_batch(strips[i : i + batch_size])
            out = net(x).numpy()
            for j in range(x.shape[0]):
                chars = decode(out[: frames[j], j])
                text = "".join(str(int(c.probabilities.argmax())) for c in chars)
                tally = right[data["gaps"][i + j]]
                tally[0] += text == data["texts"][i + j]
                tally[1] += 1
    result = {g: r / n for g, (r, n) in right.items() if n}
    result["all"] = sum(r for r, _ in right.values()) / len(strips)
    return result


def train(args: argparse.Namespace) -> dict:
    """Train, print progress per epoch, save weights and card; returns the card."""
    torch.manual_seed(args.seed)
    data_dir = resolve_data_dir(args.data_dir)
    print(f"making {args.examples:,} training numbers and {args.validation:,} validation numbers ...", flush=True)
    train_data = make_examples(
        args.examples, args.seed, TRAIN_DIGITS, data_dir, args.cache_dir, args.workers, args.cells
    )
    val_data = make_examples(
        args.validation, args.seed + 1, VALIDATION_DIGITS, data_dir, args.cache_dir, args.workers, args.cells
    )
    widths = np.array([s.shape[1] for s in train_data["strips"]])
    targets = [torch.tensor([int(c) + 1 for c in t], dtype=torch.long) for t in train_data["texts"]]
    net = LineNet()
    if args.init:  # fine-tune: start from trained weights (e.g. to adapt them to a changed front end)
        load_weights(net, args.init)
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed)
    steps_per_epoch = math.ceil(len(widths) / args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(args.seed)
    start, history = time.perf_counter(), []
    for epoch in range(1, args.epochs + 1):
        net.train()
        total = 0.0
        for step, idx in enumerate(batches(widths, args.batch_size, rng), 1):
            x, frames = strip_batch([train_data["strips"][i] for i in idx])
            x = augment(x, generator)
            y = [targets[i] for i in idx]
            log_probs = net(x)
            loss = F.ctc_loss(
                log_probs, torch.cat(y), frames, torch.tensor([len(t) for t in y]), blank=0, zero_infinity=True
            )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimiser.step()
            schedule.step()
            total += loss.item()
            if step % 200 == 0:
                print(f"  epoch {epoch} step {step}/{steps_per_epoch} loss {total / step:.4f}", flush=True)
        accuracy = sequence_accuracy(net, val_data)
        history.append({"epoch": epoch, "loss": total / steps_per_epoch, "validation": accuracy})
        shown = " ".join(f"{g} {a:.2%}" for g, a in accuracy.items())
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch}: loss {total / steps_per_epoch:.4f}; validation {shown} ({elapsed:.0f} s)", flush=True)
    seconds = time.perf_counter() - start
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.weights)
    card = {
        "model": "LineNet (CNN + BiLSTM, CTC) - reads a whole line of digits",
        "reader_version": model_version_of(args.weights),
        "parameters": sum(p.numel() for p in net.parameters()),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_seconds": round(seconds),
        "training": {
            "numbers": args.examples,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "max_lr": args.lr,
            "seed": args.seed,
            "init": model_version_of(args.init) if args.init else None,
            "digits": "MNIST training digits 0-54,999, composed by mnist.synth",
            "cells": args.cells,
        },  # fmt: skip
        "validation": {
            "numbers": args.validation,
            "digits": "MNIST training digits 55,000-59,999",
            **history[-1]["validation"],
        },  # fmt: skip
        "history": history,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    args.card.write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files (default MNIST_DATA_DIR)")
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--validation", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=10)  # what the shipped weights were trained for
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the training numbers")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="where rendered numbers are kept")
    parser.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tune)")
    parser.add_argument("--cells", type=float, default=0.0, help="share of numbers laid out as MNIST cells")
    parser.add_argument("--weights", type=Path, default=READER_WEIGHTS_PATH)
    parser.add_argument("--card", type=Path, default=READER_CARD_PATH)
    card = train(parser.parse_args(argv))
    print(json.dumps(card["validation"], indent=2))
    return card


if __name__ == "__main__":
    main()
