"""python -m mnist.finetune: learn from the History's corrections. Fine-tune the active classifier on the
labelled rows, measure the candidate honestly, gate it, and keep it in the registry (mnist.registry serves it
once activated).

Read top to bottom: in_holdout() and labelled_examples() (what is learnt, what is held out), replay()
(what keeps it from forgetting), fine_tune(), evaluate() and gate(), then the job (run), how the app starts it
in a process of its own (start), and the command line.

The recipe, and why:
- Rows are split by a hash of their id: one in HOLDOUT_ONE_IN is held out of every fine-tune for good, so a
  candidate and its parent are always measured on rows neither learnt from.
- From the active version's weights, HISTORY_PER_BATCH labelled digits in every batch of BATCH_SIZE; the rest
  replay MNIST's training digits (3/4) and pictures rendered from them and from mnist.nondigits (1/4: drawn
  digits, not-a-digit and several-digit views), so the network keeps what it could do, verdict classes too.
- The first two stages (features[:4], 28x28 and 14x14) are frozen and every BatchNorm keeps its statistics.
  Measured on a style the shipped model reads at 65% (tests/support/segments.py): fine-tuning everything
  cost 0.11-0.19 points of MNIST accuracy in nine runs; this recipe, -0.02 to +0.04 in four, for the same
  gain on the holdout (docs/finetune.md). Frozen stages also halve the time a step takes.
- AdamW with a one-cycle learning rate peaking at LR, train.augment on every batch, EPOCHS passes over the
  labelled rows (at most MAX_STEPS steps), all seeded.
- The calibration (temperature, unsure and not-a-digit thresholds) is the parent's: the frozen stages and the
  replay keep the outputs close to the parent's, and each version's figures count the verdicts it gives on
  every evaluation set with them, so a drift would show.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from mnist import logs, registry
from mnist.config import ROOT, get_settings
from mnist.data import FILES, SPLITS, load_split, read_sample, resolve_data_dir
from mnist.errors import (
    EngineError,
    InvalidImage,
    ModelNotReady,
    NoDigitFound,
    NothingToLearn,
    StoreUnavailable,
    TrainingDataMissing,
)
from mnist.evaluate import scores
from mnist.model import CLASSES, NOT_A_DIGIT, SEVERAL_DIGITS, Net, normalise
from mnist.predict import Predictor, fit_weights, read_weights, verdict, weights_bytes, weights_version
from mnist.preprocess import View, candidate_views
from mnist.redraw import VARIANTS, redraw
from mnist.store import Filters, LabelledInput, ModelVersion, Store
from mnist.train import augment, rendered_views

HOLDOUT_ONE_IN = 5
BATCH_SIZE = 128
HISTORY_PER_BATCH = 16
EPOCHS = 12
MAX_STEPS = 1500  # ~3 minutes on one busy core (0.13 s a step): 12 passes over 2,000 labelled digits, fewer beyond
LR = 5e-4
FROZEN = 4  # features[:FROZEN] keep the parent's weights: the 28x28 and 14x14 stages
REPLAY_PICTURES = {"drawn": 600, "nondigits": 600, "several": 200}  # rendered once a job: ~15 s
REDRAWN_PER_VARIANT = 30  # committed MNIST test digits redrawn each of the 17 ways (mnist.redraw)
MAX_MNIST_DROP_POINTS = 0.2
HEARTBEAT_SECONDS = 2.0
log = logging.getLogger(__name__)


# --- what is learnt, and what is held out ------------------------------------------------------------


def in_holdout(record_id: int) -> bool:
    """Whether a labelled row is held out: one in HOLDOUT_ONE_IN, by a hash of its id (the same rows every time,
    whatever else is labelled, and spread over every day and source)."""
    digest = hashlib.sha256(str(record_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % HOLDOUT_ONE_IN == 0


@dataclass(frozen=True)
class Examples:
    """Labelled 28x28 inputs, as the model saw them, and the history rows they came from."""

    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64
    rows: int

    def __len__(self) -> int:
        return len(self.labels)


def labelled_examples(labelled: list[LabelledInput]) -> tuple[Examples, Examples, int]:
    """(train, holdout, number rows left out). A digit row is its input and its digit; a number row is each digit's
    input with the label's digit in the same place, when the label has as many digits as were read (else no
    place pairs up for sure, and the row is left out, as are number rows saved before their inputs were kept)."""
    parts: dict[bool, tuple[list[np.ndarray], list[int], list[int]]] = {False: ([], [], []), True: ([], [], [])}
    left_out = 0
    for row in labelled:
        if row.inputs is None or len(row.inputs) != len(row.label_text):
            left_out += 1
            continue
        images, labels, ids = parts[in_holdout(row.id)]
        images.extend(row.inputs)
        labels.extend(int(c) for c in row.label_text)
        ids.append(row.id)

    def examples(images: list[np.ndarray], labels: list[int], ids: list[int]) -> Examples:
        stacked = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
        return Examples(torch.from_numpy(stacked), torch.tensor(labels, dtype=torch.int64), len(ids))

    return examples(*parts[False]), examples(*parts[True]), left_out


def mnist_train_dir() -> Path:
    """The folder with MNIST's training files (the replay needs them); TrainingDataMissing when there is none."""
    try:
        data_dir = resolve_data_dir()
    except FileNotFoundError:
        data_dir = None
    needed = [name for name in FILES if name.startswith(SPLITS["train"])]
    if data_dir is None or not all((data_dir / name).exists() for name in needed):
        raise TrainingDataMissing(
            "a fine-tune replays MNIST's training digits so it does not forget them: set MNIST_DATA_DIR to the "
            "folder with the original MNIST files"
        )
    return data_dir


