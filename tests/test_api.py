"""The JSON API through FastAPI's TestClient, on SQLite and PostgreSQL: every endpoint and every error."""

from __future__ import annotations

import base64
import io
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from mnist import logs
from mnist.api import create_app
from mnist.api.middleware import SECURITY_HEADERS
from mnist.config import get_settings
from mnist.numbers import read_number
from mnist.predict import get_predictor
from mnist.preprocess import MAX_THUMBNAIL_ASPECT, crop_to_ink, thumbnail_png
from mnist.reader import get_reader
from mnist.store import Filters, Store
from tests.support.api import (
    ORIGINAL_DIGIT,
    ORIGINAL_REQUEST,
    WELL_FORMED,
    b64,
    closed_port,
    number_png,
    png,
)
from tests.support.history import EVERY_FILTER, expected_ids, seed_known
from tests.support.models import REFUSED, add_candidate, serve_shipped
from tests.support.sample import mnist_sample


@pytest.fixture(scope="module")
def digits() -> list[tuple[int, bytes]]:
    """(label, PNG bytes) for a few real MNIST test digits, scanned look: black ink on white."""
    images, labels = mnist_sample()
    return [(int(labels[i]), png(255 - images[i])) for i in range(6)]


BLANK = png(np.full((64, 64), 255, np.uint8))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.engine.dispose()


