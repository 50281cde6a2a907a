"""Handwritten-digit recognition engine: preprocessing, model, prediction, history store, API.

Never imports streamlit; the dashboard and the API both call into here. This top level imports
nothing, so `import mnist.store` or `import mnist.errors` costs only what those modules cost (no
torch). Import from the modules themselves: mnist.results, mnist.errors, mnist.predict, mnist.numbers.
"""
