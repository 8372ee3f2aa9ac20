"""What a consumer answers to a query, the kB rule, and the reply's wire format."""

from __future__ import annotations

import uuid

import pytest
from pika.spec import BasicProperties

from photos import rpc
from photos.imaging import ImageTooLarge, NotAnImage
from photos.query import Answer, ConsumerError, Refusal, answer, kilobytes
from photos.uploads import mirrored_path
from tests.support import images


@pytest.mark.parametrize(
    ("size_bytes", "kb"),
    [
        (84_000, 82),  # the seed's "82kb": 82.03 KiB
        (83_968, 82),  # exactly 82 KiB
        (84_479, 82),  # 82.499...
        (84_480, 83),  # 82.5 rounds up
        (1, 1),  # any image is at least 1kb
        (511, 1),
        (1_535, 1),
        (1_536, 2),
        (10 * 1024 * 1024, 10_240),
        (0, 0),
    ],
)
def test_kilobytes_are_bytes_over_1024_rounded_half_up_and_at_least_1(size_bytes: int, kb: int) -> None:
    assert kilobytes(size_bytes) == kb


def test_the_answer_is_the_size_sent_and_the_image_mirrored() -> None:
    data = images.jpeg(90, 60)
    result = answer(data, max_pixels=10_000, consumer="host:1")
    assert result.size_bytes == len(data)
    assert result.consumer == "host:1"
    mirrored = images.decode(result.mirrored.data)
    assert mirrored.size == (90, 60) == (result.mirrored.width, result.mirrored.height)
    assert images.is_red(mirrored.getpixel((88, 1)))  # type: ignore[arg-type]
    assert not images.is_red(mirrored.getpixel((1, 1)))  # type: ignore[arg-type]


def test_exif_orientation_is_applied_before_mirroring() -> None:
    # Displayed 90x60 (stored 60x90, orientation 6): the mirror is of what a person sees.
    result = answer(images.jpeg(90, 60, orientation=6), max_pixels=10_000, consumer="host:1")
    mirrored = images.decode(result.mirrored.data)
    assert mirrored.size == (90, 60)
    assert images.is_red(mirrored.getpixel((88, 1)))  # type: ignore[arg-type]


def test_what_is_not_an_image_is_refused() -> None:
    with pytest.raises(NotAnImage, match="not an image"):
        answer(b"GIF89a but not really", max_pixels=10_000, consumer="host:1")


def test_too_many_pixels_are_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLarge, match="101x100, more than the limit of 10000 pixels"):
        answer(images.png(101, 100), max_pixels=10_000, consumer="host:1")


def test_the_mirrored_file_is_named_by_the_query() -> None:
    query_id = uuid.UUID("3f2b0c1e-0000-4000-8000-000000000001")
    assert mirrored_path(query_id, "png") == f"queries/3f/{query_id}-mirrored.png"


def test_an_answer_survives_the_wire() -> None:
    sent = answer(images.png(20, 10), max_pixels=10_000, consumer="host:7")
    body, props = rpc.encode_reply(sent, "abc", "host:7")
    assert props.correlation_id == "abc"
    received = rpc.decode_reply(body, props)
    assert received == sent


@pytest.mark.parametrize("failure", [NotAnImage("no"), ImageTooLarge("big"), ConsumerError("bug")])
def test_a_failure_survives_the_wire_as_its_own_type(failure: Refusal) -> None:
    body, props = rpc.encode_reply(failure, "abc", "host:7")
    with pytest.raises(type(failure)) as raised:
        rpc.decode_reply(body, props)
    assert raised.value.reason == failure.reason


def test_replies_that_are_not_ours_are_malformed() -> None:
    with pytest.raises(rpc.MalformedMessage):
        rpc.decode_reply(b"", BasicProperties(headers={"outcome": "maybe"}))
    with pytest.raises(rpc.MalformedMessage):
        rpc.decode_reply(b"x", BasicProperties(headers={"outcome": "answer", "width": 1}))
    with pytest.raises(rpc.MalformedMessage):
        rpc.QueryRequest.decode(b"image", BasicProperties(correlation_id="abc"))


def test_headers_arriving_as_bytes_are_read_as_text() -> None:
    # RabbitMQ hands long strings back as bytes.
    props = BasicProperties(
        content_type="image/png",
        headers={
            "outcome": b"answer",
            "consumer": b"host:7",
            "size_bytes": 5,
            "width": 2,
            "height": 1,
            "extension": b"png",
        },
    )
    received = rpc.decode_reply(b"image", props)
    assert isinstance(received, Answer)
    assert (received.consumer, received.mirrored.extension) == ("host:7", "png")
