"""Which strings are photos' addresses (pipeline.check_urls): http(s) URLs
with a host, of a bounded length, without control characters."""

from __future__ import annotations

import pytest

from photos import pipeline


@pytest.mark.parametrize(
    "url",
    [
        "http://photos.example/a.jpg",
        "HTTPS://photos.example:8443/a b.jpg?size=large#x",
        "http://127.0.0.1/private-is-checked-at-download-time.jpg",
        "http://[::1]:3000/samples/a.jpg",
        "http://h/" + "a" * (pipeline.MAX_URL_LENGTH - len("http://h/")),
    ],
)
def test_http_urls_with_a_host_are_photo_urls(url: str) -> None:
    assert pipeline.check_urls([url]) == [url]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "photos.example/a.jpg",
        "ftp://photos.example/a.jpg",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http:///a.jpg",
        "http://photos.example:99999/a.jpg",
        "http://photos.example/a\x00.jpg",
        "http://photos.example/a\n.jpg",
        "http://h/" + "a" * pipeline.MAX_URL_LENGTH,
        17,
        None,
        ["http://photos.example/a.jpg"],
    ],
)
def test_anything_else_is_refused_and_named(url: object) -> None:
    with pytest.raises(pipeline.InvalidURLs) as refused:
        pipeline.check_urls(["http://ok.example/a.jpg", url])
    assert refused.value.invalid == [url]
