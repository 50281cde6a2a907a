"""Upload: images of digits or of whole numbers, or a camera photo; each is read at once and saved on request."""

from __future__ import annotations

import streamlit as st

from ui import resources, saving, uploads, views

TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff", "heic", "heif"]  # what mnist.preprocess reads


def closer_look(rows: list[uploads.Row]) -> uploads.Row:
    """Which of many files to show in full."""
    index = st.selectbox(
        "Look closer at one file",
        range(len(rows)),
        format_func=lambda i: f"{i + 1}. {rows[i].name}",
        key="upload_details",
    )
    return rows[index]


views.page_start()
st.title("Upload images")
st.caption(
    "A digit or a whole number (up to 12 digits) in each image: PNG, JPEG, GIF, BMP, WebP, TIFF or HEIC "
    "(iPhone photos), up to 10 MB each. Many files are read together in one batch. " + saving.RULE
)

files = st.file_uploader("Images of digits or numbers", type=TYPES, accept_multiple_files=True, key="uploads")
use_camera = st.toggle("Take a photo with the camera", key="use_camera")
photo = st.camera_input("Photo of a digit or a number on paper", key="camera") if use_camera else None

if photo is not None:
    st.subheader("Camera photo")
    shot = uploads.read([photo])
    uploads.save_button(shot, source="camera", key="save_camera", keep_names=False)
    uploads.details(shot[0])

if files:
    rows = uploads.read(files)
    uploads.save_button(rows, source="upload", key="save_uploads")
    uploads.summary(rows)
    if len(rows) == 1:
        uploads.details(rows[0])
    else:
        uploads.table(rows)
        uploads.details(closer_look(rows))
elif photo is None:
    st.info("Choose one or more images above, or switch on the camera.", icon=":material/upload:")

if not resources.database_ready():
    st.caption("The history database is not reachable, so nothing here can be saved.")
