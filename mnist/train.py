"""python -m mnist.train: train the CNN on the original MNIST files and write weights + model card.

Read top to bottom: augment(), render_back(), train_epoch(), main(). Augmentation mirrors what
preprocessing hands the model from real drawings: digits a little rotated,
sheared, off-scale and off-centre, with thicker or thinner strokes than MNIST's.
render_back() adds a second copy of every training digit as the app really sees it: drawn
by mnist.synth on a canvas, transparent layer or photographed paper, then preprocessed back.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import platform
import random
import sys
import time
from datetime import UTC, datetime
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from mnist.config import MODEL_CARD_PATH, WEIGHTS_PATH
from mnist.data import load_split, resolve_data_dir, verify
from mnist.errors import NoDigitFound
from mnist.evaluate import predict_labels, scores
from mnist.model import Net, normalise
from mnist.preprocess import preprocess
from mnist.synth import STYLES, compose, render


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 (N, 28, 28) -> randomly deformed uint8 images, all on tensors (no per-image Python)."""
    n = batch.shape[0]
    x = batch.float().unsqueeze(1) / 255.0

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    # Rotation up to 15 deg, scale 0.85-1.15 with a little aspect change, shear up to 0.2,
    # shift up to 2.5 px: residual misalignment that centring by mass leaves in real drawings.
    angle = uniform(-15, 15) * math.pi / 180
    scale = uniform(0.85, 1.15)
    aspect = uniform(0.9, 1.1)
    shear = uniform(-0.2, 0.2)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2.5 / 14)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos / (scale * aspect)
    theta[:, 0, 1] = (-sin + shear * cos) / (scale * aspect)
    theta[:, 1, 0] = sin * aspect / scale
    theta[:, 1, 1] = (cos + shear * sin) * aspect / scale
    theta[:, :, 2] = shift
    keep = torch.rand(n, generator=generator) < 0.1  # a tenth stay untouched
    theta[keep] = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Stroke width: 15% thicker (3x3 dilation), 15% thinner (2x2 erosion), like markers and fine pens.
    choice = torch.rand(n, generator=generator)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(F.pad(-x, (0, 1, 0, 1), value=0.0), 2, stride=1)
    x = torch.where((choice < 0.15).view(n, 1, 1, 1), thick, x)
    x = torch.where((choice > 0.85).view(n, 1, 1, 1), thin, x)
    return (x.squeeze(1) * 255).round_().clamp_(0, 255).to(torch.uint8)


def _render_back_chunk(job: tuple[int, np.ndarray]) -> np.ndarray:
    """(seed, uint8 digits) -> the same digits rendered and preprocessed back (runs in a worker)."""
    seed, digits = job
    rng = np.random.default_rng(seed)
    out = digits.copy()
    for i, digit in enumerate(digits):
        ink, _, _ = compose(rng, [digit], "separated")  # one digit at a random size and slant
        image = render(rng, ink, STYLES[int(rng.integers(len(STYLES)))])
        with contextlib.suppress(NoDigitFound):  # a render that lost the digit keeps MNIST's own
            out[i] = preprocess(image).model_input
    return out


