"""Model: the model card, the test digits it gets wrong, and how it does on the history's labelled rows."""

from __future__ import annotations

import json

import streamlit as st

from mnist.config import MODEL_CARD_PATH, READER_CARD_PATH, get_settings
from mnist.errors import InvalidDataset, StoreUnavailable
from ui import charts, resources, versions, views

MAX_MISTAKES_SHOWN = 60
GRID_COLUMNS = 10


@st.cache_resource(show_spinner="Reading the MNIST test set and finding the digits the model gets wrong…")
def test_mistakes(data_dir: str | None, model_version: str) -> tuple[list, int]:
    """(misclassified (image, true, predicted) triples, test-set size) — once per data set and model version;
    without a data directory, on the 1,000 test digits shipped with the app."""
    from mnist.evaluate import mistakes_on_sample, mistakes_on_test_set  # loads torch: after the card has painted

    return mistakes_on_test_set(data_dir) if data_dir else mistakes_on_sample()


def load_card(path=MODEL_CARD_PATH) -> dict | None:
    """A model card (weights/*.json), or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def card_section(card: dict) -> None:
    """Headline numbers, the architecture and how it was trained."""
    test, training = card.get("test", {}), card.get("training", {})
    cols = st.columns(4)
    cols[0].metric("MNIST test accuracy", f"{test.get('accuracy', 0):.2%}", border=True)
    cols[1].metric(f"Test errors (of {test.get('count', 0):,})", f"{test.get('errors', 0)}", border=True)
    cols[2].metric("Parameters", f"{card.get('parameters', 0):,}", border=True)
    minutes = training.get("seconds", 0) / 60
    cols[3].metric("Training time", f"{minutes:.0f} min", border=True)

    left, right = st.columns(2, gap="large")
    if test.get("per_class_accuracy"):
        left.altair_chart(charts.per_class_accuracy(test["per_class_accuracy"]), width="stretch")
    if training.get("history"):
        left.altair_chart(charts.training_curve(training["history"]), width="stretch")
    if test.get("confusion_matrix"):
        right.altair_chart(charts.confusion(test["confusion_matrix"], title="MNIST test set"), width="stretch")

    st.markdown(
        "\n".join(
            [
                f"- **Version** {views.plain(card.get('model_version', '?'))}",
                f"- **Trained on** {views.plain(training.get('data', '?'))}: "
                f"{training.get('train_images', 0):,} training and {training.get('validation_images', 0):,} "
                "validation images"
                + (f", plus {training['rendered_copies']:,} redrawn copies" if training.get("rendered_copies") else "")
                + (
                    f"; {training['views']['non_digit_pictures']:,} pictures of things that are not digits and "
                    f"{training['views']['several_digit_pictures']:,} of several digits"
                    if training.get("views")
                    else ""
                ),
                (
                    f"- **Verdict** below {training['calibration']['unsure_below']:.0%} confidence a digit is "
                    f"reported as unsure, and from a {training['calibration'].get('not_a_digit_from', 0.5):.0%} "
                    f'share for "not a digit" a picture is reported as not one; probabilities calibrated with '
                    f"temperature {training['calibration']['temperature']:.2f} (all chosen on validation data)"
                    if training.get("calibration")
                    else ""
                ),
                f"- **Schedule** {training.get('epochs', '?')} epochs, batch {training.get('batch_size', '?')}, "
                f"{views.plain(training.get('optimizer', '?'))}",
                f"- **Augmentation** {views.plain(training.get('augmentation', '?'))}",
                f"- **Input** {views.plain(card.get('input', '?'))}",
                f"- **Trained** {views.plain(training.get('trained_at', '?'))} on "
                f"{views.plain(training.get('machine', '?'))}",
            ]
        )
    )
    with st.expander("Architecture", icon=":material/account_tree:"):
        st.code(card.get("architecture", "?"), language=None)


def reader_section(card: dict) -> None:
    """The number reader: how often it reads a whole validation number right, by how the digits sit."""
    st.subheader("Whole numbers")
    validation, training = card.get("validation", {}), card.get("training", {})
    st.caption(
        "Numbers are read by a second network that looks at the whole line at once (CNN + BiLSTM, trained with "
        f"CTC on {training.get('numbers', 0):,} numbers composed from MNIST training digits). Whole numbers "
        f"read exactly right, on {validation.get('numbers', 0):,} validation numbers of unseen digits:"
    )
    shown = {"separated": "Digits apart", "touching": "Touching", "overlapping": "Overlapping", "all": "All"}
    for col, (key, label) in zip(st.columns(len(shown)), shown.items(), strict=True):
        col.metric(label, f"{validation.get(key, 0):.1%}", border=True)
    st.markdown(
        f"- **Version** {views.plain(card.get('reader_version', '?'))}, {card.get('parameters', 0):,} parameters\n"
        f"- **Trained** {views.plain(card.get('trained_at', '?'))} in {card.get('training_seconds', 0) / 60:.0f} min"
        f" on {views.plain(card.get('machine', '?'))}"
    )


def mistakes_section() -> None:
    """A grid of test digits the model gets wrong: of the MNIST test set in MNIST_DATA_DIR, or of the sample
    shipped with the app."""
    st.subheader("Test digits it gets wrong")
    data_dir = get_settings().mnist_data_dir
    try:
        wrong, count = test_mistakes(str(data_dir) if data_dir else None, resources.get_predictor().model_version)
    except (OSError, InvalidDataset) as exc:
        st.warning(f"Could not read the MNIST test set in MNIST_DATA_DIR: {views.plain(exc)}")
        return
    shown = min(len(wrong), MAX_MISTAKES_SHOWN)
    where = "" if data_dir else " (the first 1,000 of the test set, shipped with the app; MNIST_DATA_DIR gives all)"
    st.caption(
        f"{len(wrong)} of {count:,} test images{where} are misread; the first {shown}, each with its true digit:"
    )
    columns = st.columns(GRID_COLUMNS)
    for i, (image, true, predicted) in enumerate(wrong[:MAX_MISTAKES_SHOWN]):
        columns[i % GRID_COLUMNS].image(
            views.pixel_grid(image, cell=3, grid=False), caption=f"{true}, read as {predicted}"
        )


def history_section() -> None:
    """Accuracy on the digits people have labelled (each digit of a labelled number counts: mnist.store.Stats)."""
    st.subheader("On the history's labelled rows")
    store = resources.get_store()
    if store is None or not resources.database_ready():
        st.info("The history database is not reachable, so there is nothing to compare with.")
        return
    try:
        stats = store.stats()
    except StoreUnavailable as exc:
        st.warning(f"Could not read the history: {views.plain(exc)}")
        return
    if not stats.labelled:
        st.info('No labelled digits yet. After saving a drawing, answer "Was this right?" to build this up.')
        return
    cols = st.columns([1, 2], gap="large")
    cols[0].metric("Accuracy on labelled digits", f"{stats.accuracy:.1%}", border=True)
    cols[0].metric("Labelled digits", f"{stats.labelled:,} ({stats.correct:,} right)", border=True)
    cols[1].altair_chart(charts.confusion(stats.confusion, title="Labelled history digits"), width="stretch")


views.page_start()
st.title("The model")
versions.section()
card = load_card()
if card is None:
    st.warning("No model card found (weights/model_card.json). It is written by `make train`.")
else:
    card_section(card)
reader_card = load_card(READER_CARD_PATH)
if reader_card is not None:
    reader_section(reader_card)
try:
    mistakes_section()
except FileNotFoundError:
    st.warning("No model weights found (weights/mnist_cnn.pt), so the test digits cannot be checked.")
history_section()