@dataclass(frozen=True)
class Replay:
    """What every batch mixes in besides the labelled rows: MNIST training digits, and rendered views."""

    digits: torch.Tensor
    digit_labels: torch.Tensor
    views: torch.Tensor
    view_labels: torch.Tensor


def replay(data_dir: Path, seed: int, classes: int = CLASSES) -> Replay:
    """MNIST's training digits, and REPLAY_PICTURES pictures rendered from them and from mnist.nondigits (their
    candidate views: drawn digits, not a digit, several digits; only the classes the network has)."""
    images, labels = load_split("train", data_dir)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(images), REPLAY_PICTURES["drawn"], replace=False)
    groups = rng.integers(0, len(images), size=(REPLAY_PICTURES["several"], 3))
    made = [
        rendered_views("drawn", images[picked].numpy(), labels[picked].numpy(), seed),
        rendered_views("nondigits", images.numpy()[:0], np.arange(REPLAY_PICTURES["nondigits"]), seed + 1),
        rendered_views("several", images.numpy()[groups], np.zeros(len(groups), np.int64), seed + 2),
    ]
    views = torch.from_numpy(np.concatenate([x for x, _, _ in made]))
    view_labels = torch.from_numpy(np.concatenate([y for _, y, _ in made]))
    keep = view_labels < classes
    return Replay(images, labels, views[keep], view_labels[keep])


# --- training ------------------------------------------------------------------------------------------


def steps_for(rows: int, epochs: int) -> int:
    """Optimizer steps for `epochs` passes over `rows` labelled digits, HISTORY_PER_BATCH a step (<= MAX_STEPS)."""
    return max(1, min(MAX_STEPS, math.ceil(epochs * rows / HISTORY_PER_BATCH)))