@pytest.fixture
def client(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("MNIST_API_TOKEN", raising=False)
    with TestClient(create_app(store=store)) as c:
        yield c


# ------------------------------------------------------------------ the original contract


def test_original_client_request_gets_the_digit_and_is_saved(client: TestClient, store: Store) -> None:
    response = client.post("/image-predict", json=ORIGINAL_REQUEST)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"] == ORIGINAL_DIGIT
    assert body["img_shape"] == [28, 28]
    assert body["saved"] is True and isinstance(body["id"], int) and "warning" not in body
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-6
    assert body["confidence"] == max(body["probabilities"])
    record = store.get(body["id"])
    assert (record.source, record.filename, record.digit) == ("api", "request_test.png", ORIGINAL_DIGIT)
    assert record.original == thumbnail_png(base64.b64decode(ORIGINAL_REQUEST["image"]))  # the whole picture
    assert record.predicted_text is None and record.digit_inputs is None
    assert body["verdict"] == record.verdict == "digit"


def test_answers_say_when_a_picture_is_not_one_digit_and_the_history_filters_by_it(client: TestClient) -> None:
    engine = Path(__file__).resolve().parent / "data" / "engine"
    sent = {name: b64((engine / name).read_bytes()) for name in ("letter_A_0.png", "forty_two_0.png", "zigzag_9.png")}
    answers = {name: client.post("/image-predict", json={"image": data}).json() for name, data in sent.items()}
    assert answers["letter_A_0.png"]["verdict"] == "not_a_digit"
    assert answers["forty_two_0.png"]["verdict"] == "several_digits"
    assert answers["zigzag_9.png"]["verdict"] in ("digit", "unsure") and answers["zigzag_9.png"]["prediction"] == 9
    listed = client.get("/api/v1/predictions", params={"verdict": "not_a_digit"}).json()
    assert [item["id"] for item in listed["items"]] == [answers["letter_A_0.png"]["id"]]
    assert client.get("/api/v1/stats", params={"verdict": "several_digits"}).json()["total"] == 1
    assert client.get("/api/v1/predictions", params={"verdict": "maybe"}).status_code == 422


def test_get_answers_a_body_its_post_accepts_as_it_is(client: TestClient) -> None:
    sample = client.get("/image-predict")
    assert sample.status_code == 200
    assert sample.json()["image"] == ORIGINAL_REQUEST["image"] and "POST" in sample.json()["how_to"]
    response = client.post("/image-predict", json=sample.json())  # the whole answer, extra field and all
    assert response.status_code == 200 and response.json()["prediction"] == ORIGINAL_DIGIT


def test_filename_is_optional_and_data_url_prefix_accepted(client: TestClient, digits, store: Store) -> None:
    label, data = digits[0]
    response = client.post("/image-predict", json={"image": "data:image/png;base64," + b64(data)})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == label
    assert store.get(response.json()["id"]).filename is None


def test_client_filename_is_only_a_display_name(client: TestClient, digits, store: Store) -> None:
    body = {"image": b64(digits[1][1]), "filename": "../../etc/passwd"}
    record = store.get(client.post("/image-predict", json=body).json()["id"])
    assert record.filename == "passwd"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 422, ""),
        (b'{"filename": "x.png"}', 422, "image"),
        (b'{"image": 5}', 422, "image"),
        (b'{"image": "aGVsbG8=", "filename": 7}', 422, "filename"),
        (b'{"image": "%%% not base64 %%%"}', 400, "base64"),
        (b'{"image": "aGVsbG8gd29ybGQ="}', 400, ""),  # "hello world": base64, but not an image
    ],
)
def test_bad_bodies_get_a_clear_status(client: TestClient, body: bytes, status: int, detail: str) -> None:
    response = client.post("/image-predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str) and detail in response.json()["detail"]


def test_blank_image_is_no_digit_found(client: TestClient, store: Store) -> None:
    response = client.post("/image-predict", json={"image": b64(BLANK)})
    assert response.status_code == 422
    assert "no digit found" in response.json()["detail"]
    assert store.stats().total == 0


def test_unsupported_image_type_is_415(client: TestClient) -> None:
    ppm = png(np.zeros((28, 28), np.uint8), fmt="PPM")  # Pillow reads it, but it is not a format we take
    response = client.post("/image-predict", json={"image": b64(ppm)})
    assert response.status_code == 415, response.text


def test_an_iphone_heic_photo_is_read(client: TestClient, store: Store) -> None:
    images, labels = mnist_sample()
    photo = Image.fromarray(255 - images[7]).resize((280, 280)).convert("RGB")  # black ink on white paper
    buffer = io.BytesIO()
    photo.save(buffer, format="HEIF", quality=90)  # pillow-heif's encoder: what an iPhone saves
    assert buffer.getvalue()[4:12] == b"ftypheic"
    response = client.post("/image-predict", json={"image": b64(buffer.getvalue()), "filename": "IMG_0042.HEIC"})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == labels[7] and store.get(response.json()["id"]).filename == "IMG_0042.HEIC"


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header announcing width x height pixels, with no pixels behind it."""
    header = b"IHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    chunk = len(header[4:]).to_bytes(4, "big") + header + zlib.crc32(header).to_bytes(4, "big")
    end = (0).to_bytes(4, "big") + b"IEND" + zlib.crc32(b"IEND").to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def test_a_png_claiming_sixty_thousand_pixels_a_side_is_413_naming_our_limit(client: TestClient) -> None:
    response = client.post("/image-predict", json={"image": b64(png_claiming(60_000, 60_000))})
    assert response.status_code == 413
    assert "16,777,216" in response.json()["detail"] and "178" not in response.json()["detail"]


def test_a_ten_thousand_character_filename_gets_a_reason(client: TestClient, digits) -> None:
    files = [("file", ("x" * 10_000 + ".png", digits[0][1], "image/png"))]
    response = client.post("/api/v1/predictions", files=files)
    assert response.status_code == 400
    assert "header" in response.json()["detail"] and "filename" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/predictions", "GET, OPTIONS, POST"),
        ("/api/v1/predictions/7", "DELETE, GET, OPTIONS, PATCH"),
        ("/image-predict", "GET, OPTIONS, POST"),
        ("/api/v1/health", "GET, OPTIONS"),
    ],
)
def test_options_and_405_name_every_method_a_path_takes(client: TestClient, path: str, allowed: str) -> None:
    options = client.options(path)
    assert options.status_code == 204 and options.headers["allow"] == allowed
    wrong = client.put(path)
    assert wrong.status_code == 405 and wrong.headers["allow"] == allowed and "PUT" in wrong.json()["detail"]


def test_image_with_too_many_pixels_is_413(client: TestClient) -> None:
    huge = png(np.zeros((5000, 5000), np.uint8))  # 25 Mpx compress to a few kB: a decompression bomb in small
    assert len(huge) < 1_000_000
    response = client.post("/image-predict", json={"image": b64(huge)})
    assert response.status_code == 413, response.text


# ------------------------------------------------------------------ body limit


def test_body_over_the_limit_is_413_with_content_length(client: TestClient) -> None:
    body = b'{"image": "' + b"A" * (5 * 1024 * 1024) + b'"}'
    response = client.post("/image-predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_body_over_the_limit_is_413_when_chunked(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"image": "'
        for _ in range(6):
            yield b"A" * (1024 * 1024)
        yield b'"}'

    response = client.post("/image-predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_multipart_over_the_limit_is_413(client: TestClient) -> None:
    files = [("file", ("big.png", b"\0" * (6 * 1024 * 1024), "image/png"))]
    assert client.post("/api/v1/predictions", files=files).status_code == 413


# ------------------------------------------------------------------ v1: predictions


def test_multipart_batch_predicts_each_file_and_reports_bad_ones(client: TestClient, digits, store: Store) -> None:
    files = [("file", (f"d{i}.png", data, "image/png")) for i, (_, data) in enumerate(digits[:3])]
    files += [("file", ("notes.txt", b"not an image", "text/plain")), ("file", ("blank.png", BLANK, "image/png"))]
    response = client.post("/api/v1/predictions", files=files)
    assert response.status_code == 200, response.text
    results = response.json()
    assert [r["filename"] for r in results] == ["d0.png", "d1.png", "d2.png", "notes.txt", "blank.png"]
    for (label, _), result in zip(digits[:3], results[:3], strict=True):
        assert result["prediction"] == label and result["saved"] is True
        assert store.get(result["id"]).filename == result["filename"]
    assert results[3]["error"]["status"] == 400 and "id" not in results[3]
    assert results[4]["error"]["status"] == 422 and "no digit found" in results[4]["error"]["detail"]
    assert store.stats().total == 3


def test_multipart_without_files_is_422(client: TestClient) -> None:
    assert client.post("/api/v1/predictions", data={"other": "x"}).status_code == 422


def test_list_is_newest_first_with_filters(client: TestClient, digits, store: Store) -> None:
    ids = [client.post("/image-predict", json={"image": b64(data)}).json()["id"] for _, data in digits]
    other = store.save(get_predictor().classify([np.zeros((28, 28), np.uint8)])[0], source="draw")
    page = client.get("/api/v1/predictions", params={"limit": 3}).json()
    assert page["total"] == len(digits) + 1
    assert [item["id"] for item in page["items"]] == [other, ids[-1], ids[-2]]
    assert set(page["items"][0]) == {
        "id", "created_at", "source", "filename", "prediction", "predicted_text", "text",
        "confidence", "probabilities", "label", "label_text", "model_version", "verdict",
    }  # fmt: skip
    assert client.get("/api/v1/predictions", params={"offset": 3, "limit": 500}).json()["items"][0]["id"] == ids[-3]
    api_only = client.get("/api/v1/predictions", params={"source": "api"}).json()
    assert api_only["total"] == len(digits) and other not in [i["id"] for i in api_only["items"]]
    label = digits[0][0]
    by_digit = client.get("/api/v1/predictions", params={"digit": label}).json()
    assert by_digit["total"] >= 1 and all(i["prediction"] == label for i in by_digit["items"])
    client.patch(f"/api/v1/predictions/{ids[0]}", json={"label": label})
    labelled = client.get("/api/v1/predictions", params={"labelled": "true"}).json()
    assert [i["id"] for i in labelled["items"]] == [ids[0]]
    assert client.get("/api/v1/predictions", params={"labelled": "false"}).json()["total"] == len(digits)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 10**9}, {"limit": 0}, {"offset": -1}, {"digit": 12}, {"source": "fax"}, {"labelled": "maybe"},
        {"text": "4a"}, {"text": ""}, {"text": "1" * 65}, {"text": "\u0664"},
    ],
)  # fmt: skip
def test_bad_query_values_are_422(client: TestClient, params: dict) -> None:
    response = client.get("/api/v1/predictions", params=params)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_get_one_and_its_model_input(client: TestClient, digits, store: Store) -> None:
    created = client.post("/image-predict", json={"image": b64(digits[2][1]), "filename": "two.png"}).json()
    item = client.get(f"/api/v1/predictions/{created['id']}").json()
    assert item["id"] == created["id"] and item["filename"] == "two.png" and item["source"] == "api"
    assert item["prediction"] == created["prediction"] and item["probabilities"] == created["probabilities"]
    assert item["model_version"] == get_predictor().model_version and item["label"] is None

    seen = store.get(created["id"]).model_input
    small = client.get(f"/api/v1/predictions/{created['id']}/input.png")
    assert small.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(small.content))), seen)
    big = np.asarray(
        Image.open(io.BytesIO(client.get(f"/api/v1/predictions/{created['id']}/input.png?scale=10").content))
    )
    assert big.shape == (280, 280)
    assert np.array_equal(big, np.repeat(np.repeat(seen, 10, axis=0), 10, axis=1))  # nearest neighbour, no blur
    for scale in (0, 21):
        assert client.get(f"/api/v1/predictions/{created['id']}/input.png?scale={scale}").status_code == 422


def test_unknown_ids_are_404_and_bad_ids_422(client: TestClient) -> None:
    for path in ("/api/v1/predictions/999999", "/api/v1/predictions/999999/input.png"):
        assert client.get(path).status_code == 404
    assert client.patch("/api/v1/predictions/999999", json={"label": 3}).status_code == 404
    assert client.delete("/api/v1/predictions/999999").status_code == 404
    assert client.get(f"/api/v1/predictions/{2**63 - 1}").status_code == 404
    assert client.get(f"/api/v1/predictions/{2**64}").status_code == 422
    assert client.get("/api/v1/predictions/abc").status_code == 422
    assert client.get("/api/v1/nothing-here").json() == {"detail": "Not Found"}


def test_label_set_cleared_and_validated(client: TestClient, digits) -> None:
    label, data = digits[3]
    record_id = client.post("/image-predict", json={"image": b64(data)}).json()["id"]
    response = client.patch(f"/api/v1/predictions/{record_id}", json={"label": label})
    assert response.status_code == 200 and response.json()["label"] == label
    assert response.json()["label_text"] == str(label) and response.json()["text"] == str(response.json()["prediction"])
    assert client.get(f"/api/v1/predictions/{record_id}").json()["label"] == label
    assert client.patch(f"/api/v1/predictions/{record_id}", json={"label": None}).json()["label"] is None
    assert client.patch(f"/api/v1/predictions/{record_id}", json={"label": 7.0}).json()["label"] == 7
    assert client.patch(f"/api/v1/predictions/{record_id}", json={"label": "3"}).json()["label"] == 3
    client.patch(f"/api/v1/predictions/{record_id}", json={"label": None})
    for bad in ({"label": 12}, {"label": -1}, {"label": 7.5}, {"label": "34"}, {"label": "x"}, {"label": True}, {}):
        response = client.patch(f"/api/v1/predictions/{record_id}", json=bad)
        assert response.status_code == 422 and isinstance(response.json()["detail"], str), bad
    assert "one digit" in client.patch(f"/api/v1/predictions/{record_id}", json={"label": "34"}).json()["detail"]
    item = client.get(f"/api/v1/predictions/{record_id}").json()
    assert item["label"] is None and item["label_text"] is None


def test_a_number_is_labelled_with_its_text_and_found_by_it(client: TestClient) -> None:
    number = client.post("/api/v1/numbers", json={"image": b64(number_png("4096"))}).json()
    digit = client.post("/image-predict", json={"image": b64(number_png("4"))}).json()
    assert number["text"] == "4096"
    url = f"/api/v1/predictions/{number['id']}"
    item = client.get(url).json()
    assert (item["text"], item["predicted_text"], item["label"], item["label_text"]) == ("4096", "4096", None, None)

    response = client.patch(url, json={"label": "4097"})
    assert response.status_code == 200, response.text
    assert (response.json()["label"], response.json()["label_text"]) == (None, "4097")
    found = client.get("/api/v1/predictions", params={"text": "4096"}).json()
    assert [(i["id"], i["label_text"]) for i in found["items"]] == [(number["id"], "4097")]
    assert client.get("/api/v1/predictions", params={"text": "4097"}).json()["total"] == 0  # read, not labelled
    by_digit = client.get("/api/v1/predictions", params={"digit": 9}).json()
    assert [i["id"] for i in by_digit["items"]] == [number["id"]]  # "4096" contains a 9
    fours = {i["id"] for i in client.get("/api/v1/predictions", params={"digit": 4}).json()["items"]}
    assert fours == {number["id"], digit["id"]}
    labelled = client.get("/api/v1/predictions", params={"labelled": "true"}).json()
    assert [i["id"] for i in labelled["items"]] == [number["id"]]

    assert client.patch(url, json={"label": "007"}).json()["label_text"] == "007"  # leading zeros kept
    for bad in ({"label": 4}, {"label": 4.0}, {"label": "40 96"}, {"label": "1" * 65}, {"label": ""}):
        response = client.patch(url, json=bad)
        assert response.status_code == 422 and isinstance(response.json()["detail"], str), bad
    assert "its text" in client.patch(url, json={"label": 4}).json()["detail"]
    assert client.get(url).json()["label_text"] == "007"  # a refused label changes nothing
    cleared = client.patch(url, json={"label": None}).json()
    assert (cleared["label"], cleared["label_text"]) == (None, None)
    assert client.get("/api/v1/predictions", params={"labelled": "true"}).json()["total"] == 0


def test_stats_count_each_digit_of_a_number_and_its_label_place_by_place(client: TestClient) -> None:
    first = client.post("/api/v1/numbers", json={"image": b64(number_png("4096"))}).json()
    second = client.post("/api/v1/numbers", json={"image": b64(number_png("305"))}).json()
    assert (first["text"], second["text"]) == ("4096", "305")
    client.patch(f"/api/v1/predictions/{first['id']}", json={"label": "4036"})  # the 9 was a 3
    client.patch(f"/api/v1/predictions/{second['id']}", json={"label": "30"})  # lengths differ: not paired
    stats = client.get("/api/v1/stats").json()
    assert stats["total"] == 2 and stats["per_source"]["number"] == 2
    assert stats["per_digit"] == [2, 0, 0, 1, 1, 1, 1, 0, 0, 1]
    assert (stats["labelled"], stats["correct"], stats["labelled_rows"], stats["mismatched_length"]) == (4, 3, 2, 1)
    assert stats["confusion"][3][9] == 1 and stats["accuracy"] == pytest.approx(0.75)
    assert sum(map(sum, stats["confusion"])) == stats["labelled"]


def test_delete_removes_the_row(client: TestClient, digits) -> None:
    record_id = client.post("/image-predict", json={"image": b64(digits[4][1])}).json()["id"]
    response = client.delete(f"/api/v1/predictions/{record_id}")
    assert response.status_code == 204 and response.content == b""
    assert client.get(f"/api/v1/predictions/{record_id}").status_code == 404
    assert client.delete(f"/api/v1/predictions/{record_id}").status_code == 404


def query_of(filters: Filters) -> dict[str, str]:
    """A Filters as the query parameters GET /api/v1/predictions and /api/v1/stats take."""
    params = {k: v for k, v in asdict(filters).items() if v is not None}
    return {k: v.isoformat() if isinstance(v, datetime) else str(v).lower() for k, v in params.items()}


@pytest.mark.parametrize("filters", EVERY_FILTER, ids=lambda f: repr(f)[8:-1] or "none")
def test_list_and_stats_take_the_history_pages_filters(client: TestClient, store: Store, filters: Filters) -> None:
    rows = seed_known(store)
    want = expected_ids(rows, filters)
    page = client.get("/api/v1/predictions", params={**query_of(filters), "limit": 500})
    assert page.status_code == 200, page.text
    assert page.json()["total"] == len(want) and [i["id"] for i in page.json()["items"]] == want
    stats = client.get("/api/v1/stats", params=query_of(filters)).json()
    assert stats == asdict(store.stats(filters)) and stats["total"] == len(want)


def test_filters_out_of_range_are_422(client: TestClient) -> None:
    bad = ({"min_confidence": "1.5"}, {"since": "yesterday"}, {"source": "fax"}, {"digit": "10"}, {"text": "x"})
    for params in bad:
        for path in ("/api/v1/predictions", "/api/v1/stats"):
            response = client.get(path, params=params)
            assert response.status_code == 422, (path, params)
            assert next(iter(params)) in response.json()["detail"]


def test_stats_count_digits_sources_and_accuracy(client: TestClient, digits) -> None:
    results = [client.post("/image-predict", json={"image": b64(data)}).json() for _, data in digits]
    first_label = digits[0][0]
    wrong_label = (results[1]["prediction"] + 1) % 10
    client.patch(f"/api/v1/predictions/{results[0]['id']}", json={"label": first_label})
    client.patch(f"/api/v1/predictions/{results[1]['id']}", json={"label": wrong_label})
    stats = client.get("/api/v1/stats").json()
    assert stats["total"] == len(digits) and stats["per_source"]["api"] == len(digits)
    assert stats["per_digit"] == [sum(r["prediction"] == d for r in results) for d in range(10)]
    assert stats["labelled"] == 2
    assert stats["correct"] == int(results[0]["prediction"] == first_label)
    assert stats["confusion"][wrong_label][results[1]["prediction"]] == 1
    assert stats["mean_confidence"] == pytest.approx(sum(r["confidence"] for r in results) / len(results))


def test_health_reports_model_and_database(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {
        "status": "ok",
        "model_version": get_predictor().model_version,
        "reader_version": get_reader().version,
        "database": "ok",
    }


def test_openapi_docs_are_served_under_api(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    assert {"/image-predict", "/api/v1/predictions", "/api/v1/numbers", "/api/v1/health"} <= set(schema["paths"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "/api/openapi.json" in docs.text


# ------------------------------------------------------------------ observability


def metric(client: TestClient, name: str, **labels: str) -> float:
    """One sample's value from GET /metrics (0 when it has not been counted yet)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_every_request_is_one_log_line_and_one_latency_sample(client: TestClient, caplog) -> None:
    route = "/api/v1/predictions/{record_id}"
    before = metric(client, "mnist_http_request_duration_seconds_count", method="GET", route=route, status="404")
    caplog.clear()
    assert client.get("/api/v1/predictions/424242").status_code == 404
    assert client.get("/api/v1/nothing-here").status_code == 404
    lines = [r.fields for r in caplog.records if r.name == "mnist.access"]
    assert [(f["method"], f["route"], f["status"]) for f in lines] == [
        ("GET", route, 404),
        ("GET", "unmatched", 404),
    ]
    assert all(isinstance(f["ms"], float) and f["ms"] >= 0 for f in lines)
    after = metric(client, "mnist_http_request_duration_seconds_count", method="GET", route=route, status="404")
    assert after == before + 1


def test_metrics_count_predictions_by_verdict_failed_saves_and_name_the_model(digits) -> None:
    down = Store(f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nowhere", connect_timeout=1)
    with TestClient(create_app(store=down)) as client:
        predicted = metric(client, "mnist_predictions_total", verdict="digit")
        failed = sum(metric(client, "mnist_saves_failed_total", reason=r) for r in ("unavailable", "outage"))
        assert client.post("/image-predict", json=ORIGINAL_REQUEST).json()["verdict"] == "digit"
        assert metric(client, "mnist_predictions_total", verdict="digit") == predicted + 1
        assert (
            sum(metric(client, "mnist_saves_failed_total", reason=r) for r in ("unavailable", "outage")) == failed + 1
        )
        assert metric(client, "mnist_database_outage", database=down.describe()) == 1
        versions = {"model_version": get_predictor().model_version, "reader_version": get_reader().version}
        assert metric(client, "mnist_model_info", **versions) == 1
        assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_the_start_up_summary_says_what_serves_and_shows_no_secret(monkeypatch, caplog) -> None:
    monkeypatch.setenv("MNIST_API_TOKEN", "tok-s3cret-value")
    down = Store(f"postgresql+psycopg2://app:pw-s3cret@127.0.0.1:{closed_port()}/history", connect_timeout=1)
    with TestClient(create_app(store=down)):
        pass
    (started,) = [r for r in caplog.records if r.getMessage() == "started"]
    line = logs.JsonLines().format(started)  # the very line the process writes
    assert "s3cret" not in line
    summary = json.loads(line)
    assert summary["database"] == down.describe() and summary["database_ready"] is False
    assert summary["api_token"] == "set" and summary["model_version"] == get_predictor().model_version
    assert summary["save_timeout_s"] == 0.5 and summary["max_api_body_bytes"] == 5 * 1024 * 1024


# ------------------------------------------------------------------ edges: headers, origins


def test_every_answer_carries_the_security_headers(client: TestClient, digits) -> None:
    record_id = client.post("/image-predict", json={"image": b64(digits[0][1])}).json()["id"]
    answers = [
        client.get(f"/api/v1/predictions/{record_id}"),
        client.get(f"/api/v1/predictions/{record_id}/input.png"),
        client.get("/api/v1/nothing-here"),
        client.post("/image-predict", content=b"{not json", headers={"Content-Type": "application/json"}),
        client.get("/api/docs"),
        client.get("/metrics"),
    ]
    for response in answers:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get_list(name) == [value], (response.request.url, name)


EVIL = "http://evil.example"


def test_a_cross_origin_write_is_refused_and_stores_nothing(client: TestClient, store: Store, digits) -> None:
    files = [("file", ("d.png", digits[0][1], "image/png"))]  # a "simple" request: browsers send it unasked
    refused = client.post("/api/v1/predictions", files=files, headers={"Origin": EVIL})
    assert refused.status_code == 403 and "MNIST_ALLOWED_ORIGINS" in refused.json()["detail"]
    body = {"image": b64(digits[0][1])}
    assert client.post("/image-predict", json=body, headers={"Origin": EVIL}).status_code == 403
    assert client.delete("/api/v1/predictions/1", headers={"Origin": "null"}).status_code == 403
    assert store.page().total == 0
    # Reads stay open (CORS keeps other sites from reading them); the page's own origin and clients
    # without an Origin (scripts, the original client) write as before.
    assert client.get("/api/v1/stats", headers={"Origin": EVIL}).status_code == 200
    own = {"Origin": "http://testserver", "Host": "testserver"}
    assert client.post("/api/v1/predictions", files=files, headers=own).json()[0]["saved"] is True
    assert client.post("/image-predict", json=ORIGINAL_REQUEST).status_code == 200
    assert "access-control-allow-origin" not in client.get("/api/v1/stats", headers={"Origin": EVIL}).headers


def test_an_allowed_origin_may_write_and_read_cross_origin(store: Store, digits, monkeypatch) -> None:
    monkeypatch.setenv("MNIST_ALLOWED_ORIGINS", "https://digits.example.org, http://localhost:3000/")
    with TestClient(create_app(store=store)) as client:
        allowed = {"Origin": "https://digits.example.org"}
        response = client.post("/image-predict", json={"image": b64(digits[0][1])}, headers=allowed)
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == allowed["Origin"]
        preflight = client.options(
            "/image-predict",
            headers={
                **allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "idempotency-key",
            },
        )
        assert preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]
        assert (
            client.post(
                "/image-predict", json=ORIGINAL_REQUEST, headers={"Origin": "http://localhost:3000"}
            ).status_code
            == 200
        )
        assert client.post("/image-predict", json=ORIGINAL_REQUEST, headers={"Origin": EVIL}).status_code == 403


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MNIST_BODY_TIMEOUT", "30"),
        ("MNIST_BODY_TIMEOUT", "0"),
        ("MNIST_SAVE_TIMEOUT", "-1"),
        ("MNIST_ALLOWED_ORIGINS", "evil.example"),
    ],
)
def test_settings_out_of_bounds_are_refused_by_name(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        get_settings()


# ------------------------------------------------------------------ v1: numbers


def test_number_is_read_left_to_right_and_saved_as_one_row(client: TestClient, store: Store) -> None:
    image = number_png("2024", paper=True)
    body = {"image": "data:image/png;base64," + b64(image), "filename": "year.png"}
    response = client.post("/api/v1/numbers", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["text"] == "2024"
    assert [d["prediction"] for d in result["digits"]] == [2, 0, 2, 4]
    for digit in result["digits"]:
        assert len(digit["probabilities"]) == 10 and digit["confidence"] == max(digit["probabilities"])
    assert result["confidence"] == min(d["confidence"] for d in result["digits"])
    width, height = Image.open(io.BytesIO(image)).size
    boxes = result["boxes"]
    assert len(boxes) == 4 and all(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height for x0, y0, x1, y1 in boxes)
    assert all(left[2] <= right[0] for left, right in zip(boxes, boxes[1:], strict=False)), boxes  # left to right
    assert result["saved"] is True and isinstance(result["id"], int) and "warning" not in result

    record = store.get(result["id"])
    assert (record.source, record.predicted_text, record.filename) == ("number", "2024", "year.png")
    assert record.confidence == pytest.approx(result["confidence"])  # the row stands on the weakest digit
    weakest = min(result["digits"], key=lambda d: d["confidence"])
    assert record.digit == weakest["prediction"] and record.probabilities == pytest.approx(weakest["probabilities"])
    assert record.model_input.shape == (28, 28) and record.original.startswith(b"\x89PNG")
    # Every digit's input is kept, exactly as the model saw it (the weakest digit's is the row's model_input).
    assert np.array_equal(record.digit_inputs, read_number(image).digit_inputs)
    assert any(np.array_equal(d, record.model_input) for d in record.digit_inputs)
    thumbnail = Image.open(io.BytesIO(record.original))
    assert thumbnail.width <= MAX_THUMBNAIL_ASPECT * (thumbnail.height + 1)  # whole in the History (height rounded)
    assert store.stats().total == 1 and store.stats().per_digit == [1, 0, 2, 0, 1, 0, 0, 0, 0, 0]

    listed = client.get("/api/v1/predictions", params={"source": "number"}).json()
    assert [(i["id"], i["predicted_text"]) for i in listed["items"]] == [(result["id"], "2024")]


def test_mnist_cells_side_by_side_cut_to_the_ink_are_read(client: TestClient) -> None:
    # How multi-digit MNIST is usually built, then cropped close: the 1s' and 7s' stems run off the picture.
    images, _ = mnist_sample()
    tight, _, _ = crop_to_ink(np.hstack([images[WELL_FORMED[int(c)]] for c in "17714"]), "blank")
    assert client.post("/api/v1/numbers", json={"image": b64(png(tight))}).json()["text"] == "17714"


def test_single_digit_and_white_on_black_numbers_are_read(client: TestClient) -> None:
    assert client.post("/api/v1/numbers", json={"image": b64(number_png("7"))}).json()["text"] == "7"
    assert client.post("/api/v1/numbers", json={"image": b64(number_png("305"))}).json()["text"] == "305"


def test_number_without_ink_is_no_digit_found(client: TestClient, store: Store) -> None:
    response = client.post("/api/v1/numbers", json={"image": b64(BLANK)})
    assert response.status_code == 422
    assert "no digit found" in response.json()["detail"]
    assert store.stats().total == 0


def test_number_of_thirteen_digits_is_refused_clearly(client: TestClient, store: Store) -> None:
    response = client.post("/api/v1/numbers", json={"image": b64(number_png("1234567890123"))})
    assert response.status_code == 422
    assert "at most 12" in response.json()["detail"]
    assert store.stats().total == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"image": "%%% not base64 %%%"}, 400),
        ({"image": "aGVsbG8gd29ybGQ="}, 400),
        ({"image": b64(png(np.zeros((28, 28), np.uint8), fmt="PPM"))}, 415),
        ({"filename": "x.png"}, 422),
    ],
)
def test_bad_number_bodies_get_the_same_statuses(client: TestClient, body: dict, status: int) -> None:
    response = client.post("/api/v1/numbers", json=body)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)


