"""Dashboard helpers shared by the Streamlit pages (the engine in `mnist/` never imports streamlit)."""
