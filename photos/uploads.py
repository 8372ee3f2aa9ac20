"""Uploads: photos that arrive as bytes instead of URLs, on the one pipeline;
and the answers to queries, kept as a row and the mirrored image's file.

An upload is a ``photos`` row with ``source = 'upload'`` whose original is kept
in storage at ``<uuid[:2]>/<uuid>/original.<ext>`` (a key fixed by the photo,
never by the client); consumers read it from there instead of downloading,
and make the renditions the row names.

Guarantees of :func:`register_upload`:

- *No object without a row.* The row is committed first, then the original is
  written (atomically, on either backend). A process killed in between leaves
  a pending row without its original, which nobody was told about and which
  fails with a clear reason if it is ever queued; never an object no row names.
  A write that fails withdraws the row (and the object, should the write have
  landed after all).
- *Nothing lost, or nothing at all.* When the photo is to be processed, its
  message is published (with confirms) after the row and the file are in place.
  If RabbitMQ does not confirm it, the upload is withdrawn: the row is deleted,
  only if it is still pending, and its file with it, and
  :class:`~photos.messages.BrokerUnavailable` propagates, so the client's error
  means "nothing happened, try again". If a consumer has already claimed the
  photo (the message got through, only its confirm was lost) the upload stands
  and is returned as a success.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from photos import imaging, renditions
from photos.db import SessionFactory, unit_of_work
from photos.messages import BrokerUnavailable, MessagePublisher, PhotoMessage
from photos.models import Photo, PhotoStatus, Query, Thumbnail
from photos.query import Answer
from photos.storage import MissingObject, Storage, StorageUnavailable, photo_key

log = logging.getLogger(__name__)

ORIGINAL = "original"
TASK_RENDITIONS = ("square-64", "square-32")

_CONTENT_TYPES = dict(imaging.ACCEPTED_FORMATS.values())


class UploadError(Exception):
    """An upload, or a look-up of one, that cannot be served; the message is
    for the person who sent it."""

    @property
    def reason(self) -> str:
        return str(self)


class InvalidUpload(UploadError):
    """The request is malformed: bad base64, no bytes, a non-square image where
    only square ones are accepted, an unknown rendition."""


class UploadTooLarge(UploadError):
    """Too many bytes (too many pixels is imaging.ImageTooLarge, as at every door)."""


class UnknownPhoto(UploadError):
    """No uploaded photo has this id."""


class ImageNotReady(UploadError):
    """The photo exists but this image of it does not (yet)."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class StoredImage:
    data: bytes
    content_type: str