# ------------------------------------------------------------------ idempotency


def keyed_request(kind: str, digits) -> dict:
    """One request of each endpoint that saves, as TestClient.post keyword arguments."""
    if kind == "image-predict":
        return {"url": "/image-predict", "json": {"image": b64(digits[0][1]), "filename": "k.png"}}
    if kind == "numbers":
        return {"url": "/api/v1/numbers", "json": {"image": b64(number_png("42")), "filename": "n.png"}}
    files = [("file", ("a.png", digits[1][1], "image/png")), ("file", ("b.txt", b"not an image", "text/plain"))]
    return {"url": "/api/v1/predictions", "files": files + [("file", ("c.png", digits[2][1], "image/png"))]}


def saved_ids(answer: dict | list) -> list[int]:
    return [a["id"] for a in (answer if isinstance(answer, list) else [answer]) if a.get("saved")]


@pytest.mark.parametrize("kind", ["image-predict", "numbers", "predictions"])
def test_a_repeat_with_the_same_key_returns_the_first_answer_and_adds_no_row(
    client: TestClient, store: Store, digits, kind: str
) -> None:
    request = keyed_request(kind, digits)
    headers = {"Idempotency-Key": f"retry-{kind}-6f1c2a"}
    first = client.post(**request, headers=headers)
    assert first.status_code == 200, first.text
    rows = store.page().total
    assert rows == len(saved_ids(first.json())) >= 1
    for _ in range(2):
        again = client.post(**request, headers=headers)
        assert again.status_code == 200 and again.json() == first.json()  # the same answer, the same ids
    assert store.page().total == rows
    # Without a key every request is new, as the original client has always had it.
    assert client.post(**request).status_code == 200
    assert store.page().total == 2 * rows