def render_back(images: torch.Tensor, seed: int, workers: int = 2) -> torch.Tensor:
    """uint8 (N, 28, 28) -> each digit drawn in a random user style and preprocessed back, as the app sees it.

    Training on these as well as on MNIST teaches the classifier the front end's own habits (its crop,
    stroke-width normalisation and JPEG leftovers); ~6 ms a digit, so it runs in worker processes.
    """
    shard = 1000
    jobs = [(seed * 100_003 + k, images[i : i + shard].numpy()) for k, i in enumerate(range(0, len(images), shard))]
    done, started, out = 0, time.time(), []
    with Pool(workers) as pool:
        for chunk in pool.imap(_render_back_chunk, jobs):
            out.append(chunk)
            done += len(chunk)
            print(
                f"\rrendered back {done:,}/{len(images):,} {time.time() - started:.0f}s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    return torch.from_numpy(np.concatenate(out)) if out else images.clone()


def validation_split(count: int, validation: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation indices, training indices) of `count` training images: a seeded shuffle, validation first.

    A function of its own because tests/number_gen.py needs the shipped classifier's validation images too.
    """
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[:validation], order[validation:]


def train_epoch(net, images, labels, optimizer, scheduler, generator, batch_size, epoch, epochs) -> tuple[float, float]:
    """One pass over the training images in a seeded random order; prints a progress bar."""
    net.train()
    order = torch.randperm(len(images), generator=generator)
    total_loss, correct, seen = 0.0, 0, 0
    steps = math.ceil(len(images) / batch_size)
    started = time.time()
    for step in range(steps):
        index = order[step * batch_size : (step + 1) * batch_size]
        x = normalise(augment(images[index], generator)).contiguous(memory_format=torch.channels_last)
        y = labels[index]
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        if step % 20 == 0 or step == steps - 1:
            done = int(30 * (step + 1) / steps)
            bar = "#" * done + "." * (30 - done)
            print(
                f"\repoch {epoch}/{epochs} [{bar}] loss {total_loss / seen:.4f} acc {correct / seen:.4f} "
                f"{time.time() - started:.0f}s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    return total_loss / seen, correct / seen


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=None, help="directory with the four MNIST .gz files (default: MNIST_DATA_DIR)"
    )
    parser.add_argument("--epochs", type=int, default=20, help="passes over MNIST and its rendered copies")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--validation", type=int, default=5000, help="training images held out for validation")
    parser.add_argument("--limit", type=int, default=0, help="train on only this many images (smoke tests)")
    parser.add_argument(
        "--render-back",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train on each digit rendered in a user style and preprocessed back (default: on)",
    )
    parser.add_argument("--out", default=str(WEIGHTS_PATH))
    parser.add_argument("--card", default=str(MODEL_CARD_PATH))
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    data_dir = resolve_data_dir(args.data_dir)
    md5s = verify(data_dir)
    images, labels = load_split("train", data_dir)
    test_images, test_labels = load_split("test", data_dir)

    # Validation is carved out of the training set; the test set is only reported, never used to choose.
    val_index, train_index = validation_split(len(images), args.validation, args.seed)
    if args.limit:
        train_index = train_index[: args.limit]
    train_x, train_y = images[train_index], labels[train_index]
    val_x, val_y = images[val_index], labels[val_index]
    rendered = render_back(train_x, args.seed) if args.render_back else train_x[:0]
    fit_x, fit_y = torch.cat([train_x, rendered]), torch.cat([train_y, train_y[: len(rendered)]])

    net = Net().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    steps_per_epoch = math.ceil(len(fit_x) / args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2
    )

    started = time.time()
    history = []
    for epoch in range(1, args.epochs + 1):
        loss, train_acc = train_epoch(
            net, fit_x, fit_y, optimizer, scheduler, generator, args.batch_size, epoch, args.epochs
        )
        val_acc = scores(predict_labels(net, val_x), val_y)["accuracy"] if len(val_x) else float("nan")
        history.append(
            {"epoch": epoch, "loss": round(loss, 5), "train_accuracy": round(train_acc, 5), "val_accuracy": val_acc}
        )
        print(f"epoch {epoch}: loss {loss:.4f} train {train_acc:.4f} validation {val_acc:.4f}", file=sys.stderr)
    training_seconds = time.time() - started

    net = net.to(memory_format=torch.contiguous_format)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    test = scores(predict_labels(net, test_images), test_labels)
    card = {
        "model_version": hashlib.sha256(out.read_bytes()).hexdigest()[:12],
        "architecture": str(net),
        "parameters": sum(p.numel() for p in net.parameters()),
        "weights_bytes": out.stat().st_size,
        "input": "28x28 uint8, white ink on black, digit scaled to 20 px and centred by mass (MNIST style)",
        "training": {
            "data": "MNIST training set (LeCun, Cortes, Burges; CC BY-SA 3.0)",
            "data_md5": md5s,
            "train_images": len(train_x),
            "rendered_copies": len(rendered),
            "validation_images": len(val_x),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": f"AdamW (weight decay 5e-4), one-cycle LR peak {args.lr}",
            "augmentation": "rotation +-15 deg, scale 0.85-1.15, aspect +-10%, shear +-0.2, shift +-2.5 px; "
            "15% dilated (thicker strokes), 15% eroded (thinner)"
            + (
                "; plus one copy of each image drawn by mnist.synth (canvas, transparent, paper or JPEG photo, "
                "random size and slant) and preprocessed back"
                if len(rendered)
                else ""
            ),
            "seed": args.seed,
            "seconds": round(training_seconds, 1),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
            "history": history,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "test": test,
    }
    Path(args.card).write_text(json.dumps(card, indent=2) + "\n")
    print(f"test accuracy {test['accuracy'] * 100:.2f}% ({test['errors']} errors); wrote {out} and {args.card}")
    return card


if __name__ == "__main__":
    main()
