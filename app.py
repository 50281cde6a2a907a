"""Streamlit entry point (`make run`): the four pages and the status sidebar they share."""

import streamlit as st

from ui import sidebar, views
from ui.icon import page_icon

# A phone starts with the sidebar closed: the page itself is what fits its screen.
sidebar_state = "collapsed" if views.on_phone() else "auto"
st.set_page_config(
    page_title="Digit recognizer", page_icon=page_icon(), layout="wide", initial_sidebar_state=sidebar_state
)

page = st.navigation(
    [
        st.Page("pages/draw.py", title="Draw", icon=":material/draw:", default=True),
        st.Page("pages/upload.py", title="Upload", icon=":material/upload:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/model.py", title="Model", icon=":material/neurology:"),
    ]
)
# The sidebar is filled after the page has run: reading the model version loads torch, and the
# page (the canvas above all) should be on screen before that.
status = st.sidebar.container()
page.run()
with status:
    sidebar.render()