def test_a_key_reused_for_a_different_request_is_refused(client: TestClient, store: Store, digits) -> None:
    headers = {"Idempotency-Key": "reused"}
    first = client.post("/image-predict", json={"image": b64(digits[0][1])}, headers=headers)
    other = client.post("/image-predict", json={"image": b64(digits[3][1])}, headers=headers)
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    assert [r.id for r in store.page().items] == [first.json()["id"]]
    # A key belongs to its endpoint: the same key on another endpoint is another request.
    number = client.post("/api/v1/numbers", json={"image": b64(number_png("7"))}, headers=headers)
    assert number.status_code == 200 and number.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tinside", "caf\u00e9".encode("latin-1")])
def test_a_malformed_key_is_422(client: TestClient, digits, key: str | bytes) -> None:
    response = client.post("/image-predict", json={"image": b64(digits[0][1])}, headers={"Idempotency-Key": key})
    assert response.status_code == 422 and "Idempotency-Key" in response.json()["detail"]


def test_concurrent_repeats_of_one_request_make_one_row(client: TestClient, store: Store, digits) -> None:
    body = {"image": b64(digits[4][1]), "filename": "race.png"}
    answers: list[dict] = []

    def post() -> None:
        answers.append(client.post("/image-predict", json=body, headers={"Idempotency-Key": "race"}).json())

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({a["id"] for a in answers}) == 1 and all(a["saved"] for a in answers)
    assert store.page().total == 1


