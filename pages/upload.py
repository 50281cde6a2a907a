"""Upload: one or many digit images, or a camera photo; each is read, shown and saved once."""

from __future__ import annotations

import streamlit as st

from ui import resources, uploads, views

TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]

views.page_start()
st.title("Upload digit images")
st.caption("PNG, JPEG, GIF, BMP or WebP, up to 10 MB each. Many files are read together in one batch.")

files = st.file_uploader("Images of digits", type=TYPES, accept_multiple_files=True, key="uploads")
use_camera = st.toggle("Take a photo with the camera instead", key="use_camera")
photo = st.camera_input("Photo of a digit on paper", key="camera") if use_camera else None

if photo is not None:
    rows = uploads.read([photo], source="camera")
    st.subheader("Camera photo")
    uploads.details(rows[0])
if files:
    rows = uploads.read(files, source="upload")
    uploads.summary(rows)
    if len(rows) == 1:
        uploads.details(rows[0])
    else:
        uploads.table(rows)
        chosen = st.selectbox(
            "Look closer at one file",
            range(len(rows)),
            format_func=lambda i: f"{i + 1}. {rows[i].name}",
            key="upload_details",
        )
        uploads.details(rows[chosen])
elif photo is None:
    st.info("Choose one or more images above, or switch on the camera.", icon=":material/upload:")

if not resources.database_ready():
    st.caption("The history database is not reachable, so nothing here is being saved.")
