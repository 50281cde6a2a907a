"""The dashboard's pages driven by Streamlit's AppTest: real model, real database, no browser."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from mnist.config import MODEL_CARD_PATH, READER_CARD_PATH
from mnist.predict import predict
from mnist.service import read_number_and_save
from mnist.store import Filters, Store, StoreProvider
from tests.support.api import number_png
from tests.support.sample import as_mnist_test_dir, first_of

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
CLOSED_PORT_URL = "postgresql+psycopg2://postgres@127.0.0.1:9/nothing"  # port 9 (discard): nothing listens
XSS_NAME = "<img src=x onerror=alert(1)>.png"
STREAMLIT_PAGES_INIT = PagesManager.__init__


def digit_png(digit: int, *, nth: int = 0, side: int = 320, paper: bool = False, fmt: str = "PNG") -> bytes:
    """The nth MNIST test image of `digit`, enlarged to side x side: white on black, or black on white paper."""
    pixels = first_of(digit, nth)
    if paper:
        pixels = 255 - pixels
    image = Image.fromarray(pixels).resize((side, side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    (image.convert("RGB") if fmt == "JPEG" else image.convert("RGBA")).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def app_environment(monkeypatch, tmp_path):
    """The app imports `ui` from the repository root; no MNIST data unless a test provides it."""
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    monkeypatch.delenv("MNIST_API_TOKEN", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'history.sqlite3'}")

    # AppTest forgets before every run that app.py calls st.navigation, sees the pages/ folder and
    # falls back to Streamlit's old folder-based multipage mode, which runs a page script on its own
    # (no app.py, so no sidebar). A real server learns it once, on its first run; do the same here.
    def init(self, *args, **kwargs):
        STREAMLIT_PAGES_INIT(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def open_app(monkeypatch, url: str | None = None, page: str | None = None) -> AppTest:
    """Run app.py (optionally on another page) against DATABASE_URL=url; no exception may reach the page."""
    if url is not None:
        monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def current_url() -> str:
    import os

    return os.environ["DATABASE_URL"]


def draw(at: AppTest, png: bytes, *, strokes: int = 1) -> None:
    """What the canvas sends after a stroke: its Fabric.js objects and the PNG it renders (the width probe has
    reported the column's size first, as it does in a browser)."""
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    objects = [{"type": "path"}] * strokes
    at.session_state["draw_fit"] = {"size": {"width": 480, "height": 800}}
    at.session_state["draw_canvas"] = {"drawing": {"raw": {"objects": objects}, "data": url}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def shown_digit(at: AppTest) -> int | None:
    """The large predicted digit on the page, if any."""
    for block in at.markdown:
        found = re.search(r'class="predicted-digit"[^>]*>(\d)<', block.value)
        if found:
            return int(found.group(1))
    return None


def shown_number(at: AppTest) -> str | None:
    """The large number read on the page, if any."""
    for block in at.markdown:
        found = re.search(r'class="predicted-number"[^>]*>(\d+)<', block.value)
        if found:
            return found.group(1)
    return None


def canvas_number(text: str, size: tuple[int, int] = (480, 288)) -> bytes:
    """What the Draw canvas (480x288 for a 480 px column, white on black) sends for a written number."""
    width, height = size
    written = Image.open(io.BytesIO(number_png(text)))
    scale = min(0.9 * width / written.width, 0.8 * height / written.height)
    written = written.resize((int(written.width * scale), int(written.height * scale)), Image.Resampling.BILINEAR)
    canvas = Image.new("RGBA", size, (0, 0, 0, 255))
    canvas.paste(written.convert("RGBA"), ((width - written.width) // 2, (height - written.height) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def texts(elements) -> str:
    """The elements' text as a person reads it (Markdown escapes removed)."""
    return re.sub(r"\\(.)", r"\1", " ".join(str(e.value) for e in elements))


def saved(url: str) -> list:
    return Store(url).page(limit=500).items


def seed(url: str, items: list[tuple[int, str, str | None]]) -> list[int]:
    """Save real predictions of MNIST digits: (digit, source, filename) -> ids, oldest first."""
    store = Store(url)
    store.migrate()
    return [
        store.save(predict(digit_png(d, nth=i)), source=source, filename=name, original=digit_png(d, side=64))
        for i, (d, source, name) in enumerate(items)
    ]


# --- Draw -------------------------------------------------------------------------------------------


def blank_png(size: tuple[int, int] = (480, 288), *, speck: bool = False) -> bytes:
    """What the canvas sends with nothing (visible) on it: black, or black with one speck too faint to be ink."""
    blank = Image.new("RGBA", size, (0, 0, 0, 255))
    if speck:
        blank.putpixel((10, 10), (12, 12, 12, 255))
    buffer = io.BytesIO()
    blank.save(buffer, format="PNG")
    return buffer.getvalue()


def test_draw_page_is_the_default_and_asks_for_a_digit_or_a_number(monkeypatch):
    at = open_app(monkeypatch)
    assert at.title[0].value == "Draw a digit or a number"
    assert shown_digit(at) is None
    assert not [b for b in at.button if b.key == "save"]
    at.session_state["draw_fit"] = {"size": {"width": 480, "height": 800}}
    at.run()
    assert "Draw a digit, or a number" in texts(at.info)
    assert at.button(key="draw_undo").disabled and at.button(key="draw_clear").disabled  # nothing to undo yet


def test_drawn_digit_is_read_live_and_saved_only_on_request(monkeypatch):
    at = open_app(monkeypatch)
    draw(at, digit_png(7))
    assert shown_digit(at) == 7
    assert saved(current_url()) == []  # live predictions write nothing
    assert not at.button(key="draw_undo").disabled

    draw(at, digit_png(3), strokes=2)  # another stroke: the prediction follows the drawing
    assert shown_digit(at) == 3
    assert saved(current_url()) == []

    at.button(key="save").click().run()
    rows = saved(current_url())
    assert [(r.source, r.digit, r.filename) for r in rows] == [("draw", 3, None)]
    assert rows[0].original is not None and rows[0].original.startswith(b"\x89PNG")
    assert "Was this right?" in texts(at.success)
    assert not [b for b in at.button if b.key == "save"]  # the same drawing is not saved twice

    at.button(key=f"confirm_{rows[0].id}").click().run()
    assert Store(current_url()).get(rows[0].id).label == 3
    assert "Confirmed" in texts(at.success)


def test_the_same_drawing_saved_again_is_the_same_row(monkeypatch):
    at = open_app(monkeypatch)
    draw(at, digit_png(3))
    at.button(key="save").click().run()
    draw(at, digit_png(5), strokes=2)
    at.button(key="save").click().run()
    assert [r.digit for r in saved(current_url())] == [5, 3]

    draw(at, digit_png(3), strokes=3)  # the first drawing again (undo, redraw): already kept
    first = saved(current_url())[-1].id
    assert f"#{first}" in texts(at.success)
    assert not [b for b in at.button if b.key == "save"]
    for _ in range(3):  # reruns never save
        at.run()
    assert len(saved(current_url())) == 2

    # The saving rule itself, not only the page: saving the same content again answers the first row.
    def save_twice():
        import streamlit as st

        from mnist.service import read
        from tests.test_app import digit_png as png
        from ui import saving

        content = png(8)
        ids = [saving.save(read(content), content, source="draw", filename=None, latency_ms=1.0) for _ in range(2)]
        st.write(f"ids {ids[0].record_id} {ids[1].record_id}")

    page = AppTest.from_function(save_twice, default_timeout=120).run()
    assert not page.exception, [e.value for e in page.exception]
    first_id, second_id = re.search(r"ids (\d+) (\d+)", texts(page.markdown)).groups()
    assert first_id == second_id
    assert len(saved(current_url())) == 3


def test_wrong_prediction_is_corrected_with_the_true_digit(monkeypatch):
    at = open_app(monkeypatch)
    draw(at, digit_png(4))
    at.button(key="save").click().run()
    record = saved(current_url())[0]
    at.pills(key=f"truth_{record.id}").set_value(9).run()
    assert not at.exception
    assert Store(current_url()).get(record.id).label == 9
    assert "Corrected" in texts(at.success)


def test_clear_empties_the_canvas_and_blank_ink_says_so(monkeypatch):
    at = open_app(monkeypatch)
    draw(at, digit_png(2))
    assert shown_digit(at) == 2
    at.button(key="draw_clear").click().run()  # the page's Clear: the old picture is not read again
    assert shown_digit(at) is None
    assert at.session_state["draw_state"]["seed"]["objects"] == []  # the canvas is handed an empty drawing
    draw(at, blank_png(), strokes=0)  # ...which it sends back
    assert shown_digit(at) is None
    assert "Draw a digit, or a number" in texts(at.info)
    draw(at, blank_png(speck=True), strokes=1)  # a stroke with no visible ink
    assert shown_digit(at) is None
    assert "No ink found yet" in texts(at.info)


def test_undo_hands_the_canvas_its_strokes_but_the_last(monkeypatch):
    at = open_app(monkeypatch)
    draw(at, digit_png(1), strokes=3)
    at.button(key="draw_undo").click().run()
    assert len(at.session_state["draw_state"]["seed"]["objects"]) == 2
    assert not at.exception


def test_the_drawing_survives_a_page_switch(monkeypatch):
    at = open_app(monkeypatch)
    draw(at, digit_png(6), strokes=2)
    assert shown_digit(at) == 6
    at.switch_page("pages/history.py").run()
    at.switch_page("pages/draw.py").run()
    assert not at.exception
    assert len(at.session_state["draw_state"]["seed"]["objects"]) == 2  # the canvas starts from the strokes kept
    at.session_state["draw_fit"] = {"size": {"width": 480, "height": 800}}
    at.run()
    assert shown_digit(at) == 6  # and the reading is there before anything is drawn


def test_low_confidence_is_said_plainly():
    def page():
        import numpy as np  # AppTest.from_function runs this body alone: it imports what it needs

        from mnist.results import Prediction
        from ui import views

        probs = [0.05] * 10
        probs[3], probs[8] = 0.4, 0.2
        views.prediction(Prediction(3, 0.4, probs, np.zeros((28, 28), np.uint8), "test"))

    at = AppTest.from_function(page).run()
    assert not at.exception
    assert "Not sure" in texts(at.warning) and "40%" in texts(at.warning)


def test_a_picture_that_is_not_a_digit_is_said_plainly(monkeypatch):
    letter = Image.open(ROOT / "tests/data/engine/letter_A_0.png")
    buffer = io.BytesIO()
    letter.save(buffer, format="PNG")
    at = open_app(monkeypatch)
    draw(at, buffer.getvalue())
    assert "doesn't look like a digit" in texts(at.warning)


def test_database_down_still_predicts_warns_and_save_says_why(monkeypatch):
    at = open_app(monkeypatch, CLOSED_PORT_URL)
    sidebar_warnings = texts(at.sidebar.warning)
    assert "not reachable" in sidebar_warnings
    assert "PostgreSQL 127.0.0.1:9/nothing" in texts(at.sidebar.markdown)
    draw(at, digit_png(5))
    assert shown_digit(at) == 5
    at.button(key="save").click().run()
    assert not at.exception
    assert "unavailable" in texts(at.warning) and "not saved" in texts(at.warning)


def test_a_number_on_the_same_canvas_is_read_whole_saved_as_one_row_and_relabelled(monkeypatch):
    at = open_app(monkeypatch)
    draw(at, canvas_number("2024"), strokes=4)
    assert shown_number(at) == "2024" and shown_digit(at) is None
    captions = [caption for image in at.image for caption in image.captions]
    assert any("Each box is one digit" in c for c in captions)
    assert [c.split(":")[0] for c in captions if c.startswith("#")] == ["#1", "#2", "#3", "#4"]  # each digit's input
    assert saved(current_url()) == []  # live readings write nothing

    at.button(key="save").click().run()
    rows = saved(current_url())
    assert [(r.source, r.predicted_text, r.filename) for r in rows] == [("number", "2024", None)]
    assert "Was this right?" in texts(at.success)
    assert not [b for b in at.button if b.key == "save"]  # the same drawing is not saved twice

    at.text_input(key=f"truth_{rows[0].id}").input("2o25").run()  # a typo is refused, not stored
    assert "digits 0-9 only" in texts(at.warning)
    at.text_input(key=f"truth_{rows[0].id}").input("2025").run()
    assert Store(current_url()).get(rows[0].id).label_text == "2025"
    assert "Corrected" in texts(at.success) and "2025" in texts(at.success)

    draw(at, canvas_number("1234567890123"), strokes=13)
    assert shown_number(at) is None and "at most 12" in texts(at.warning)


# --- Upload -----------------------------------------------------------------------------------------


def test_one_uploaded_image_is_read_at_once_and_saved_on_request_with_a_clean_filename(monkeypatch):
    at = open_app(monkeypatch, page="pages/upload.py")
    at.file_uploader(key="uploads").set_value(("..\\scans\\six.png", digit_png(6, paper=True), "image/png")).run()
    assert not at.exception
    assert shown_digit(at) == 6
    assert any("What the model saw" in caption for image in at.image for caption in image.captions)
    assert saved(current_url()) == []  # read, not yet kept
    assert "Not saved yet" in texts(at.caption)

    at.button(key="save_uploads").click().run()
    rows = saved(current_url())
    assert [(r.source, r.digit, r.filename) for r in rows] == [("upload", 6, "six.png")]
    assert not [b for b in at.button if b.key == "save_uploads"]
    at.run()  # any rerun (a widget, a refresh) must not save the same upload again
    at.run()
    assert len(saved(current_url())) == 1

    # The same picture uploaded again, under another name: it is the row already saved.
    at.file_uploader(key="uploads").set_value(("copy.png", digit_png(6, paper=True), "image/png")).run()
    assert f"Saved as #{rows[0].id}" in texts(at.caption)
    assert not [b for b in at.button if b.key == "save_uploads"]
    assert len(saved(current_url())) == 1


def test_many_uploads_are_read_together_a_bad_file_fails_alone_and_save_all_keeps_each_once(monkeypatch):
    at = open_app(monkeypatch, page="pages/upload.py")
    files = [
        ("one.png", digit_png(1, paper=True), "image/png"),
        ("notes.png", b"these are my notes, not a picture", "image/png"),
        ("eight.jpg", digit_png(8, paper=True, fmt="JPEG"), "image/jpeg"),
        (XSS_NAME, digit_png(0, paper=True), "image/png"),
        ("one again.png", digit_png(1, paper=True), "image/png"),  # the same picture as one.png
    ]
    at.file_uploader(key="uploads").set_value(files).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["file"]) == [name for name, _, _ in files]
    assert list(table["reading"].fillna("")) == ["1", "", "8", "0", "1"]
    assert "Could not read this file" in table["status"][1]
    assert all(table["status"][i] == "Not saved yet" for i in (0, 2, 3, 4))
    assert table["input"][0].startswith("data:image/png;base64,")
    assert at.dataframe[0].proto.placeholder == "—"  # the unread file's empty cells, not "None"
    assert "5 file(s): 4 read, **1 could not be read**; 0 saved" in texts(at.markdown)
    assert "notes.png" in texts(at.error) and "Could not read this file" in texts(at.error)  # inline, with why
    assert saved(current_url()) == []

    at.button(key="save_uploads").click().run()
    rows = saved(current_url())
    assert sorted(r.filename for r in rows) == sorted(["one.png", "eight.jpg", XSS_NAME])  # one.png's twin: once
    assert {r.source for r in rows} == {"upload"}
    table = at.dataframe[0].value
    assert table["status"][0] == table["status"][4] and table["status"][0].startswith("Saved as #")

    at.selectbox(key="upload_details").set_value(1).run()  # the bad file's own message
    assert "Could not read this file" in texts(at.error)
    assert len(saved(current_url())) == 3


def test_a_bug_while_reading_an_upload_is_not_blamed_on_the_file(monkeypatch, caplog):
    def a_bug(*_args, **_kwargs):
        raise ValueError("operands could not be broadcast together")  # a NumPy bug, not an engine error

    monkeypatch.setattr("mnist.service.candidate_views", a_bug)
    # Streamlit's loggers do not propagate to the root logger that caplog listens on: listen on theirs.
    streamlit_log = logging.getLogger("streamlit")
    monkeypatch.setattr(streamlit_log, "handlers", [*streamlit_log.handlers, caplog.handler])
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/upload.py").run()
    at.file_uploader(key="uploads").set_value(("six.png", digit_png(6, paper=True), "image/png")).run()
    # The person sees a generic error without details (showErrorDetails = "none"), not "could not read
    # this file"; the server log has the traceback.
    shown = " ".join(str(e.value) for e in at.exception)
    assert "recorded in the logs" in shown and "broadcast" not in shown
    assert "Could not read this file" not in texts(at.markdown) + texts(at.error)
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert any(isinstance(e, ValueError) and "broadcast" in str(e) for e in logged)


def test_a_file_over_the_size_limit_is_refused_inline_and_counted(monkeypatch):
    monkeypatch.setenv("MNIST_MAX_IMAGE_BYTES", "2000")
    big = digit_png(2, side=900, paper=True)
    assert len(big) > 2000
    at = open_app(monkeypatch, page="pages/upload.py")
    files = [("big.png", big, "image/png"), ("small.png", digit_png(7, side=28), "image/png")]
    at.file_uploader(key="uploads").set_value(files).run()
    assert not at.exception
    assert "big.png" in texts(at.error) and "Too large" in texts(at.error)
    assert "2 file(s): 1 read, **1 could not be read**" in texts(at.markdown)
    at.button(key="save_uploads").click().run()
    assert [r.filename for r in saved(current_url())] == ["small.png"]


def test_camera_photo_is_read_and_saved_as_camera(monkeypatch):
    at = open_app(monkeypatch, page="pages/upload.py")
    assert not at.camera_input  # the camera only asks for permission once switched on
    at.toggle(key="use_camera").set_value(True).run()
    at.camera_input(key="camera").set_value(("shot.jpg", digit_png(9, paper=True, fmt="JPEG"), "image/jpeg")).run()
    assert not at.exception
    assert shown_digit(at) == 9
    assert saved(current_url()) == []
    at.button(key="save_camera").click().run()
    assert [(r.source, r.digit, r.filename) for r in saved(current_url())] == [("camera", 9, None)]


def test_uploaded_numbers_are_read_whole_without_any_switch(monkeypatch):
    at = open_app(monkeypatch, page="pages/upload.py")
    at.file_uploader(key="uploads").set_value(("year.png", number_png("2024", paper=True), "image/png")).run()
    assert not at.exception
    assert shown_number(at) == "2024"
    at.button(key="save_uploads").click().run()
    rows = saved(current_url())
    assert [(r.source, r.predicted_text, r.filename) for r in rows] == [("number", "2024", "year.png")]
    at.run()  # a rerun must not save the same upload again
    assert len(saved(current_url())) == 1

    blank = io.BytesIO()
    Image.new("L", (300, 100), 255).save(blank, format="PNG")
    files = [
        ("room.png", number_png("305"), "image/png"),
        ("blank.png", blank.getvalue(), "image/png"),
        ("seven.png", digit_png(7, paper=True), "image/png"),
        ("code.png", number_png("98", paper=True), "image/png"),
    ]
    at.file_uploader(key="uploads").set_value(files).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["reading"].fillna("")) == ["305", "", "7", "98"]
    assert list(table["kind"].fillna("")) == ["Number", "", "Digit", "Number"]
    assert "No digit found" in table["status"][1]
    assert "**1 could not be read**" in texts(at.markdown)
    at.button(key="save_uploads").click().run()
    assert sorted(r.predicted_text or str(r.digit) for r in saved(current_url())) == ["2024", "305", "7", "98"]


# --- History ----------------------------------------------------------------------------------------


def history_table(at: AppTest):
    return at.dataframe[0]


def test_history_lists_newest_first_with_escaped_filenames(monkeypatch):
    url = current_url()
    seed(url, [(1, "upload", "first.png"), (7, "draw", None), (4, "upload", XSS_NAME)])
    at = open_app(monkeypatch, page="pages/history.py")
    table = history_table(at).value
    assert list(table["prediction"]) == ["4", "7", "1"]
    assert list(table["filename"]) == [XSS_NAME, "", "first.png"]  # the grid shows text, never HTML
    assert history_table(at).proto.placeholder == "—"  # no label yet reads as a dash, not "None"
    assert table["original"][0].startswith("data:image/png;base64,")
    assert "**3** matching row(s)" in texts(at.markdown)
    assert not any(XSS_NAME in m.value for m in at.markdown)  # never in Markdown/HTML unescaped


def test_history_filters_narrow_the_rows(monkeypatch):
    url = current_url()
    seed(url, [(1, "upload", "a.png"), (1, "draw", None), (5, "draw", None), (5, "camera", None)])
    store = Store(url)
    store.set_label(store.page().items[0].id, 5)
    at = open_app(monkeypatch, page="pages/history.py")

    at.selectbox(key="f_digit").set_value(1).run()
    assert set(history_table(at).value["prediction"]) == {"1"}
    at.selectbox(key="f_source").set_value("draw").run()
    assert len(history_table(at).value) == 1
    at.selectbox(key="f_digit").set_value(None).run()
    at.selectbox(key="f_source").set_value(None).run()
    at.selectbox(key="f_labelled").set_value("Labelled").run()
    assert list(history_table(at).value["label"]) == ["5"]
    at.selectbox(key="f_labelled").set_value("Unlabelled").run()
    assert len(history_table(at).value) == 3

    at.selectbox(key="f_labelled").set_value("Any").run()
    last_week = datetime.now(UTC).date() - timedelta(days=7)
    at.date_input(key="f_dates").set_value((last_week, last_week + timedelta(days=1))).run()
    assert not at.dataframe and "No rows match these filters" in texts(at.info)
    today = datetime.now(UTC).date()
    at.date_input(key="f_dates").set_value((today, today)).run()
    assert len(history_table(at).value) == 4

    lowest = min(r.confidence for r in store.page().items)
    at.slider(key="f_conf").set_value((0.0, max(0.0, lowest - 0.01))).run()
    assert not at.dataframe
    at.slider(key="f_conf").set_value((0.0, 1.0)).run()
    assert len(history_table(at).value) == 4
    assert not at.exception

    # A row another version of the classifier read: the model-version filter offers the registry's versions.
    other = replace(predict(digit_png(7)), model_version="ft-0123abcd")
    store.save(other, source="draw", filename=None, original=None)
    at.run()
    shipped = at.selectbox(key="f_model").options[1]
    at.selectbox(key="f_model").set_value(shipped).run()
    assert len(history_table(at).value) == 4 and "7" not in set(history_table(at).value["prediction"])


def test_history_pages_fifty_rows_at_a_time(monkeypatch):
    url = current_url()
    store = Store(url)
    store.migrate()
    prediction = predict(digit_png(3))
    for _ in range(53):
        store.save(prediction, source="api")
    at = open_app(monkeypatch, page="pages/history.py")
    assert len(history_table(at).value) == 50
    pager = at.get("pagination")[0]
    assert pager.num_pages == 2
    pager.set_value(2).run()
    assert len(history_table(at).value) == 3
    assert "showing 51–53" in texts(at.markdown)


def test_a_filter_change_goes_back_to_page_one_without_a_warning(monkeypatch, caplog):
    store = Store(current_url())
    store.migrate()
    three, seven = predict(digit_png(3)), predict(digit_png(7))
    for i in range(60):
        store.save(three if i % 2 else seven, source="api")
    # Streamlit warns once per process (with a stack trace) about a widget with a default whose value is also set
    # through Session State: make it able to warn again here, and listen on its logger.
    monkeypatch.setattr("streamlit.elements.lib.policies._shown_default_value_warning", False)
    streamlit_log = logging.getLogger("streamlit")
    monkeypatch.setattr(streamlit_log, "handlers", [*streamlit_log.handlers, caplog.handler])
    at = open_app(monkeypatch, page="pages/history.py")
    at.get("pagination")[0].set_value(2).run()
    assert "showing 51–60" in texts(at.markdown)
    at.selectbox(key="f_digit").set_value(3).run()
    assert "**30** matching row(s) · showing 1–30" in texts(at.markdown)
    assert at.get("pagination")[0].value == 1
    assert not at.exception
    warned = [r.getMessage() for r in caplog.records if "Session State" in r.getMessage()]
    assert not warned, warned


def select_row(at: AppTest, row: int) -> None:
    at.session_state[history_table(at).key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_history_relabel_and_delete_a_row(monkeypatch, database_url):
    first, second = seed(database_url, [(2, "upload", "two.png"), (8, "draw", None)])
    at = open_app(monkeypatch, database_url, page="pages/history.py")
    select_row(at, 1)  # oldest last: row 1 is `first`
    at.pills(key=f"relabel_{first}").set_value(7).run()
    assert Store(database_url).get(first).label == 7
    assert "Label of #" in texts(at.success)
    assert list(history_table(at).value["label"].fillna("")) == ["", "7"]

    select_row(at, 0)
    delete = at.button(key=f"delete_{second}")
    assert delete.label == f"Yes, delete #{second}"  # inside the Delete popover: a second, explicit click
    delete.click().run()
    assert not at.exception
    assert [r.id for r in saved(database_url)] == [first]
    assert list(history_table(at).value["id"]) == [first]


def widgets(elements, key: str) -> list:
    return [e for e in elements if e.key == key]


def test_with_a_token_set_relabel_and_delete_wait_for_it(monkeypatch):
    monkeypatch.setenv("MNIST_API_TOKEN", "dash-s3cret")
    monkeypatch.setattr("ui.auth.WRONG_SECRET_PAUSE", 0.0)
    first, second = seed(current_url(), [(2, "upload", "two.png"), (8, "draw", None)])
    at = open_app(monkeypatch, page="pages/history.py")
    assert len(history_table(at).value) == 2  # reading needs no token
    select_row(at, 1)
    assert "locked" in texts(at.info) and "MNIST_API_TOKEN" in texts(at.info)
    assert not widgets(at.pills, f"relabel_{first}") and not widgets(at.button, f"delete_{first}")

    def unlock(secret: str) -> None:
        at.text_input(key="unlock_secret").set_value(secret)
        next(b for b in at.button if b.label == "Unlock").click().run()
        assert not at.exception, [e.value for e in at.exception]

    unlock("guess")
    assert "not the token" in texts(at.error) and not widgets(at.pills, f"relabel_{first}")
    unlock("dash-s3cret")
    assert "Unlocked" in texts(at.success)
    select_row(at, 1)
    at.pills(key=f"relabel_{first}").set_value(7).run()
    assert Store(current_url()).get(first).label == 7
    select_row(at, 0)
    at.button(key=f"delete_{second}").click().run()
    assert [r.id for r in saved(current_url())] == [first]

    at.button(key="lock_history").click().run()  # read-only again
    select_row(at, 0)
    assert "locked" in texts(at.info) and not widgets(at.pills, f"relabel_{first}")
    shown = texts(at.markdown) + texts(at.info) + texts(at.error) + texts(at.success) + texts(at.caption)
    assert "dash-s3cret" not in shown + str([t.value for t in at.text_input])


def test_without_a_token_the_history_says_anyone_may_change_it(monkeypatch):
    (only,) = seed(current_url(), [(3, "upload", "three.png")])
    at = open_app(monkeypatch, page="pages/history.py")
    select_row(at, 0)
    assert widgets(at.pills, f"relabel_{only}") and widgets(at.button, f"delete_{only}")
    assert not widgets(at.button, "lock_history") and not widgets(at.text_input, "unlock_secret")


def test_history_stats_and_csv_follow_the_filters(monkeypatch):
    url = current_url()
    ids = seed(url, [(1, "upload", "=cmd.png"), (6, "draw", None), (6, "draw", None)])
    Store(url).set_label(ids[1], 6)
    Store(url).set_label(ids[2], 5)
    at = open_app(monkeypatch, page="pages/history.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Accuracy on labelled digits"] == "50.0%"
    assert metrics["Labelled rows"] == "2" and metrics["Labelled digits"] == "2 (1 right)"

    from ui.history import csv_text

    csv = csv_text(Store(url), Filters(source="upload"))
    lines = csv.strip().splitlines()
    assert len(lines) == 2 and "'=cmd.png" in lines[1]  # a spreadsheet formula stays text


def test_confidence_histogram_is_counted_in_the_database(database_url):
    store = Store(database_url)
    store.migrate()
    confidences = []
    for digit in (0, 2, 5, 9):
        prediction = predict(digit_png(digit, paper=True))
        store.save(prediction, source="upload")
        confidences.append(prediction.confidence)
    expected = [0] * 10
    for c in confidences:
        expected[min(int(c * 10), 9)] += 1
    assert store.confidence_histogram() == expected
    assert store.confidence_histogram(Filters(min_confidence=1.0)) == [0] * 9 + [sum(c >= 1.0 for c in confidences)]
    assert sum(store.confidence_histogram(bins=4)) == 4


def test_history_shows_and_filters_number_rows(monkeypatch):
    url = current_url()
    seed(url, [(7, "draw", None)])
    number = read_number_and_save(number_png("4567"), filename="house.png", store=Store(url))
    at = open_app(monkeypatch, page="pages/history.py")
    assert list(history_table(at).value["prediction"]) == ["4567", "7"]
    at.selectbox(key="f_source").set_value("number").run()
    table = history_table(at).value
    assert list(table["id"]) == [number.record_id] and list(table["source"]) == ["number"]
    select_row(at, 0)
    assert "predicted 4567" in texts(at.markdown).replace("*", "")
    assert "its confidence is its least certain digit's" in texts(at.caption)
    assert "label are those of" not in texts(at.caption)  # its label is the whole number's now
    assert "Model input of each digit" in texts(at.caption)


def test_history_relabels_a_number_row_by_typing_its_text(monkeypatch, database_url):
    (seven,) = seed(database_url, [(7, "draw", None)])
    number = read_number_and_save(number_png("4567"), filename="house.png", store=Store(database_url))
    at = open_app(monkeypatch, database_url, page="pages/history.py")
    at.selectbox(key="f_digit").set_value(5).run()  # "Contains digit": the number holds a 5, the 7 does not
    assert list(history_table(at).value["id"]) == [number.record_id]
    select_row(at, 0)
    assert not widgets(at.pills, f"relabel_{number.record_id}")  # a number is not labelled with a digit
    typed = at.text_input(key=f"true_number_{number.record_id}")
    assert typed.value == "4567"  # what was read, to correct in place

    typed.set_value("45x7")
    at.button(key=f"save_label_{number.record_id}").click().run()
    assert "digits" in texts(at.error) and Store(database_url).get(number.record_id).label_text is None

    at.text_input(key=f"true_number_{number.record_id}").set_value("4597")
    at.button(key=f"save_label_{number.record_id}").click().run()
    assert not at.exception
    assert Store(database_url).get(number.record_id).label_text == "4597"
    assert f"Label of #{number.record_id} updated." in texts(at.success)
    assert list(history_table(at).value["label"]) == ["4597"]
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Labelled rows"], metrics["Labelled digits"]) == ("1", "4 (3 right)")  # the 6 was a 9

    at.selectbox(key="f_digit").set_value(None).run()
    at.text_input(key="f_text").set_value("456").run()
    assert list(history_table(at).value["prediction"]) == ["4567"]
    at.text_input(key="f_text").set_value("7").run()
    assert list(history_table(at).value["id"]) == [number.record_id, seven]
    at.selectbox(key="f_labelled").set_value("Labelled").run()
    assert list(history_table(at).value["id"]) == [number.record_id]


def test_a_text_filter_that_is_not_digits_says_so_next_to_it(monkeypatch):
    seed(current_url(), [(1, "upload", "a.png"), (7, "draw", None)])
    at = open_app(monkeypatch, page="pages/history.py")
    at.text_input(key="f_text").set_value("<b>4a</b>").run()
    assert not at.exception
    assert "Digits only (0-9): this filter is off until then." in texts(at.error)
    assert len(history_table(at).value) == 2  # the filter is left out, not the rows
    at.text_input(key="f_text").set_value(" 7 ").run()  # spaces around digits are forgiven
    assert not at.error and list(history_table(at).value["prediction"]) == ["7"]


def test_history_with_database_down_warns_without_a_traceback(monkeypatch):
    at = open_app(monkeypatch, CLOSED_PORT_URL, page="pages/history.py")
    assert "not reachable" in texts(at.warning)
    assert not at.dataframe


# --- Model ------------------------------------------------------------------------------------------


def test_model_page_without_the_mnist_files_shows_the_shipped_samples_mistakes(monkeypatch):
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    at = open_app(monkeypatch, page="pages/model.py")
    assert "MNIST_DATA_DIR to" not in texts(at.info)  # no "set MNIST_DATA_DIR to ..." in place of the grid
    caption = re.search(r"(\d+) of 1,000 test images \(the first 1,000 of the test set, shipped", texts(at.caption))
    assert caption and int(caption[1]) > 0
    assert len(at.get("image")) >= min(int(caption[1]), 60)  # the grid of misread digits
    count = json.loads(MODEL_CARD_PATH.read_text())["test"]["count"]
    assert f"Test errors (of {count:,})" in [m.label for m in at.metric]  # the count in the label: nothing cut off


def test_model_page_offers_a_fine_tune_once_there_are_corrections_and_only_when_unlocked(monkeypatch):
    at = open_app(monkeypatch, page="pages/model.py")
    assert "Nothing to learn from yet" in texts(at.info)
    assert not [b for b in at.button if b.key == "finetune_start"]
    version = texts(at.caption)
    assert "(shipped)" in version  # version zero serves, registered on the first look

    [row] = seed(current_url(), [(3, "draw", None)])
    Store(current_url()).set_label(row, 3)
    at.run()
    assert at.button(key="finetune_start").label == "Fine-tune on 1 labelled row(s)"

    monkeypatch.setenv("MNIST_API_TOKEN", "s3cret-token")
    at.run()
    assert not [b for b in at.button if b.key == "finetune_start"]  # changing the model waits for the token
    assert "changing the model are locked" in texts(at.info)


def test_model_page_shows_the_card_and_test_mistakes(monkeypatch, tmp_path):
    data = as_mnist_test_dir(tmp_path / "mnist")
    monkeypatch.setenv("MNIST_DATA_DIR", str(data))
    ids = seed(current_url(), [(3, "draw", None)])
    Store(current_url()).set_label(ids[0], 3)

    at = open_app(monkeypatch, page="pages/model.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["MNIST test accuracy"].endswith("%")
    assert int(metrics["Parameters"].replace(",", "")) > 10_000
    assert metrics["Accuracy on labelled digits"] == "100.0%"
    assert re.search(r"\d+ of 1,000 test images are misread", texts(at.caption))
    assert any("class Net" in c.value or "Net(" in c.value for c in at.code)
    copies = json.loads(MODEL_CARD_PATH.read_text())["training"]["rendered_copies"]
    assert f"plus {copies:,} redrawn copies" in texts(at.markdown)
    # The number reader's card: whole-number accuracy by how the digits sit.
    reader = json.loads(READER_CARD_PATH.read_text())["validation"]
    assert metrics["Touching"] == f"{reader['touching']:.1%}"
    assert metrics["Digits apart"] == f"{reader['separated']:.1%}"


def test_dashboard_recovers_when_the_database_comes_back_without_a_restart(monkeypatch, tmp_path):
    blocker = tmp_path / "db"
    blocker.write_text("a file where the database directory should be")
    monkeypatch.setattr(StoreProvider, "RETRY_SECONDS", 0.0)  # ask again at once instead of after a pause
    monkeypatch.setattr(StoreProvider, "STATUS_SECONDS", 0.0)
    monkeypatch.setattr(Store, "PROBE_SECONDS", 0.0)
    at = open_app(monkeypatch, f"sqlite:///{blocker / 'history.sqlite3'}")
    assert "not reachable" in texts(at.sidebar.warning)
    draw(at, digit_png(5))
    at.button(key="save").click().run()
    assert "not saved" in texts(at.warning)

    blocker.unlink()
    blocker.mkdir()  # the database is back; the same process, the same session
    at.run()
    assert "reachable" in texts(at.sidebar.markdown) and not texts(at.sidebar.warning)
    at.button(key="save").click().run()
    assert [r.digit for r in saved(current_url())] == [5]
    assert "Was this right?" in texts(at.success)


def test_every_page_shows_model_and_database_in_the_sidebar(monkeypatch):
    at = open_app(monkeypatch)
    for page in ("pages/draw.py", "pages/upload.py", "pages/history.py", "pages/model.py"):
        at.switch_page(page).run()
        assert not at.exception
        sidebar = texts(at.sidebar.markdown)
        assert "SQLite" in sidebar and "reachable" in sidebar
        assert re.search(r"`[0-9a-f]{12}`", sidebar)


def test_a_page_url_opened_first_still_runs_inside_the_app(monkeypatch):
    # Streamlit's own first-request logic, undoing the fixture: it would run pages/history.py alone.
    monkeypatch.setattr(PagesManager, "__init__", STREAMLIT_PAGES_INIT)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/history.py").run()
    assert not at.exception
    assert at.title[0].value == "History"
    assert "reachable" in texts(at.sidebar.markdown)


def test_sidebar_never_shows_the_database_password(monkeypatch):
    at = open_app(monkeypatch, "postgresql+psycopg2://app:s3cret-pw@127.0.0.1:9/history")
    assert "s3cret" not in texts(at.sidebar.markdown) + texts(at.sidebar.warning)
    assert "127.0.0.1:9/history" in texts(at.sidebar.markdown)
