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
import inspect
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
from PIL import Image
from torch.nn import functional as F

from mnist.config import MODEL_CARD_PATH, ROOT, WEIGHTS_PATH
from mnist.data import load_split, resolve_data_dir, verify
from mnist.degrade import as_image, random_degradation, to_photo
from mnist.errors import NoDigitFound
from mnist.evaluate import predict_labels, scores
from mnist.model import NOT_A_DIGIT, SEVERAL_DIGITS, Net, normalise
from mnist.nondigits import TRAINED, sample
from mnist.predict import model_version_of
from mnist.preprocess import candidate_views
from mnist.synth import LAYOUTS, STYLES, compose, render


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


def _drawn(rng: np.random.Generator, ink: np.ndarray) -> tuple[Image.Image, bool | None]:
    """Ink drawn by mnist.synth in a random style -> (picture, dark ink?; None: the ink is in alpha)."""
    style = STYLES[int(rng.integers(len(STYLES)))]
    return render(rng, ink, style), {"canvas": False, "canvas_rgba": None, "paper": True}.get(style, False)


# Families a network trained on all of them evenly still reads worst (benchmarks/robustness.py): shown more often.
HARDEST = {"glass_blur": 3, "band": 3, "impulse_noise": 3, "zigzag": 2, "frame_fill": 2, "low_res": 2, "outline": 2}


def _one(rng: np.random.Generator, digit: np.ndarray) -> np.ndarray:
    """A 28x28 MNIST digit -> its ink at a random size and slant, as mnist.synth draws it."""
    ink, _, _ = compose(rng, [digit], "separated")
    return ink


def _spoil(rng: np.random.Generator, digit: np.ndarray) -> tuple[Image.Image, bool | None]:
    """A 28x28 MNIST digit -> (a picture of it as people hand them in, whether its ink is dark; None: in alpha).

    Two kinds, about equally: drawn by mnist.synth on a canvas, transparent layer or photographed paper (the
    app's everyday input); or spoilt by one to three mnist.degrade families at random severities (noise, blur,
    lines, bands, fog, outlines, low resolution, frame-filling crops...), then shown in either polarity.
    """
    if rng.random() < 0.45:
        return _drawn(rng, _one(rng, digit))
    ink = digit.astype(np.float32) / 255.0
    if rng.random() < 0.25:  # the same spoiling on a bigger picture of the digit
        side = int(rng.integers(29, 90))
        ink = np.asarray(Image.fromarray(ink, "F").resize((side, side), Image.Resampling.BILINEAR))
    if rng.random() < 0.9:
        ink, _ = random_degradation(rng, ink, weights=HARDEST)
    if rng.random() < 0.4:
        return as_image(ink), False  # white on black, as digit collections store them
    dark = bool(rng.random() < 0.5)
    return to_photo(rng, ink, invert=dark), dark


def _several(rng: np.random.Generator, digits: np.ndarray) -> tuple[Image.Image, list, bool | None]:
    """Two or three digits side by side -> (picture, each digit's box, dark ink?)."""
    layout = LAYOUTS["cells" if rng.random() < 0.3 else "drawn"]
    ink, boxes, _ = layout(rng, list(digits), "separated" if rng.random() < 0.7 else "touching")
    if rng.random() < 0.5:
        image, dark = _drawn(rng, ink)
        return image, boxes, dark
    dark = bool(rng.random() < 0.5)
    return to_photo(rng, ink, invert=dark), boxes, dark


def _nondigit(rng: np.random.Generator, family: str) -> tuple[Image.Image, bool | None]:
    """Something that is not a digit, drawn or spoilt the same ways as the digits."""
    ink = sample(rng, family)
    if rng.random() < 0.3:
        side = int(rng.integers(56, 280))
        ink = np.asarray(Image.fromarray(ink, "F").resize((side, side), Image.Resampling.BILINEAR))
        return _drawn(rng, ink)
    if rng.random() < 0.5:
        ink, _ = random_degradation(rng, ink, most=2)
    dark = bool(rng.random() < 0.5)
    return (to_photo(rng, ink, invert=dark), dark) if rng.random() < 0.6 else (as_image(ink), False)


def _inside(box, centre_of) -> bool:
    x0, y0, x1, y1 = box
    cx, cy = centre_of
    return x0 <= cx <= x1 and y0 <= cy <= y1


