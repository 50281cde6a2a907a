"""FastAPI app: the original /image-predict contract plus /api/v1 over the engine.

main.py builds the app (errors, middleware, startup), schemas.py holds the typed bodies,
deps.py the store dependency and the worker threads, routes/ one router per resource.

Run alone:  uvicorn mnist.api:app      Run with the dashboard:  make run
"""

from mnist.api.main import create_app

app = create_app()

__all__ = ["app", "create_app"]
