"""The photo message and its wire format: what consumers accept, what they refuse."""

from __future__ import annotations

import json
import uuid

import pytest

from photos.messages import PhotoMessage

PHOTO = uuid.UUID("3f2c8e4a-5b1d-4c7e-9a60-0d1e2f3a4b5c")


def test_a_message_is_a_json_object_naming_its_photo() -> None:
    assert json.loads(PhotoMessage(PHOTO).encode()) == {"photo_uuid": str(PHOTO)}


def test_a_message_survives_the_wire() -> None:
    message = PhotoMessage(uuid.uuid4())
    assert PhotoMessage.decode(message.encode()) == message


def test_keys_a_newer_publisher_adds_are_ignored() -> None:
    body = json.dumps({"photo_uuid": str(PHOTO), "priority": 3}).encode()
    assert PhotoMessage.decode(body) == PhotoMessage(PHOTO)


def test_a_uuid_in_another_spelling_is_the_same_photo() -> None:
    body = json.dumps({"photo_uuid": PHOTO.hex.upper()}).encode()
    assert PhotoMessage.decode(body) == PhotoMessage(PHOTO)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"null",
        b"[]",
        json.dumps([str(PHOTO)]).encode(),
        b"{}",
        json.dumps({"uuid": str(PHOTO)}).encode(),
        json.dumps({"photo_uuid": "not-a-uuid"}).encode(),
        json.dumps({"photo_uuid": None}).encode(),
        json.dumps({"photo_uuid": 42}).encode(),
    ],
    ids=[
        "empty",
        "not-json",
        "not-utf-8",
        "null",
        "empty-array",
        "bare-array",
        "empty-object",
        "other-key",
        "malformed-uuid",
        "null-uuid",
        "number",
    ],
)
def test_what_is_not_a_message_of_ours_is_a_value_error_naming_it_malformed(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"^malformed message"):
        PhotoMessage.decode(body)
