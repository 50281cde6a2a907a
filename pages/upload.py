"""Upload: one or many images of digits (or of whole numbers), or a camera photo; each is read, shown and saved once."""

from __future__ import annotations

import streamlit as st

from ui import resources, uploads, views

TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff", "heic", "heif"]  # what mnist.preprocess reads


def closer_look(rows: list, key: str) -> int:
    """Which of many files to show in full."""
    return st.selectbox(
        "Look closer at one file", range(len(rows)), format_func=lambda i: f"{i + 1}. {rows[i].name}", key=key
    )


views.page_start()
st.title("Upload digit images")
st.caption(
    "PNG, JPEG, GIF, BMP, WebP, TIFF or HEIC (iPhone photos), up to 10 MB each. "
    "Many files are read together in one batch."
)

files = st.file_uploader("Images of digits", type=TYPES, accept_multiple_files=True, key="uploads")
as_numbers = st.toggle("Read each image as a whole number (up to 12 digits, saved as one row)", key="upload_numbers")
use_camera = st.toggle("Take a photo with the camera instead", key="use_camera")
photo = st.camera_input("Photo of a digit on paper", key="camera") if use_camera else None

if photo is not None:
    st.subheader("Camera photo")
    if as_numbers:
        uploads.number_details(uploads.read_numbers([photo], keep_names=False)[0])
    else:
        uploads.details(uploads.read([photo], source="camera")[0])

if files and as_numbers:
    rows = uploads.read_numbers(files)
    uploads.summary(rows)
    if len(rows) == 1:
        uploads.number_details(rows[0])
    else:
        uploads.number_table(rows)
        uploads.number_details(rows[closer_look(rows, "upload_number_details")])
elif files:
    rows = uploads.read(files, source="upload")
    uploads.summary(rows)
    if len(rows) == 1:
        uploads.details(rows[0])
    else:
        uploads.table(rows)
        uploads.details(rows[closer_look(rows, "upload_details")])
elif photo is None:
    st.info("Choose one or more images above, or switch on the camera.", icon=":material/upload:")

if not resources.database_ready():
    st.caption("The history database is not reachable, so nothing here is being saved.")