# ------------------------------------------------------------------ token


def test_token_guards_patch_and_delete_only(client: TestClient, digits, monkeypatch: pytest.MonkeyPatch) -> None:
    record_id = client.post("/image-predict", json={"image": b64(digits[5][1])}).json()["id"]
    monkeypatch.setenv("MNIST_API_TOKEN", "s3cret-token")
    url = f"/api/v1/predictions/{record_id}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        for response in (client.patch(url, json={"label": 1}, headers=headers), client.delete(url, headers=headers)):
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert "s3cret" not in response.text
    assert client.get(url).json()["label"] is None  # nothing changed
    assert client.post("/image-predict", json=ORIGINAL_REQUEST).status_code == 200  # reading stays open
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.patch(url, json={"label": 1}, headers=good).json()["label"] == 1
    assert client.delete(url, headers=good).status_code == 204


# ------------------------------------------------------------------ database down


def a_bug(*_args: object, **_kwargs: object) -> None:
    """What a real bug deep in NumPy or Pillow looks like: a plain ValueError, not one of the engine's errors."""
    raise ValueError("operands could not be broadcast together")


def test_a_bug_in_the_engine_is_a_server_error_not_a_bad_image(store: Store, digits, monkeypatch) -> None:
    monkeypatch.setattr("mnist.service.candidate_views", a_bug)
    files = [("file", ("d.png", digits[0][1], "image/png"))]
    body = {"image": b64(digits[0][1])}
    with TestClient(create_app(store=store), raise_server_exceptions=False) as client:
        for response in (client.post("/api/v1/predictions", files=files), client.post("/image-predict", json=body)):
            assert response.status_code == 500 and response.json() == {"detail": "internal error"}
    # The server itself gets the exception, which it logs with its traceback (uvicorn: "Exception in ASGI
    # application"); the client above saw neither the traceback nor a "not an image" 400.
    with TestClient(create_app(store=store)) as client, pytest.raises(ValueError, match="broadcast"):
        client.post("/api/v1/predictions", files=files)
    assert store.stats().total == 0


