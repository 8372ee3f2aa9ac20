"""GET /thumbs/<key>: an object of either backend, with the caching headers
its name allows, and nothing outside the storage root."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from photos.config import Settings
from photos.storage import open_storage
from tests.support import images
from tests.support.storage import BOTH_BACKENDS

THUMB = images.jpeg(32, 24)


@pytest.fixture
def a_thumbnail(settings: Settings) -> str:
    """A rendition written as the pipeline writes one, and a secret beside
    the thumbs directory."""
    storage = open_storage(settings)
    key = storage.rendition_key(uuid.uuid4(), "fit-320", "jpg")
    storage.write(key, THUMB)
    (settings.thumbs_dir.parent / "secret.txt").write_text("secret")
    return key


@BOTH_BACKENDS
def test_a_thumbnail_is_served_as_an_image_with_nosniff(client: FlaskClient, a_thumbnail: str) -> None:
    response = client.get(f"/thumbs/{a_thumbnail}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == THUMB
    assert images.decode(response.data).size == (32, 24)


@BOTH_BACKENDS
def test_a_thumbnail_has_an_etag_and_a_last_modified_and_answers_304_when_unchanged(
    client: FlaskClient, a_thumbnail: str
) -> None:
    first = client.get(f"/thumbs/{a_thumbnail}")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and len(etag) > 2
    modified = datetime.strptime(first.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT")
    assert abs((datetime.utcnow() - modified).total_seconds()) < 120

    again = client.get(f"/thumbs/{a_thumbnail}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == first.headers["Cache-Control"]

    other = client.get(f"/thumbs/{a_thumbnail}", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.data == THUMB


@pytest.mark.parametrize(
    ("storage_kind", "cache_control"),
    [("local", "no-cache"), ("s3", "public, max-age=31536000, immutable")],
    indirect=["storage_kind"],
)
def test_only_write_once_names_are_cached_as_immutable(
    client: FlaskClient, a_thumbnail: str, cache_control: str
) -> None:
    """Local rendition names are rewritten when a photo is processed again;
    the S3 backend's carry a token no other write uses."""
    assert client.get(f"/thumbs/{a_thumbnail}").headers["Cache-Control"] == cache_control


@BOTH_BACKENDS
def test_a_rewritten_local_name_gets_a_new_etag(
    client: FlaskClient, settings: Settings, a_thumbnail: str
) -> None:
    before = client.get(f"/thumbs/{a_thumbnail}").headers["ETag"]
    open_storage(settings).write(a_thumbnail, images.jpeg(40, 30))
    after = client.get(f"/thumbs/{a_thumbnail}", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["ETag"] != before
    assert images.decode(after.data).size == (40, 30)


@pytest.mark.parametrize(
    ("storage_kind", "content_type", "data"),
    [
        ("local", "image/png", images.png(8, 8)),
        ("s3", "image/png", images.png(8, 8)),
        ("local", "image/webp", images.encode(images.photo(8, 8), "WEBP")),
        ("s3", "image/webp", images.encode(images.photo(8, 8), "WEBP")),
    ],
    indirect=["storage_kind"],
)
def test_the_content_type_follows_the_extension(
    client: FlaskClient, settings: Settings, content_type: str, data: bytes
) -> None:
    storage = open_storage(settings)
    key = storage.rendition_key(uuid.uuid4(), "fit-320", content_type.split("/")[1])
    storage.write(key, data)
    response = client.get(f"/thumbs/{key}")
    assert response.headers["Content-Type"] == content_type
    assert response.data == data


@BOTH_BACKENDS
def test_a_missing_object_is_a_json_404(client: FlaskClient, a_thumbnail: str) -> None:
    missing = a_thumbnail.replace("fit-320", "square-64")
    for headers in ({}, {"If-None-Match": '"x"'}):
        response = client.get(f"/thumbs/{missing}", headers=headers)
        assert response.status_code == 404
        assert response.get_json()["error"]


@BOTH_BACKENDS
@pytest.mark.parametrize(
    "path",
    [
        "/thumbs/../secret.txt",
        "/thumbs/..%2fsecret.txt",
        "/thumbs/%2e%2e/secret.txt",
        "/thumbs/%2e%2e%2fsecret.txt",
        "/thumbs/%252e%252e%252fsecret.txt",
        "/thumbs/..\\secret.txt",
        "/thumbs//etc/passwd",
        "/thumbs/%2fetc%2fpasswd",
        "/thumbs/ab/../../secret.txt",
        "/thumbs/.",
        "/thumbs/..",
        "/thumbs/%00",
        "/thumbs/ab/%00../../secret.txt",
    ],
)
def test_paths_leaving_the_thumbs_directory_are_not_served(
    client: FlaskClient, a_thumbnail: str, path: str
) -> None:
    # Werkzeug redirects "//" to "/": followed, it stays under /thumbs/.
    response = client.get(path, follow_redirects=True)
    assert all(urlsplit(r.headers["Location"]).path.startswith("/thumbs/") for r in response.history)
    assert response.status_code in (400, 404)
    assert b"secret" not in response.data
    assert b"root:" not in response.data
    assert response.get_json()["error"]


def test_hidden_files_and_symlinks_out_of_the_directory_are_not_served(
    client: FlaskClient, settings: Settings, a_thumbnail: str
) -> None:
    directory = (settings.thumbs_dir / a_thumbnail).parent
    (directory / ".partial-host-1-abc").write_bytes(b"half")
    (directory / "link.jpg").symlink_to(settings.thumbs_dir.parent / "secret.txt")
    for name in (".partial-host-1-abc", "link.jpg"):
        response = client.get(f"/thumbs/{Path(a_thumbnail).parent.as_posix()}/{name}")
        assert response.status_code == 404
        assert b"secret" not in response.data and b"half" not in response.data