def decode_base64(text: object, limits: Limits) -> bytes:
    """Strict standard base64 (RFC 4648 alphabet, padded, no whitespace or
    data: prefix). Raises InvalidUpload or UploadTooLarge, checking the size
    before decoding."""
    if not isinstance(text, str):
        raise InvalidUpload('"data" must be a string of base64')
    if not text:
        raise InvalidUpload('"data" is empty')
    if len(text) // 4 * 3 - 2 > limits.max_bytes:
        raise UploadTooLarge(f"the image is larger than the limit of {limits.max_bytes} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidUpload('"data" is not valid base64') from None
    return check_size(data, limits)


def check_size(data: bytes, limits: Limits) -> bytes:
    if not data:
        raise InvalidUpload("the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise UploadTooLarge(
            f"the image is {len(data)} bytes, more than the limit of {limits.max_bytes} bytes"
        )
    return data


def check_image(data: bytes, limits: Limits, *, square_only: bool) -> imaging.Probe:
    """Reads the header only. Raises what the one acceptance rule raises
    (:func:`photos.imaging.probe`: NotAnImage, ImageTooLarge), or InvalidUpload
    (not square, when ``square_only``); sizes are as displayed, EXIF
    orientation applied."""
    probe = imaging.probe(data, limits.max_pixels)
    if square_only and probe.width != probe.height:
        raise InvalidUpload(f"only square images are accepted, got {probe.width}x{probe.height}")
    return probe


def check_renditions(names: Sequence[str]) -> tuple[str, ...]:
    """Recipe names, duplicates dropped; InvalidUpload names the unknown ones."""
    wanted = tuple(dict.fromkeys(names))
    if not wanted:
        raise InvalidUpload("at least one rendition is needed")
    unknown = [n for n in wanted if n not in renditions.RECIPES]
    if unknown:
        raise InvalidUpload(
            f"unknown renditions {', '.join(unknown)}; known: {', '.join(sorted(renditions.RECIPES))}"
        )
    return wanted


def register_upload(
    factory: SessionFactory,
    storage: Storage,
    publisher: MessagePublisher,
    data: bytes,
    *,
    limits: Limits,
    renditions_wanted: Sequence[str] = (renditions.DEFAULT.name,),
    square_only: bool = False,
    process: bool = False,
) -> Photo:
    """Keep ``data`` as a new photo's original and, if ``process``, queue it.

    Raises InvalidUpload, UploadTooLarge or an ImageError before anything is
    stored, and BrokerUnavailable (after withdrawing the upload) when the
    message was not confirmed. See the module docstring for the ordering.
    """
    wanted = check_renditions(renditions_wanted)
    probe = check_image(check_size(data, limits), limits, square_only=square_only)
    photo = _keep_original(factory, storage, data, probe, wanted, queued=process)
    log.info(
        "photo uploaded",
        extra={"photo": str(photo.uuid), "bytes": len(data), "format": probe.format, "renditions": wanted},
    )
    if process:
        _queue_upload(factory, storage, publisher, photo.uuid)
    return photo


def _keep_original(
    factory: SessionFactory,
    storage: Storage,
    data: bytes,
    probe: imaging.Probe,
    wanted: Sequence[str],
    *,
    queued: bool,
) -> Photo:
    """The row committed, then the original written (see the module docstring)."""
    photo_uuid = uuid.uuid4()
    extension, _ = imaging.ACCEPTED_FORMATS[probe.format]
    path = photo_key(photo_uuid, ORIGINAL, extension)
    with unit_of_work(factory) as session:
        photo = session.scalars(
            insert(Photo)
            .values(
                uuid=photo_uuid,
                url=f"upload:{path}",
                source="upload",
                original_path=path,
                renditions=list(wanted),
                queued_at=func.now() if queued else None,
            )
            .returning(Photo)
        ).one()
    try:
        storage.write(path, data)
    except BaseException:
        _withdraw_unwritten(factory, storage, photo_uuid, path)
        raise
    return photo


def _queue_upload(
    factory: SessionFactory, storage: Storage, publisher: MessagePublisher, photo_uuid: uuid.UUID
) -> None:
    """Publish the upload's message; withdraw the upload and raise
    BrokerUnavailable if it is not confirmed and nobody has claimed the photo."""
    try:
        publisher.publish([PhotoMessage(photo_uuid)])
    except BrokerUnavailable:
        if withdraw_upload(factory, storage, photo_uuid):
            raise
        log.info("message unconfirmed but already claimed", extra={"photo": str(photo_uuid)})
    else:
        log.info("photo queued", extra={"photo": str(photo_uuid)})


def withdraw_upload(factory: SessionFactory, storage: Storage, photo_uuid: uuid.UUID) -> bool:
    """Delete an upload nobody has started on: the row if still pending, and
    then its original. The object goes before the commit, so a crash in between
    leaves a row without an object, never an object without a row. True if withdrawn."""
    with unit_of_work(factory) as session:
        deleted = session.execute(
            delete(Photo)
            .where(Photo.uuid == photo_uuid, Photo.status == PhotoStatus.pending, Photo.attempts == 0)
            .returning(Photo.original_path)
        ).first()
        if deleted is not None and deleted.original_path is not None:
            # An outage raises here and keeps the row: never an object without one.
            storage.delete([deleted.original_path])
    if deleted is not None:
        log.warning("upload withdrawn", extra={"photo": str(photo_uuid)})
    return deleted is not None


def _withdraw_unwritten(factory: SessionFactory, storage: Storage, photo_uuid: uuid.UUID, key: str) -> None:
    """The row of an upload whose original could not be written goes (the
    client hears nothing was stored). The object is deleted too in case the
    write landed although it failed (a reply lost to a timeout); in an outage
    that cannot be done, and only such a write would leave an object behind."""
    with unit_of_work(factory) as session:
        session.execute(delete(Photo).where(Photo.uuid == photo_uuid))
    try:
        storage.delete([key])
    except StorageUnavailable as exc:
        log.warning("could not delete an unwritten original", extra={"key": key, "error": exc.reason})
    log.warning("upload withdrawn", extra={"photo": str(photo_uuid)})


def find_upload(session: Session, photo_uuid: uuid.UUID) -> Photo:
    """The uploaded photo with this id; UnknownPhoto if there is none (photos
    that came by URL included)."""
    photo = session.scalars(select(Photo).where(Photo.uuid == photo_uuid, Photo.source == "upload")).first()
    if photo is None:
        raise UnknownPhoto(f"no uploaded photo {photo_uuid}")
    return photo


def read_image(session: Session, storage: Storage, photo_uuid: uuid.UUID, rendition: str) -> StoredImage:
    """The uploaded original (``rendition == ORIGINAL``) or a rendition of it.
    Raises UnknownPhoto, or ImageNotReady while the rendition is not made (or
    when the photo does not get that rendition at all)."""
    photo = find_upload(session, photo_uuid)
    if rendition == ORIGINAL:
        assert photo.original_path is not None  # the source check constraint says so
        relative = photo.original_path
    else:
        if rendition not in photo.renditions:
            raise ImageNotReady(f"photo {photo_uuid} does not get the {rendition} rendition")
        relative_or_none = session.scalar(
            select(Thumbnail.key).where(Thumbnail.photo_uuid == photo_uuid, Thumbnail.rendition == rendition)
        )
        if relative_or_none is None:
            raise ImageNotReady(
                f"the {rendition} rendition of photo {photo_uuid} is not made yet (status {photo.status.value})"
            )
        relative = relative_or_none
    try:
        data = storage.read(relative)
    except MissingObject:
        raise ImageNotReady(f"the {rendition} file of photo {photo_uuid} is missing from storage") from None
    extension = relative.rsplit(".", 1)[-1]
    return StoredImage(data, _CONTENT_TYPES.get(extension, "application/octet-stream"))


# --- queries: the answer kept ------------------------------------------------


class Asker(Protocol):
    def ask(self, image: bytes) -> Answer:
        """The consumer's answer, or its refusal (photos.query.Refusal),
        QueryTimeout, BrokerUnavailable."""
        ...


@dataclass(frozen=True)
class Recorded:
    id: uuid.UUID
    path: str  # of the mirrored image, relative to the thumbs directory
    answer: Answer


def mirrored_path(query_id: uuid.UUID, extension: str) -> str:
    return str(PurePosixPath("queries", str(query_id)[:2], f"{query_id}-mirrored.{extension}"))


def ask_query(asker: Asker, factory: SessionFactory, storage: Storage, image: bytes) -> Recorded:
    """Send ``image`` to a consumer and record its answer."""
    return record_answer(factory, storage, asker.ask(image))


def record_answer(factory: SessionFactory, storage: Storage, answer: Answer) -> Recorded:
    """Insert the ``queries`` row, then write the file it names.

    The row is committed first, so an object never exists without its row: a
    writer killed mid-write leaves a row naming a missing object (and, on the
    local backend, a partial file the consumers sweep), never an unnamed
    object. A write that fails (StorageUnavailable included) removes the row
    again.
    """
    query_id = uuid.uuid4()
    path = mirrored_path(query_id, answer.mirrored.extension)
    with unit_of_work(factory) as session:
        session.add(Query(uuid=query_id, size_bytes=answer.size_bytes, mirrored_path=path))
    try:
        storage.write(path, answer.mirrored.data)
    except BaseException:
        with unit_of_work(factory) as session:
            session.execute(delete(Query).where(Query.uuid == query_id))
        raise
    log.info(
        "query recorded",
        extra={"query": str(query_id), "size_bytes": answer.size_bytes, "consumer": answer.consumer},
    )
    return Recorded(query_id, path, answer)
