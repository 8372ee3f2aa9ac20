"""Answering queries (``POST /query``): the consumer's side.

:func:`reply_to_query` runs on a worker thread and returns the reply to
publish; the worker publishes it and acks the request on the connection's
thread. A request that cannot be answered to (no reply-to) is dropped.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from pika.spec import BasicProperties

from photos import query, rpc
from photos.imaging import ImageError
from photos.query import Answer, ConsumerError, Refusal

log = logging.getLogger("consumer.query")


@dataclass(frozen=True)
class Reply:
    routing_key: str
    body: bytes
    properties: BasicProperties


def consumer_id() -> str:
    """Who answers: ``host:pid``, so that a reply says which consumer made it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def reply_to_query(body: bytes, props: BasicProperties, *, max_pixels: int) -> Reply | None:
    try:
        request = rpc.QueryRequest.decode(body, props)
    except rpc.MalformedMessage as exc:
        log.error("dropping a query nobody can be answered for", extra={"error": str(exc)})
        return None
    me = consumer_id()
    outcome: Answer | Refusal
    try:
        outcome = query.answer(request.image, max_pixels=max_pixels, consumer=me)
    except ImageError as exc:
        outcome = exc
    except Exception as exc:
        log.exception("bug while answering a query", extra={"query": request.correlation_id})
        outcome = ConsumerError(f"internal error: {type(exc).__name__}")
    if isinstance(outcome, Answer) and outcome.mirrored.warning is not None:
        log.warning(
            "mirror made with a caveat",
            extra={"query": request.correlation_id, "reason": outcome.mirrored.warning},
        )
    if isinstance(outcome, Answer):
        log.info(
            "query answered",
            extra={"query": request.correlation_id, "outcome": "answer", "size_bytes": outcome.size_bytes},
        )
    else:
        log.info(
            "query refused",
            extra={
                "query": request.correlation_id,
                "outcome": rpc.failure_kind(outcome),
                "reason": outcome.reason,
            },
        )
    reply_body, reply_props = rpc.encode_reply(outcome, request.correlation_id, me)
    return Reply(request.reply_to, reply_body, reply_props)
