"""Helpers tests share, imported as `tests.support.*`: the MNIST sample, API request builders, history rows."""
