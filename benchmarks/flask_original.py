"""The original Flask service (../shared/seed/original-flask-milestone.md), reproduced to be measured against.

    python -m benchmarks.flask_original --port 5000 --database-url postgresql://postgres@127.0.0.1:5432/bench

Faithful where it costs or saves time: Flask's threaded development server; the handler's
json dumps/loads round trip, base64 -> Pillow -> resize((28, 28)) -> channel 0 of a 3-D array,
/255 -> the model at batch 1 -> argmax; its diagnostic prints (to wherever stdout goes); a new
psycopg2 connection per request, one INSERT, commit, close. Two changes: the model is this
project's network (the same weights, so both sides do the same arithmetic) on that plain resize,
and the array is stored as numpy.save bytes instead of a pickle. The table is the original's
shape: predictions(filename, image BYTEA, prediction, date).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
from io import BytesIO

import numpy as np
import psycopg2
import torch
from flask import Flask, jsonify, request
from PIL import Image
from sqlalchemy.engine import make_url

from mnist.api.schemas import SAMPLE_IMAGE_BASE64
from mnist.model import MEAN, STD
from mnist.predict import get_predictor

TABLE = """CREATE TABLE IF NOT EXISTS predictions (
    id SERIAL PRIMARY KEY, filename TEXT, image BYTEA, prediction INTEGER, date TIMESTAMP DEFAULT now())"""


def dsn_of(database_url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg2://...) as the libpq connection string psycopg2 takes."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_app(dsn: str) -> Flask:
    app = Flask(__name__)
    loaded_model = get_predictor().net  # as the original: the model loaded once at import

    def save_prediction_db(filename, img_np, prediction):
        conn = psycopg2.connect(dsn)
        cursor = conn.cursor()
        buffer = io.BytesIO()
        np.save(buffer, img_np, allow_pickle=False)
        cursor.execute(
            "INSERT INTO predictions (filename, image, prediction) VALUES (%s, %s, %s)",
            (filename, psycopg2.Binary(buffer.getvalue()), prediction),
        )
        conn.commit()
        conn.close()

    @app.route("/image-predict", methods=["GET"])
    def sample():  # the original client asks for "a sample of how your POST request should look" first
        return jsonify({"image": SAMPLE_IMAGE_BASE64, "filename": "request_test.png"})

    @app.route("/image-predict", methods=["POST"])
    def add_images():
        json_data = request.get_json()
        json_data = json.dumps(json_data)
        dict_data = json.loads(json_data)

        img = dict_data["image"]
        img = base64.b64decode(img)
        img = BytesIO(img)
        img = Image.open(img)
        img = img.resize((28, 28))
        img_np = np.array(img)
        print(type(img))
        print(img_np.shape)
        print(type(img_np))
        print(img_np.ndim)

        if img_np.ndim == 3:
            img_np = img_np.astype("float32") / 255
            img_np = img_np[:, :, 0]
            img_np = np.expand_dims(img_np, -1)
            img_np = np.array([img_np])
        if img_np.ndim == 2:
            img_np = img_np.astype("float32") / 255
            img_np = np.expand_dims(img_np, -1)
            img_np = np.array([img_np])

        # The Keras model took (1, 28, 28, 1) floats in 0..1; ours takes (1, 1, 28, 28) normalised floats.
        with torch.no_grad():
            batch = (torch.from_numpy(img_np).permute(0, 3, 1, 2) - MEAN) / STD
            prediction = loaded_model(batch).numpy()
        int_single_prediction = int(np.argmax(prediction, axis=1)[0])

        img_shape = img.size
        filename = dict_data["filename"]
        save_prediction_db(filename, img_np, int_single_prediction)
        return jsonify({"prediction": int_single_prediction, "img_shape": img_shape})

    return app


def count_rows(dsn: str) -> int:
    """Rows in the original's table (the benchmark compares them with the answers it got)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cursor:
            cursor.execute(TABLE)
            cursor.execute("SELECT count(*) FROM predictions")
            (count,) = cursor.fetchone()
        conn.commit()
        return int(count)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    dsn = dsn_of(args.database_url)
    count_rows(dsn)  # creates the table
    create_app(dsn).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
