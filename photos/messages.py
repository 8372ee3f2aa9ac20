"""What travels between the web app and the consumers, without the broker: the
photo message and its wire format, the publisher the use cases are given, and
the error a publisher raises. Nothing here imports pika; :mod:`photos.queue`
carries these messages over RabbitMQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached, or did not confirm a message."""


@dataclass(frozen=True)
class PhotoMessage:
    """Process this photo (into the renditions its row names)."""

    photo_uuid: uuid.UUID

    def encode(self) -> bytes:
        return json.dumps({"photo_uuid": str(self.photo_uuid)}).encode()

    @classmethod
    def decode(cls, body: bytes) -> PhotoMessage:
        """Raises ValueError for anything that is not a message of ours."""
        try:
            data = json.loads(body)
            return cls(uuid.UUID(str(data["photo_uuid"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"malformed message: {exc}") from None


class MessagePublisher(Protocol):
    def publish(self, messages: Sequence[PhotoMessage], *, delay_ms: int | None = None) -> None:
        """Returns once every message is confirmed; BrokerUnavailable otherwise."""
        ...
