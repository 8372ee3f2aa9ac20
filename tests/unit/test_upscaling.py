"""What an upscale message must be: every field's rules, no servers."""

from __future__ import annotations

import base64
import json

import pytest

from photos.upscaling import InvalidMessage, NotAnUpscale, UpscaleRequest, encode_request
from tests.support import images

PNG = images.png(40, 30)
B64 = base64.b64encode(PNG).decode()


def message(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def decode(body: bytes, max_pixels: int = 1_000_000) -> UpscaleRequest:
    return UpscaleRequest.decode(body, max_pixels=max_pixels)


def test_a_valid_message_is_read() -> None:
    request = decode(encode_request(PNG, 80, 60))
    assert (request.width, request.height, request.image) == (80, 60, PNG)
    assert (request.image_width, request.image_height) == (40, 30)


def test_other_keys_are_ignored_and_base64_may_be_wrapped_in_lines() -> None:
    wrapped = "\n".join(B64[i : i + 76] for i in range(0, len(B64), 76))
    request = decode(message(width=80, height=60, image_data=wrapped, source="camera-7"))
    assert request.image == PNG


def test_the_same_size_as_the_image_and_one_side_growing_are_upscales() -> None:
    assert decode(encode_request(PNG, 40, 30)).width == 40
    assert decode(encode_request(PNG, 40, 300)).height == 300


@pytest.mark.parametrize(("width", "height"), [(39, 30), (40, 29), (20, 15), (400, 29)])
def test_a_target_smaller_than_the_image_in_either_dimension_is_not_an_upscale(
    width: int, height: int
) -> None:
    with pytest.raises(
        NotAnUpscale, match=f"not an upscale: {width}x{height} is smaller than the image's 40x30"
    ):
        decode(encode_request(PNG, width, height))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (message(height=60, image_data=B64), "missing field: width"),
        (message(width=80), "missing fields: height, image_data"),
        (message(), "missing fields: width, height, image_data"),
        (message(width="80", height=60, image_data=B64), 'width must be a whole number, got "80"'),
        (message(width=80.0, height=60, image_data=B64), "width must be a whole number, got 80.0"),
        (message(width=True, height=60, image_data=B64), "width must be a whole number, got true"),
        (message(width=None, height=60, image_data=B64), "width must be a whole number, got null"),
        (message(width=80, height=0, image_data=B64), "height must be at least 1, got 0"),
        (message(width=80, height=-60, image_data=B64), "height must be at least 1, got -60"),
        (message(width=80, height=60, image_data=123), "image_data must be a base64 string"),
        (message(width=80, height=60, image_data="iVBORw0KGgo*"), "image_data is not valid base64"),
        (message(width=80, height=60, image_data=B64[:-2]), "image_data is not valid base64"),
        (message(width=80, height=60, image_data="é"), "image_data is not valid base64"),
        (message(width=80, height=60, image_data=""), "image_data is not a PNG"),
        (
            message(width=80, height=60, image_data=base64.b64encode(images.jpeg(40, 30)).decode()),
            "image_data is not a PNG",
        ),
        (
            message(width=80, height=60, image_data=base64.b64encode(PNG[:40]).decode()),
            "image_data is not a readable PNG",
        ),
        (
            message(width=2000, height=2000, image_data=B64),
            "2000x2000 is more than the limit of 1000000 pixels",
        ),
        (b"[80, 60]", "the message is not a JSON object"),
        (b"\xff\xfe", "the message is not JSON"),
        (b"", "the message is not JSON"),
    ],
)
def test_a_message_that_cannot_be_carried_out_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage) as raised:
        decode(body)
    assert raised.value.reason.startswith(reason), raised.value.reason


def test_an_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidMessage, match="more than the limit of 1000 pixels"):
        decode(encode_request(PNG, 40, 30), max_pixels=1000)


def test_the_request_key_is_fixed_by_image_and_size() -> None:
    one = decode(encode_request(PNG, 80, 60))
    assert one.key == decode(encode_request(PNG, 80, 60)).key
    assert one.key != decode(encode_request(PNG, 60, 80)).key
