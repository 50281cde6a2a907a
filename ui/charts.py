"""Altair charts: probabilities (a digit, each digit of a number), counts per digit, confidence, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

PRIMARY = "#4f46e5"
RANKS = ["1st", "2nd", "3rd", "other"]
RANK_COLOURS = [PRIMARY, "#8b85f0", "#c4c1f7", "#d6d8de"]
DIGITS = [str(d) for d in range(10)]


def _rank_label(rank: str, p: float) -> str:
    # Neighbouring near-zero bars have no room for two labels each; their rank says enough.
    return f"{rank} {p:.0%}" if p >= 0.01 else rank


def probabilities(probs: Sequence[float]) -> alt.Chart:
    """Ten bars, one per digit; the three most likely coloured and labelled with their rank."""
    order = sorted(range(10), key=lambda d: probs[d], reverse=True)
    rank = {d: RANKS[i] if i < 3 else "other" for i, d in enumerate(order)}
    frame = pd.DataFrame(
        {
            "digit": DIGITS,
            "probability": [float(p) for p in probs],
            "rank": [rank[d] for d in range(10)],
            "label": [_rank_label(rank[d], probs[d]) if rank[d] != "other" else "" for d in range(10)],
        }
    )
    base = alt.Chart(frame).encode(
        x=alt.X("digit:N", sort=DIGITS, title="Digit", axis=alt.Axis(labelAngle=0, labelFontSize=14)),
        y=alt.Y("probability:Q", title="Probability", scale=alt.Scale(domain=[0, 1.12]), axis=alt.Axis(format="%")),
    )
    bars = base.mark_bar(cornerRadiusTopLeft=3, cornerRadiusTopRight=3).encode(
        color=alt.Color("rank:N", scale=alt.Scale(domain=RANKS, range=RANK_COLOURS), legend=None),
        tooltip=[alt.Tooltip("digit:N"), alt.Tooltip("probability:Q", format=".2%"), alt.Tooltip("rank:N")],
    )
    text = base.mark_text(dy=-8, fontSize=11).encode(text="label:N")
    return (bars + text).properties(height=220)


def digit_probabilities(rows: Sequence[tuple[str, Sequence[float]]]) -> alt.Chart:
    """A number's digits, one row each (its name, e.g. "#1 · 4"), across 0-9: how sure each digit is, and of what."""
    frame = pd.DataFrame(
        [{"place": name, "digit": str(d), "probability": float(p[d])} for name, p in rows for d in range(10)]
    )
    places = [name for name, _ in rows]
    base = alt.Chart(frame).encode(
        x=alt.X("digit:N", sort=DIGITS, title=None, axis=alt.Axis(labelAngle=0, orient="top", labelFontSize=13)),
        y=alt.Y("place:N", sort=places, title=None, axis=alt.Axis(labelFontSize=12)),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("probability:Q", scale=alt.Scale(domain=[0, 1], scheme="purples"), legend=None),
        tooltip=["place:N", "digit:N", alt.Tooltip("probability:Q", format=".1%")],
    )
    labels = base.mark_text(fontSize=11).encode(
        text=alt.condition(alt.datum.probability >= 0.05, alt.Text("probability:Q", format=".0%"), alt.value("")),
        color=alt.condition(alt.datum.probability > 0.5, alt.value("white"), alt.value("#1f2330")),
    )
    return (cells + labels).properties(height=30 + 34 * len(rows))  # Streamlit's height includes the axis