def test_database_down_predictions_still_answer(digits, caplog: pytest.LogCaptureFixture) -> None:
    down = Store(f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nowhere", connect_timeout=1)
    with TestClient(create_app(store=down)) as client:
        response = client.post("/image-predict", json=ORIGINAL_REQUEST)
        assert response.status_code == 200
        body = response.json()
        assert body["prediction"] == ORIGINAL_DIGIT and body["saved"] is False and body["id"] is None
        assert "not saved" in body["warning"] and body["reason"] in ("unavailable", "outage")
        files = [("file", ("d.png", digits[0][1], "image/png"))]
        batch = client.post("/api/v1/predictions", files=files).json()
        assert batch[0]["prediction"] == digits[0][0] and batch[0]["saved"] is False and batch[0]["warning"]
        # Every prediction not saved leaves a warning with its reason's class (one each, not one per outage).
        unsaved = [r for r in caplog.records if r.getMessage() == "prediction_not_saved"]
        assert [(r.fields["source"], r.fields["reason"] in ("unavailable", "outage")) for r in unsaved] == [
            ("api", True),
            ("api", True),
        ]
        for path in ("/api/v1/predictions", "/api/v1/stats", "/api/v1/predictions/1"):
            response = client.get(path)
            assert response.status_code == 503 and "unavailable" in response.json()["detail"], path
        health = client.get("/api/v1/health").json()
        assert health["status"] == "ok" and health["database"] == "unavailable"


def test_database_down_numbers_still_read() -> None:
    down = Store(f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nowhere", connect_timeout=1)
    with TestClient(create_app(store=down)) as client:
        response = client.post("/api/v1/numbers", json={"image": b64(number_png("31"))})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["text"] == "31" and body["saved"] is False and body["id"] is None
        assert "not saved" in body["warning"]


def test_database_that_comes_back_is_migrated_then(tmp_path: Path, digits) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("a file where the database directory should be")
    store = Store(f"sqlite:///{blocker / 'history.sqlite3'}")
    store.PROBE_SECONDS = 0.0  # during the outage, try the database on every call instead of once a second
    app = create_app(store=store)
    app.state.provider.RETRY_SECONDS = 0.0  # retry the migration at once instead of after a pause
    with TestClient(app) as client:
        first = client.post("/image-predict", json={"image": b64(digits[0][1])}).json()
        assert first["saved"] is False
        blocker.unlink()
        blocker.mkdir()
        second = client.post("/image-predict", json={"image": b64(digits[0][1])}).json()
        assert second["saved"] is True and client.get("/api/v1/stats").json()["total"] == 1


# ------------------------------------------------------------------ the model registry (see also test_finetune)


@pytest.fixture
def shipped_after():
    """Serve the shipped weights again after a test that activated another version (its process-wide predictor)."""
    yield
    serve_shipped()


def test_the_registry_shows_the_shipped_version_and_404s_an_unknown_one(client: TestClient) -> None:
    shipped = get_predictor().model_version
    (only,) = client.get("/api/v1/models").json()
    assert only["version"] == shipped and only["shipped"] and only["status"] == "active" and only["parent"] is None
    assert only["metrics"]["mnist"]["accuracy"] > 0.99 and only["progress"] == 1.0
    assert client.get(f"/api/v1/models/{shipped}").json() == only
    missing = client.get("/api/v1/models/ft-nothing")
    assert missing.status_code == 404 and "ft-nothing" in missing.json()["detail"]


def test_a_fine_tune_needs_labelled_rows_and_mnists_training_files(
    client: TestClient, store: Store, digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nothing = client.post("/api/v1/models", json={"epochs": 3})
    assert nothing.status_code == 422 and "labelled" in nothing.json()["detail"]
    record_id = client.post("/image-predict", json={"image": b64(digits[0][1])}).json()["id"]
    assert client.patch(f"/api/v1/predictions/{record_id}", json={"label": digits[0][0]}).status_code == 200
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))  # no MNIST files there
    missing = client.post("/api/v1/models")
    assert missing.status_code == 503 and "MNIST_DATA_DIR" in missing.json()["detail"]
    for body in ({"epochs": 0}, {"epochs": 101}, {"epochs": "many"}):
        assert client.post("/api/v1/models", json=body).status_code == 422, body
    assert [m["shipped"] for m in client.get("/api/v1/models").json()] == [True]  # nothing was registered


def test_activation_over_the_api_follows_the_gate_and_rolls_back(
    client: TestClient, store: Store, shipped_after
) -> None:
    shipped = get_predictor().model_version
    good, refused = add_candidate(store, passed=True), add_candidate(store, passed=False, shift=-0.5)

    answer = client.post(f"/api/v1/models/{refused.version}/activate", json={"force": False})
    assert answer.status_code == 409 and REFUSED in answer.json()["detail"] and "force" in answer.json()["detail"]
    assert client.get("/api/v1/health").json()["model_version"] == shipped

    answer = client.post(f"/api/v1/models/{good.version}/activate")
    assert answer.status_code == 200 and answer.json()["status"] == "active", answer.text
    assert client.get("/api/v1/health").json()["model_version"] == good.version
    saved = client.post("/image-predict", json=ORIGINAL_REQUEST).json()
    assert client.get(f"/api/v1/predictions/{saved['id']}").json()["model_version"] == good.version
    listed = client.get("/api/v1/predictions", params={"model_version": good.version}).json()
    assert [item["id"] for item in listed["items"]] == [saved["id"]]

    forced = client.post(f"/api/v1/models/{refused.version}/activate", json={"force": True})
    assert forced.status_code == 200 and forced.json()["gate"]["forced_at"] and not forced.json()["gate"]["passed"]
    statuses = {m["version"]: m["status"] for m in client.get("/api/v1/models").json()}
    assert statuses == {refused.version: "active", good.version: "retired", shipped: "retired"}

    back = client.post(f"/api/v1/models/{shipped}/activate")
    assert back.status_code == 200 and client.get("/api/v1/health").json()["model_version"] == shipped

    store.start_model("ft-busy", parent=shipped, recipe={})
    busy = client.post("/api/v1/models/ft-busy/activate", json={"force": True})
    assert busy.status_code == 409 and "training" in busy.json()["detail"]
    assert client.post("/api/v1/models/ft-nothing/activate").status_code == 404
    assert client.post(f"/api/v1/models/{good.version}/activate", json={"force": "yes"}).status_code == 422


def test_the_model_operations_need_the_token_when_it_is_set(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch, shipped_after
) -> None:
    candidate = add_candidate(store)
    monkeypatch.setenv("MNIST_API_TOKEN", "s3cret-token")
    operations = [
        ("get", "/api/v1/models", None),
        ("get", f"/api/v1/models/{candidate.version}", None),
        ("post", "/api/v1/models", {}),
        ("post", f"/api/v1/models/{candidate.version}/activate", {}),
    ]
    for method, path, body in operations:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", path
    assert store.active_model() != candidate.version  # nothing changed
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/api/v1/models", headers=good).status_code == 200
    assert client.post(f"/api/v1/models/{candidate.version}/activate", headers=good).status_code == 200
    assert client.post("/api/v1/models", json={}, headers=good).status_code == 422  # past the token: nothing labelled
