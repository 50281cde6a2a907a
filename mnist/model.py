"""The CNN: small enough for well under 1 ms per image on a laptop CPU, accurate enough for 99.6%+."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

# Classes 0-9 are the digits; the two more say what else a single-digit picture can be.
NOT_A_DIGIT, SEVERAL_DIGITS = 10, 11
CLASSES = 12


def _block(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    # conv -> BatchNorm -> ReLU; BN lets a short CPU schedule use a high learning rate.
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Net(nn.Module):
    """Three stages (28 -> 14 -> 7) and a small classifier head; 279k parameters, ~15M MACs.

    One 5x5 conv at full resolution is as good as two 3x3 there at a quarter of
    the cost (the full-resolution stage dominates CPU time); the work happens at
    14x14, where two 3x3 convs see whole stroke junctions. The 7x7 stage is
    pooled to 3x3 rather than globally, so the head still knows where strokes
    are (a 6 and a 9 differ mostly in position). Measured on 2 CPU cores: ~6,000
    images/s at batch 256, ~0.4 ms for one image, ~30 s per training epoch.
    """

    def __init__(self, dropout: float = 0.3, classes: int = CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(1, 32, kernel=5), nn.MaxPool2d(2),  # 28 -> 14
            _block(32, 64), _block(64, 64), nn.MaxPool2d(2),  # 14 -> 7
            _block(64, 128), nn.AdaptiveAvgPool2d(3),  # 7 -> 3
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(128 * 9, 128, bias=False), nn.BatchNorm1d(128),
            nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(128, classes),
        )  # fmt: skip
        # Chosen on validation data after training and saved with the weights: logits are divided by
        # `temperature` (calibration), a digit read below `unsure_below` is reported as unsure, and a picture
        # whose "not a digit" share (of it and the digits) reaches `not_a_digit_from` as not a digit.
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("unsure_below", torch.zeros(()))
        self.register_buffer("not_a_digit_from", torch.full((), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 28, 28) float, already normalised with MEAN/STD; returns logits (N, CLASSES)."""
        return self.head(self.features(x))


def for_inference(net: Net) -> Net:
    """`net` (in eval mode) made faster in place for serving: each BatchNorm folded into the layer before
    it and the weights in channels-last order. Same outputs to ~1e-5; ~2x the images/s on 2 CPU cores
    (benchmarks/predict_latency.py). Its state dict no longer matches the training network's."""
    net.eval()
    for block in (net.features[i] for i in (0, 2, 3, 5)):
        block[0], block[1] = fuse_conv_bn_eval(block[0], block[1]), nn.Identity()
    net.head[2], net.head[3] = fuse_linear_bn_eval(net.head[2], net.head[3]), nn.Identity()
    return net.to(memory_format=torch.channels_last)


# Pixel statistics of the MNIST training set (0..1 scale), the standard normalisation.
MEAN, STD = 0.1307, 0.3081


def normalise(batch_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) as the network was trained on."""
    return ((batch_uint8.float() / 255.0) - MEAN).div_(STD).unsqueeze(1)


def log_probabilities(model: nn.Module, batch_uint8: torch.Tensor) -> torch.Tensor:
    """(N, 10) log-probabilities of the digits, given that the picture is one digit (evaluation, numbers)."""
    return F.log_softmax(model(normalise(batch_uint8))[:, :10], dim=1)


def class_probabilities(model: nn.Module, batch_uint8: torch.Tensor) -> torch.Tensor:
    """(N, CLASSES) calibrated probabilities: the ten digits, not a digit, several digits."""
    return F.softmax(model(normalise(batch_uint8)) / model.temperature, dim=1)


class LineNet(nn.Module):
    """The number reader: a strip of ink (N, 1, 32, W) -> per-column scores (T = W/2, N, 11) for CTC.

    Class 0 is CTC's blank, class d + 1 is digit d. Convolutions see a digit's strokes (4 stages,
    height 32 -> 2, width halved once, so a digit ~18 px wide spans ~9 columns and two equal digits
    side by side still leave room for the blank between them); a bidirectional LSTM along the line
    then decides, column by column, which digit (if any) is centred there, knowing its neighbours:
    the part that tells a touching 1-7 from a 4, which no cut-and-classify scheme can.
    """

    STRIP_HEIGHT = 32
    WIDTH_STRIDE = 2

    def __init__(self, hidden: int = 96) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(1, 16), nn.MaxPool2d(2),  # 32 -> 16, width / 2
            _block(16, 32), nn.MaxPool2d((2, 1)),  # 16 -> 8
            _block(32, 64), nn.MaxPool2d((2, 1)),  # 8 -> 4
            _block(64, 96), nn.MaxPool2d((2, 1)),  # 4 -> 2
        )  # fmt: skip
        self.project = nn.Sequential(nn.Linear(96 * 2, 128), nn.ReLU(inplace=True), nn.Dropout(0.2))
        self.rnn = nn.LSTM(128, hidden, batch_first=False, bidirectional=True)
        self.classify = nn.Linear(2 * hidden, 11)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 32, W) float normalised like `normalise`; returns log-probabilities (W/2, N, 11)."""
        f = self.features(x)  # (N, C, 2, T)
        n, c, h, t = f.shape
        f = f.permute(3, 0, 1, 2).reshape(t, n, c * h)
        out, _ = self.rnn(self.project(f))
        return F.log_softmax(self.classify(out), dim=2)