def per_digit(counts: Sequence[int], *, title: str = "Predictions per digit") -> alt.Chart:
    """How often each digit was predicted."""
    frame = pd.DataFrame({"digit": DIGITS, "count": [int(c) for c in counts]})
    return (
        alt.Chart(frame, title=title)
        .mark_bar(color=PRIMARY)
        .encode(
            x=alt.X("digit:N", sort=DIGITS, title="Predicted digit", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("count:Q", title="Count", axis=alt.Axis(tickMinStep=1)),
            tooltip=["digit:N", "count:Q"],
        )
        .properties(height=240)
    )


def confidence_histogram(bins: Sequence[int]) -> alt.Chart:
    """Counts in equal-width confidence bins from 0 to 1."""
    width = 1 / len(bins)
    frame = pd.DataFrame(
        {
            "from": [i * width for i in range(len(bins))],
            "to": [(i + 1) * width for i in range(len(bins))],
            "count": [int(c) for c in bins],
        }
    )
    return (
        alt.Chart(frame, title="Confidence")
        .mark_bar(color=PRIMARY, binSpacing=1)
        .encode(
            x=alt.X("from:Q", bin="binned", title="Confidence", axis=alt.Axis(format="%")),
            x2="to:Q",
            y=alt.Y("count:Q", title="Rows", axis=alt.Axis(tickMinStep=1)),
            tooltip=[alt.Tooltip("from:Q", format=".0%"), alt.Tooltip("to:Q", format=".0%"), "count:Q"],
        )
        .properties(height=240)
    )


def confusion(matrix: Sequence[Sequence[int]], *, title: str = "Confusion matrix") -> alt.Chart:
    """10x10 heatmap: rows are the true digit, columns the prediction; counts written in the cells."""
    frame = pd.DataFrame(
        [{"true": str(t), "predicted": str(p), "count": int(matrix[t][p])} for t in range(10) for p in range(10)]
    )
    frame["diagonal"] = frame["true"] == frame["predicted"]
    top = max(int(frame["count"].max()), 1)
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("predicted:N", sort=DIGITS, title="Predicted", axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("true:N", sort=DIGITS, title="True digit"),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.condition(
            alt.datum.count > 0,
            alt.Color("count:Q", scale=alt.Scale(type="symlog", domain=[0, top], scheme="purples"), legend=None),
            alt.value("#f6f6f9"),  # an empty cell reads as empty, not as the palette's palest colour
        ),
        tooltip=["true:N", "predicted:N", "count:Q"],
    )
    numbers = base.mark_text(fontSize=11).encode(
        text=alt.condition(alt.datum.count > 0, "count:Q", alt.value("")),
        color=alt.condition(alt.datum.count > top / 3, alt.value("white"), alt.value("#1f2330")),
    )
    return (cells + numbers).properties(height=360)


def per_class_accuracy(accuracies: Sequence[float], *, title: str = "Test accuracy per digit") -> alt.Chart:
    """Accuracy for each true digit, zoomed to where the differences are."""
    frame = pd.DataFrame({"digit": DIGITS, "accuracy": [float(a) for a in accuracies]})
    low = max(0.0, min(frame["accuracy"].min() - 0.01, 0.98))
    return (
        alt.Chart(frame, title=title)
        .mark_bar(color=PRIMARY)
        .encode(
            x=alt.X("digit:N", sort=DIGITS, title="True digit", axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "accuracy:Q",
                title="Accuracy",
                scale=alt.Scale(domain=[low, 1.0], clamp=True),
                axis=alt.Axis(format=".1%"),
            ),
            tooltip=["digit:N", alt.Tooltip("accuracy:Q", format=".2%")],
        )
        .properties(height=240)
    )


def training_curve(history: Sequence[dict]) -> alt.Chart:
    """Train and validation accuracy per epoch, from the model card."""
    rows = [
        {"epoch": h["epoch"], "split": split, "accuracy": h[key]}
        for h in history
        for split, key in (("train", "train_accuracy"), ("validation", "val_accuracy"))
        if h.get(key) is not None
    ]
    frame = pd.DataFrame(rows)
    return (
        alt.Chart(frame, title="Accuracy while training")
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("accuracy:Q", title="Accuracy", scale=alt.Scale(zero=False), axis=alt.Axis(format=".1%")),
            color=alt.Color("split:N", scale=alt.Scale(range=[PRIMARY, "#f59e0b"]), title=None),
            tooltip=["epoch:Q", "split:N", alt.Tooltip("accuracy:Q", format=".2%")],
        )
        .properties(height=240)
    )