def _views_chunk(job: tuple[str, int, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kind, seed, digits, labels) -> every candidate view of each spoilt picture, its label and picture index.

    Views in the polarity the picture really has get its label; views in the other polarity show a hole
    where the digit is and are labelled "not a digit". Several digits count only where a view holds two.
    """
    kind, seed, digits, labels = job
    rng = np.random.default_rng(seed)
    xs, ys, group = [], [], []

    def add(image, dark, label_of) -> None:
        with contextlib.suppress(NoDigitFound):
            for view in candidate_views(image):
                label = label_of(view) if view.dark in (None, dark) or dark is None else NOT_A_DIGIT
                if label is not None:
                    xs.append(view.model_input)
                    ys.append(label)
                    group.append(i)

    for i in range(len(labels)):
        if kind in ("digits", "drawn"):
            image, dark = _spoil(rng, digits[i]) if kind == "digits" else _drawn(rng, _one(rng, digits[i]))
            add(image, dark, lambda view, i=i: int(labels[i]))
        elif kind == "several":
            image, boxes, dark = _several(rng, digits[i])
            centres = [((a + c) / 2, (b + d) / 2) for a, b, c, d in boxes]
            add(
                image,
                dark,
                lambda view, c=centres: SEVERAL_DIGITS if sum(_inside(view.box, x) for x in c) > 1 else None,
            )
        else:
            image, dark = _nondigit(rng, TRAINED[int(labels[i]) % len(TRAINED)])
            add(image, dark, lambda view: NOT_A_DIGIT)
    empty = np.zeros((0, 28, 28), np.uint8)
    return (np.stack(xs) if xs else empty), np.asarray(ys, np.int64), np.asarray(group, np.int64)


def rendered_views(kind: str, digits: np.ndarray, labels: np.ndarray, seed: int):
    """spoilt_views' pictures made in this process, without a progress bar: a fine-tune's replay (a few thousand
    views, seconds) -> (uint8 views (M, 28, 28), labels (M,), picture (M,)) as NumPy arrays."""
    return _views_chunk((kind, seed, digits, labels))


def spoilt_views(kind: str, digits: np.ndarray, labels: np.ndarray, seed: int, workers: int = 2):
    """Pictures made from MNIST digits (see _views_chunk) -> (uint8 views (M, 28, 28), labels (M,), picture (M,)).

    kind: "digits" (one spoilt picture per digit), "drawn" (one picture per digit, only drawn the everyday
    ways: canvas, transparent layer, photographed paper), "several" (digits[i] holds 2-3 digits for one picture),
    "nondigits" (labels[i] only picks a family). ~10 ms a picture, so it runs in worker processes.
    """
    shard = 500
    starts = range(0, len(labels), shard)
    jobs = [(kind, seed * 100_003 + k, digits[i : i + shard], labels[i : i + shard]) for k, i in enumerate(starts)]
    xs, ys, gs, done, started = [], [], [], 0, time.time()
    with Pool(workers) as pool:
        for offset, (x, y, g) in zip(range(0, len(labels), shard), pool.imap(_views_chunk, jobs), strict=True):
            xs.append(x)
            ys.append(y)
            gs.append(g + offset)
            done += min(shard, len(labels) - offset)
            print(
                f"\r{kind}: {done:,}/{len(labels):,} pictures {time.time() - started:.0f}s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    return (
        torch.from_numpy(np.concatenate(xs)),
        torch.from_numpy(np.concatenate(ys)),
        torch.from_numpy(np.concatenate(gs)),
    )


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


def _cache_key(*args) -> str:
    """A hash of the code that makes training pictures and of the arguments that choose them."""
    digest = hashlib.sha256(repr(args).encode())
    for module in ("degrade.py", "nondigits.py", "preprocess.py", "synth.py"):
        digest.update((ROOT / "mnist" / module).read_bytes())
    for function in (_one, _drawn, _spoil, _several, _nondigit, _views_chunk, spoilt_views):
        digest.update(inspect.getsource(function).encode())
    digest.update(repr(HARDEST).encode())
    return digest.hexdigest()[:16]


def chosen_views(probs: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Index of the view each picture is read from, as Predictor.read picks it: the surest digit."""
    best = probs[:, :10].max(1).values
    order = torch.argsort(groups * 2 - best)  # by picture, surest first (best < 1 keeps pictures apart)
    first = torch.ones(len(order), dtype=torch.bool)
    first[1:] = groups[order][1:] != groups[order][:-1]
    return order[first]


def calibrate(net: Net, views: torch.Tensor, labels: torch.Tensor, everyday, plain, nondigits) -> dict:
    """Set the network's temperature and verdict thresholds on validation data (never the test set).

    The temperature minimises the log-loss of all validation views. The thresholds are read off the view the
    engine would choose in each validation picture. Unsure: 1.5% of the digits handed in every way
    (`everyday`: drawn, photographed or spoilt) fall below it. Not a digit: the share of that class (of it
    and the digits) reached by one in 200 of the digits handed in plainly (`plain`: MNIST's own images and digits
    drawn on a canvas, a transparent layer or photographed paper), never above half; a digit spoilt beyond
    reading may rightly be called not a digit, a plainly written one should not. `nondigits` (validation
    non-digit pictures, trained families) only reports how many of them the two thresholds flag.
    """
    net.eval()

    def logits_of(x):
        with torch.no_grad():
            return torch.cat([net(normalise(chunk)) for chunk in x.split(2000)])

    logits = logits_of(views)
    t = torch.zeros((), requires_grad=True)  # log temperature
    optimizer = torch.optim.LBFGS([t], lr=0.1, max_iter=100)

    def loss():
        optimizer.zero_grad()
        value = F.cross_entropy(logits / t.exp(), labels)
        value.backward()
        return value

    optimizer.step(loss)
    temperature = float(t.detach().exp())
    net.temperature.fill_(temperature)

    def chosen(pictures) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (confidence in the digit, not-a-digit share) of each picture's chosen view."""
        x, _, groups = pictures
        probs = F.softmax(logits_of(x) / temperature, dim=1)
        probs = probs[chosen_views(probs, groups)]
        digits = probs[:, :10].sum(1)
        return (probs[:, :10].max(1).values / digits), probs[:, NOT_A_DIGIT] / (probs[:, NOT_A_DIGIT] + digits)

    confidence, _ = chosen(everyday)
    _, share = chosen(plain)
    unsure_below = float(torch.quantile(confidence, 0.015))
    not_a_digit_from = min(0.5, float(torch.quantile(share, 0.995)))
    net.unsure_below.fill_(unsure_below)
    net.not_a_digit_from.fill_(not_a_digit_from)
    other_confidence, other_share = chosen(nondigits)
    flagged = (other_share >= not_a_digit_from) | (other_confidence < unsure_below)
    return {
        "temperature": round(temperature, 4),
        "unsure_below": round(unsure_below, 4),
        "not_a_digit_from": round(not_a_digit_from, 4),
        "validation_non_digits_flagged": round(float(flagged.float().mean()), 4),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=None, help="directory with the four MNIST .gz files (default: MNIST_DATA_DIR)"
    )
    parser.add_argument("--epochs", type=int, default=8, help="passes over MNIST and the spoilt views")
    parser.add_argument("--clean-copies", type=int, default=2, help="times MNIST's own images come in an epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--validation", type=int, default=5000, help="training images held out for validation")
    parser.add_argument("--limit", type=int, default=0, help="train on only this many images (smoke tests)")
    parser.add_argument("--non-digits", type=int, default=22000, help="pictures of things that are not digits")
    parser.add_argument("--several", type=int, default=9000, help="pictures of two or three digits")
    parser.add_argument("--workers", type=int, default=2, help="processes that make the spoilt views")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tuning)")
    parser.add_argument("--out", default=str(WEIGHTS_PATH))
    parser.add_argument("--card", default=str(MODEL_CARD_PATH))
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
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
    scale = 1.0
    if args.limit:
        scale = args.limit / len(train_index)
        train_index = train_index[: args.limit]
    train_x, train_y = images[train_index], labels[train_index]
    val_x, val_y = images[val_index], labels[val_index]
    started = time.time()

    def views_of(x, y, seed, nondigits, several):
        groups = np.random.default_rng(seed).integers(0, len(x), size=(several, 3))
        return [
            spoilt_views("digits", x.numpy(), y.numpy(), seed, args.workers),
            spoilt_views("nondigits", x.numpy()[:0], np.arange(nondigits), seed + 1, args.workers),
            spoilt_views("several", x.numpy()[groups], np.zeros(several, np.int64), seed + 2, args.workers),
        ]

    # The spoilt views take longer to make than an epoch: kept in data/train_cache/, keyed by everything that
    # makes them (the code and the arguments), so a rerun with other training settings starts at once.
    key = _cache_key(args.seed, args.limit, args.validation, args.non_digits, args.several)
    cache = ROOT / "data" / "train_cache" / f"views-{key}.pt"
    if cache.exists():
        fit_sets, val_sets, everyday, drawn = torch.load(cache, weights_only=True)
    else:
        fit_sets = views_of(train_x, train_y, args.seed, round(args.non_digits * scale), round(args.several * scale))
        val_sets = views_of(val_x, val_y, args.seed + 7919, args.non_digits // 10, args.several // 10)
        # Everyday pictures of validation digits, one view each, for choosing the unsure threshold.
        # Validation digits' pictures for choosing the verdict thresholds: every way, and drawn plainly.
        half = len(val_x) // 2
        every, plain = slice(0, min(half, 2000)), slice(half, half + min(half, 2000))
        everyday = spoilt_views("digits", val_x[every].numpy(), val_y[every].numpy(), args.seed + 104_729, args.workers)
        drawn = spoilt_views("drawn", val_x[plain].numpy(), val_y[plain].numpy(), args.seed + 7, args.workers)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save((fit_sets, val_sets, everyday, drawn), cache)
    rendering_seconds = time.time() - started
    # MNIST's own images more than once an epoch (each time deformed differently): clean digits stay sharp.
    fit_x = torch.cat([train_x] * args.clean_copies + [v for v, _, _ in fit_sets])
    fit_y = torch.cat([train_y] * args.clean_copies + [y for _, y, _ in fit_sets])

    net = Net()
    if args.init:
        net.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True))
    net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    steps_per_epoch = math.ceil(len(fit_x) / args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2
    )

    history = []
    val_views, val_labels = torch.cat([v for v, _, _ in val_sets]), torch.cat([y for _, y, _ in val_sets])
    for epoch in range(1, args.epochs + 1):
        loss, train_acc = train_epoch(
            net, fit_x, fit_y, optimizer, scheduler, generator, args.batch_size, epoch, args.epochs
        )
        val_acc = scores(predict_labels(net, val_x), val_y)["accuracy"] if len(val_x) else float("nan")
        net.eval()
        with torch.inference_mode():
            read = torch.cat([net(normalise(c)).argmax(1) for c in val_views.split(2000)])
        view_acc = float((read == val_labels).float().mean())
        history.append(
            {
                "epoch": epoch,
                "loss": round(loss, 5),
                "train_accuracy": round(train_acc, 5),
                "val_accuracy": val_acc,
                "val_views_accuracy": round(view_acc, 5),
            }
        )
        print(
            f"epoch {epoch}: loss {loss:.4f} train {train_acc:.4f} validation {val_acc:.4f} views {view_acc:.4f}",
            file=sys.stderr,
        )
    training_seconds = time.time() - started

    net = net.to(memory_format=torch.contiguous_format)
    plain = [torch.cat([val_x, drawn[0]]), None, torch.cat([torch.arange(len(val_x)), drawn[2] + len(val_x)])]
    calibration = calibrate(net, val_views, val_labels, everyday, plain, val_sets[1])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    test = scores(predict_labels(net, test_images), test_labels)
    card = {
        "model_version": model_version_of(out),
        "architecture": str(net),
        "parameters": sum(p.numel() for p in net.parameters()),
        "weights_bytes": out.stat().st_size,
        "input": "28x28 uint8, white ink on black, digit scaled to 20 px and centred by mass (MNIST style)",
        "classes": "0-9 the digits, 10 not a digit, 11 several digits",
        "training": {
            "data": "MNIST training set (LeCun, Cortes, Burges; CC BY-SA 3.0), and pictures made from it by "
            "mnist.synth, mnist.degrade and mnist.nondigits (no other data)",
            "data_md5": md5s,
            "train_images": len(train_x),
            "clean_copies": args.clean_copies,
            "rendered_copies": len(train_x),
            "views": {
                "digits": len(fit_sets[0][1]),
                "not_a_digit": int(sum(int((y == NOT_A_DIGIT).sum()) for _, y, _ in fit_sets)),
                "several_digits": len(fit_sets[2][1]),
                "non_digit_pictures": round(args.non_digits * scale),
                "several_digit_pictures": round(args.several * scale),
            },
            "validation_images": len(val_x),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": f"AdamW (weight decay 5e-4), one-cycle LR peak {args.lr}",
            "augmentation": "every batch: rotation +-15 deg, scale 0.85-1.15, aspect +-10%, shear +-0.2, shift "
            "+-2.5 px; 15% dilated, 15% eroded. Besides the MNIST images (deformed anew in each copy), one picture "
            "per training digit, either drawn by mnist.synth (canvas, transparent, paper or JPEG photo) or spoilt "
            "by 1-3 mnist.degrade families at random severities (more often: " + ", ".join(HARDEST) + ") in "
            "either polarity, and every candidate view the front end makes of it (views in the wrong polarity "
            "labelled not a digit); letters, scribbles, shapes and textures (mnist.nondigits; fonts held out) "
            "as not a digit; 2-3 digits side by side as several digits",
            "calibration": calibration,
            "seed": args.seed,
            "init": model_version_of(args.init) if args.init else None,
            "seconds": round(training_seconds, 1),
            "rendering_seconds": round(rendering_seconds, 1),
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