def fine_tune(
    state: dict[str, torch.Tensor],
    train: Examples,
    mixed_in: Replay,
    *,
    epochs: int,
    seed: int,
    on_step: Callable[[int, int, float], None] = lambda step, steps, loss: None,
) -> Net:
    """The parent's weights (`state`) trained on `train` mixed with `mixed_in`; see the module's docstring."""
    torch.manual_seed(seed)  # dropout
    generator = torch.Generator().manual_seed(seed)
    net = Net(classes=int(state["head.6.weight"].shape[0]))
    fit_weights(net, state, "the parent")
    for parameter in net.features[:FROZEN].parameters():
        parameter.requires_grad_(False)
    net = net.to(memory_format=torch.channels_last)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=5e-4)
    steps = steps_for(len(train), epochs)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=steps, pct_start=0.2)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)]
    replay_views = (BATCH_SIZE - HISTORY_PER_BATCH) // 4
    replay_digits = BATCH_SIZE - HISTORY_PER_BATCH - replay_views
    order = torch.zeros(0, dtype=torch.int64)
    for step in range(steps):
        if len(order) < HISTORY_PER_BATCH:  # the next pass over the labelled rows, in a new order
            order = torch.cat([order, torch.randperm(len(train), generator=generator)])
        mine, order = order[:HISTORY_PER_BATCH], order[HISTORY_PER_BATCH:]
        digits = torch.randint(len(mixed_in.digits), (replay_digits,), generator=generator)
        views = torch.randint(len(mixed_in.views), (replay_views,), generator=generator)
        x = torch.cat([train.images[mine], mixed_in.digits[digits], mixed_in.views[views]])
        y = torch.cat([train.labels[mine], mixed_in.digit_labels[digits], mixed_in.view_labels[views]])
        net.train()
        for norm in norms:
            norm.eval()  # keep the parent's statistics: 16 new digits a batch must not shift them for MNIST's
        loss = F.cross_entropy(net(normalise(augment(x, generator)).contiguous(memory_format=torch.channels_last)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        on_step(step + 1, steps, loss.item())
    net.eval()
    return net.to(memory_format=torch.contiguous_format)


# --- evaluation and the gate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationSets:
    """What every version is measured on: the history holdout, MNIST's test set (or the committed sample), and
    committed test digits redrawn the ways people hand them in (each picture's candidate views)."""

    holdout: Examples
    mnist: tuple[torch.Tensor, torch.Tensor]
    mnist_set: str  # "test" (all 10,000) or "sample" (the committed first 1,000)
    redrawn: list[tuple[str, int, list[View]]]  # (variant, true digit, candidate views)


def evaluation_sets(holdout: Examples, seed: int = 2024) -> EvaluationSets:
    """The sets above: MNIST's test split when MNIST_DATA_DIR has it, else the committed sample."""
    try:
        images, labels = load_split("test")
        mnist_set = "test"
    except (FileNotFoundError, EngineError):  # no MNIST_DATA_DIR, or not the published files
        sample_images, sample_labels = read_sample()
        images, labels, mnist_set = torch.from_numpy(sample_images.copy()), torch.from_numpy(sample_labels), "sample"
    sample_images, sample_labels = read_sample()
    chosen = np.random.default_rng(seed).choice(len(sample_images), REDRAWN_PER_VARIANT, replace=False)
    redrawn = []
    for variant in VARIANTS:
        for i in chosen:
            try:
                views = candidate_views(redraw(variant, sample_images[i], seed, int(i)))
            except (NoDigitFound, InvalidImage):
                views = []  # the front end lost it: a miss for every version alike
            redrawn.append((variant, int(sample_labels[i]), views))
    return EvaluationSets(holdout, (images, labels), mnist_set, redrawn)


def _measured(predictor: Predictor, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """scores() of the digit read (the most probable of the ten), and how many of each verdict it gives."""
    if len(labels) == 0:
        return {"accuracy": None, "errors": 0, "count": 0, "per_class_accuracy": [], "confusion_matrix": [],
                "verdicts": {}}  # fmt: skip
    probs = np.concatenate([predictor.probabilities(list(chunk.numpy())) for chunk in images.split(2000)])
    read = torch.from_numpy(probs[:, :10].argmax(1))
    digits = probs[:, :10].sum(1)
    confidence = probs[:, :10].max(1) / np.maximum(digits, 1e-12)
    verdicts = Counter(
        verdict(float(m), float(n), float(s), float(c), predictor.thresholds)
        for m, n, s, c in zip(digits, probs[:, NOT_A_DIGIT], probs[:, SEVERAL_DIGITS], confidence, strict=True)
    )
    return scores(read, labels) | {"verdicts": dict(sorted(verdicts.items()))}


def evaluate(predictor: Predictor, sets: EvaluationSets) -> dict:
    """A version's figures on every evaluation set (per class and confusion matrices included)."""
    holdout = _measured(predictor, sets.holdout.images, sets.holdout.labels) | {"rows": sets.holdout.rows}
    mnist = _measured(predictor, *sets.mnist) | {"set": sets.mnist_set}
    readable = [(variant, label, views) for variant, label, views in sets.redrawn if views]
    read = predictor.read([views for _, _, views in readable])
    right: Counter[str] = Counter(v for (v, label, _), p in zip(readable, read, strict=True) if p.digit == label)
    per_variant = {v: round(right[v] / REDRAWN_PER_VARIANT, 4) for v in VARIANTS}
    redrawn = {"accuracy": round(sum(right.values()) / len(sets.redrawn), 6), "count": len(sets.redrawn)}
    return {"holdout": holdout, "mnist": mnist, "redrawn": redrawn | {"per_variant": per_variant}}


def gate(candidate: dict, parent: dict, parent_version: str) -> dict:
    """Whether the candidate may replace its parent: not worse on the history holdout (fewer or as many errors on
    the same rows; and some rows to compare on), and at most MAX_MNIST_DROP_POINTS points worse on MNIST."""
    reasons = []
    held, held_before = candidate["holdout"], parent["holdout"]
    if held["count"] == 0:
        reasons.append(f"no labelled row is held out yet (one in {HOLDOUT_ONE_IN} is): nothing to compare it on")
    elif held["errors"] > held_before["errors"]:
        reasons.append(
            f"worse than {parent_version} on the history holdout: {held['accuracy']:.1%} against "
            f"{held_before['accuracy']:.1%} of {held['count']} digits"
        )
    mnist, mnist_before = candidate["mnist"], parent["mnist"]
    drop = (mnist["errors"] - mnist_before["errors"]) * 100 / mnist["count"]
    if drop > MAX_MNIST_DROP_POINTS + 1e-9:
        reasons.append(
            f"{drop:.2f} points worse than {parent_version} on MNIST's {mnist['set']} digits: "
            f"{mnist['accuracy']:.2%} against {mnist_before['accuracy']:.2%} (at most {MAX_MNIST_DROP_POINTS} allowed)"
        )
    held_gain = None if held["count"] == 0 else round((held_before["errors"] - held["errors"]) * 100 / held["count"], 3)
    return {
        "passed": not reasons,
        "reasons": reasons,
        "parent": parent_version,
        "holdout_gain_points": held_gain,
        "mnist_change_points": round(-drop, 3),
        "max_mnist_drop_points": MAX_MNIST_DROP_POINTS,
        "parent_metrics": parent,
    }


# --- the job -------------------------------------------------------------------------------------------


class Heartbeat:
    """A job's progress and stage, written to its registry row every HEARTBEAT_SECONDS on a thread of its own
    (the row of a job whose beats stop is failed when read); `cancelled` once the row is no longer training."""

    def __init__(self, store: Store, version: str, report: Callable[[float, str], None] | None = None) -> None:
        self.store, self.version, self.report = store, version, report
        self.progress, self.stage = 0.0, "starting"
        self.cancelled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mnist-finetune-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._beat(worker=f"{socket.gethostname()}:{os.getpid()}")
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def update(self, progress: float, stage: str) -> None:
        """Where the job is now (written at the next beat); raises JobCancelled once the row was failed."""
        if self.cancelled:
            raise JobCancelled(f"version {self.version} is no longer training (it was marked failed)")
        self.progress, self.stage = min(max(progress, 0.0), 1.0), stage
        if self.report is not None:
            self.report(self.progress, stage)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._beat()

    def _beat(self, worker: str | None = None) -> None:
        # On StoreUnavailable the next beat tries again; a row left without beats for long is failed when read.
        with contextlib.suppress(StoreUnavailable):
            self.cancelled = not self.store.model_heartbeat(self.version, self.progress, self.stage, worker=worker)


class JobCancelled(EngineError):
    """The job's version was marked failed while it ran (its heartbeat was stale): it stops."""


def run(store: Store, version: str, report: Callable[[float, str], None] | None = None) -> ModelVersion:
    """The fine-tune job for a training `version` (see start): train, measure the candidate and its parent on the
    same sets, gate it and store it as ready. Any failure marks the version failed, saying why, and is raised."""
    torch.set_num_threads(1)  # one core: the app keeps the other
    started = time.monotonic()
    model = store.model(version)
    epochs, seed = int(model.recipe["epochs"]), int(model.recipe["seed"])
    try:
        with Heartbeat(store, version, report) as beat:
            beat.update(0.01, "reading the labelled history")
            train, holdout, left_out = labelled_examples(store.labelled_inputs())
            if len(train) == 0:
                raise NothingToLearn(f"none of the {holdout.rows} labelled rows is outside the holdout to learn from")
            parent_state = read_weights(store.model_weights(model.parent))
            beat.update(0.03, "rendering the replay")
            mixed_in = replay(mnist_train_dir(), seed, classes=int(parent_state["head.6.weight"].shape[0]))
            prepared = time.monotonic()

            def on_step(step: int, steps: int, loss: float) -> None:
                beat.update(0.08 + 0.77 * step / steps, f"training: step {step} of {steps}")

            net = fine_tune(parent_state, train, mixed_in, epochs=epochs, seed=seed, on_step=on_step)
            trained = time.monotonic()
            beat.update(0.86, "evaluating")
            state = net.state_dict()
            data = weights_bytes(state)
            sets = evaluation_sets(holdout)
            measured = evaluate(Predictor(state=state, version=version, split=False), sets)
            beat.update(0.93, f"evaluating {model.parent}")
            before = evaluate(Predictor(state=parent_state, version=model.parent, split=False), sets)
            verdict_ = gate(measured, before, model.parent)
            done = time.monotonic()
            figures = measured | {
                "examples": {"train_rows": train.rows, "train_digits": len(train), "holdout_rows": holdout.rows,
                             "holdout_digits": len(holdout), "number_rows_left_out": left_out},
                "steps": steps_for(len(train), epochs),
                "weights_sha256": hashlib.sha256(data).hexdigest(),
                "weights_version": weights_version(data),
                "seconds": {"prepare": round(prepared - started, 1), "train": round(trained - prepared, 1),
                            "evaluate": round(done - trained, 1), "total": round(done - started, 1)},
            }  # fmt: skip
            finished = store.finish_model(
                version, weights=data, metrics=figures, gate=verdict_, rows_trained_on=train.rows
            )
    except BaseException as exc:  # noqa: BLE001 - marked failed, then raised (KeyboardInterrupt too)
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        with contextlib.suppress(StoreUnavailable):  # else its heartbeat stops: it is failed when next read
            store.fail_model(version, reason)
        logs.event(log, "finetune_failed", level=logging.WARNING, version=version, detail=reason)
        raise
    logs.event(
        log, "finetune_finished", version=version, parent=model.parent, passed=verdict_["passed"],
        holdout=measured["holdout"]["accuracy"], holdout_before=before["holdout"]["accuracy"],
        mnist=measured["mnist"]["accuracy"], mnist_before=before["mnist"]["accuracy"], seconds=figures["seconds"],
    )  # fmt: skip
    return finished


# --- starting a job ------------------------------------------------------------------------------------


def start(store: Store, *, epochs: int | None = None, seed: int = 0, spawn: bool = True) -> ModelVersion:
    """Register a fine-tune of the active version; with `spawn`, run it in a process of its own (`python -m
    mnist.finetune run VERSION`, niced, one torch thread), so the app keeps serving. -> the training version.

    NothingToLearn without labelled rows, TrainingDataMissing without MNIST's training files,
    TrainingInProgress while another fine-tune trains (in any process).
    """
    epochs = EPOCHS if epochs is None else int(epochs)
    if not 1 <= epochs <= 100:
        raise ValueError(f"epochs must be from 1 to 100, not {epochs}")
    registry.shipped_model(store)
    parent = store.active_model()
    if parent is None:
        raise ModelNotReady("no version is active to fine-tune")
    if store.page(limit=1, filters=Filters(labelled=True)).total == 0:
        raise NothingToLearn("no row of the history is labelled: correct some readings in the History first")
    mnist_train_dir()
    recipe = {
        "kind": "finetune", "epochs": epochs, "seed": seed, "lr": LR, "batch_size": BATCH_SIZE,
        "history_per_batch": HISTORY_PER_BATCH, "max_steps": MAX_STEPS,
        "replay": "MNIST training digits (3/4) and views rendered from them and mnist.nondigits (1/4): "
        + ", ".join(f"{n} {kind} pictures" for kind, n in REPLAY_PICTURES.items()),
        "frozen": f"features[:{FROZEN}] (the 28x28 and 14x14 stages) and every BatchNorm's statistics",
        "holdout": f"rows whose sha256(id) is 0 modulo {HOLDOUT_ONE_IN}",
        "calibration": "the parent's (temperature and verdict thresholds)",
    }  # fmt: skip
    version = f"ft-{secrets.token_hex(4)}"
    model = store.start_model(version, parent=parent, recipe=recipe)
    logs.event(log, "finetune_started", version=version, parent=parent, epochs=epochs, spawned=spawn)
    if spawn:
        _spawn(store, version)
    return model


def _spawn(store: Store, version: str) -> subprocess.Popen:
    """`python -m mnist.finetune run VERSION` on this database; a thread waits for it and fails the version if the
    process ends without finishing it (killed, say). Its log lines go to this process's stderr."""
    env = {
        **os.environ,
        "DATABASE_URL": store.url.render_as_string(hide_password=False),  # the environment, never the command line
        "OMP_NUM_THREADS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist.finetune", "run", version],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )

    def reap() -> None:
        code = process.wait()
        if code != 0:
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            try:
                if store.fail_model(version, f"the training process (pid {process.pid}) ended with {how}"):
                    logs.event(log, "finetune_died", level=logging.WARNING, version=version, ended=how)
            except StoreUnavailable:
                pass  # its heartbeat has stopped: the version is failed when next read

    threading.Thread(target=reap, name="mnist-finetune-reaper", daemon=True).start()
    return process


def wait(store: Store, version: str, timeout: float, every: float = 1.0) -> ModelVersion:
    """Poll a version until it is no longer training (or `timeout` seconds pass); -> its last state."""
    deadline = time.monotonic() + timeout
    while True:
        model = store.model(version)
        if model.status != "training" or time.monotonic() >= deadline:
            return model
        time.sleep(every)


# --- the command line -----------------------------------------------------------------------------------


def _accuracy(figures: dict | None, key: str) -> str:
    value = (figures or {}).get(key, {}).get("accuracy")
    return "-" if value is None else f"{value * 100:.2f}%"


def describe(model: ModelVersion) -> str:
    """A version's figures as plain text: the candidate beside its parent, the gate, the timings."""
    lines = [
        f"version {model.version} ({model.status}{', shipped' if model.is_shipped else ''}), "
        f"parent {model.parent or '-'}, created {model.created_at:%Y-%m-%d %H:%M:%S} UTC"
    ]
    if model.status == "training":
        lines.append(f"progress {model.progress:.0%}: {model.stage}")
    if model.error:
        lines.append(f"error: {model.error}")
    parent = (model.gate or {}).get("parent_metrics")
    if model.metrics:
        lines.append(f"{'':22}{'this':>10}{'parent':>10}")
        for key, name in (("holdout", "history holdout"), ("mnist", "MNIST"), ("redrawn", "redrawn variants")):
            if key in model.metrics:
                count = model.metrics[key].get("count")
                label = f"{name} ({count})" if count is not None else name
                lines.append(f"{label:22}{_accuracy(model.metrics, key):>10}{_accuracy(parent, key):>10}")
    if model.gate:
        passed = "passed" if model.gate["passed"] else "refused: " + "; ".join(model.gate["reasons"])
        lines.append(f"gate {passed}" + (f" (forced {model.gate['forced_at']})" if model.gate.get("forced_at") else ""))
    if model.metrics and "seconds" in model.metrics:
        s = model.metrics["seconds"]
        lines.append(
            f"{model.rows_trained_on} rows trained on ({model.metrics['examples']['train_digits']} digits), "
            f"{model.metrics['steps']} steps; seconds: prepare {s['prepare']}, train {s['train']}, "
            f"evaluate {s['evaluate']}, total {s['total']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="fine-tune the active version on the labelled history")
    begin.add_argument("--epochs", type=int, default=EPOCHS, help="passes over the labelled rows")
    begin.add_argument("--seed", type=int, default=0)
    begin.add_argument("--background", action="store_true", help="run the job in a process of its own and return")
    commands.add_parser("run", help="run a registered job (what start --background and the API spawn)").add_argument(
        "version"
    )
    commands.add_parser("list", help="every version, newest first")
    commands.add_parser("show", help="one version's figures").add_argument("version")
    activate = commands.add_parser("activate", help="serve a version (every app process, within seconds)")
    activate.add_argument("version")
    activate.add_argument("--force", action="store_true", help="even if the gate refused it (logged)")
    commands.add_parser("rollback", help="serve the shipped weights again")
    args = parser.parse_args(argv)

    logs.configure()
    store = Store(get_settings().database_url)
    store.migrate()
    if args.command in ("run", "start"):
        os.nice(10)  # the app's requests come first
    try:
        if args.command == "run":
            run(store, args.version)
        elif args.command == "start":
            model = start(store, epochs=args.epochs, seed=args.seed, spawn=args.background)
            print(f"version {model.version}: fine-tuning {model.parent}", flush=True)
            if not args.background:
                print(describe(run(store, model.version, report=ProgressPrinter())))
        elif args.command == "list":
            for model in registry.list_models(store):
                print(
                    f"{model.version:14} {model.status:9} parent {model.parent or '-':14} "
                    f"holdout {_accuracy(model.metrics, 'holdout'):>8}  MNIST {_accuracy(model.metrics, 'mnist'):>8}"
                    + (f"  {model.progress:.0%} {model.stage}" if model.status == "training" else "")
                )
        elif args.command == "show":
            print(describe(registry.get_model(store, args.version)))
        elif args.command == "activate":
            print(describe(registry.activate(store, args.version, force=args.force)))
        elif args.command == "rollback":
            print(describe(registry.roll_back(store)))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


class ProgressPrinter:
    """A job's progress on stdout: each new stage, and how training goes every 10 seconds."""

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.kind, self.at = every, "", 0.0

    def __call__(self, progress: float, stage: str) -> None:
        kind = stage.split(":")[0]
        if kind != self.kind or time.monotonic() - self.at >= self.every:
            print(f"{datetime.now(UTC):%H:%M:%S} {progress:4.0%} {stage}", flush=True)
            self.kind, self.at = kind, time.monotonic()


if __name__ == "__main__":
    sys.exit(main())
