"""API keys: who may use the service.

Guarantees, and where they come from:

- *A key is shown once and never stored.* :func:`create_key` draws 32 bytes
  from :mod:`secrets` and keeps only their SHA-256; the key itself is returned
  to the caller and nowhere else.
- *Comparisons are constant-time.* A presented key is hashed, looked up by its
  hash (the unique index), and the stored hash is compared with
  :func:`hmac.compare_digest`: how long a check takes says nothing about how
  much of a key was right.
- *A revoke takes effect on the next request.* :func:`authenticate` asks the
  database on every call, nothing is cached: a revoked key, or the first key
  created while the service was open, counts from the next request on.
- *Open while no key is in force.* With no unrevoked key, every request is
  allowed (:attr:`Verdict.open`); the service says so at start and on its page.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import LargeBinary, Select, and_, bindparam, exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError

from photos.db import SessionFactory, transaction, unit_of_work
from photos.models import ApiKey

# 32 random bytes (256 bits), URL-safe base64, after a prefix that tells what it is.
KEY_PREFIX = "pp_"
KEY_BYTES = 32
MAX_NAME_LENGTH = 100
# last_used_at is written at most this often per key, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


class KeyCommandError(Exception):
    """A keys command that cannot be done; the message says why, for a person."""


class NameTaken(KeyCommandError):
    pass


class UnknownKey(KeyCommandError):
    pass


class InvalidName(KeyCommandError):
    pass


class Verdict(enum.Enum):
    open = "open"  # no key is in force: everyone may use the service
    allowed = "allowed"  # a key in force was presented
    missing = "missing"  # keys are in force and none was presented
    invalid = "invalid"  # keys are in force and the one presented is unknown or revoked


@dataclass(frozen=True)
class KeyInfo:
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Access:
    verdict: Verdict
    key_name: str | None = None

    @property
    def granted(self) -> bool:
        return self.verdict in (Verdict.open, Verdict.allowed)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def _check_name(name: str) -> str:
    stripped = name.strip()
    if not stripped or len(stripped) > MAX_NAME_LENGTH or not stripped.isprintable():
        raise InvalidName(f"a key's name is 1 to {MAX_NAME_LENGTH} printable characters, got {name!r}")
    return stripped


def create_key(factory: SessionFactory, name: str) -> str:
    """A new key named ``name``, returned once; only its hash is stored.
    Raises :class:`NameTaken` when a key (even a revoked one) has that name."""
    name = _check_name(name)
    key = new_key()
    try:
        with unit_of_work(factory) as session:
            session.add(ApiKey(name=name, key_sha256=digest(key)))
    except IntegrityError as exc:
        if "uq_api_keys_name" in str(exc.orig):
            raise NameTaken(
                f"a key named {name!r} exists already (revoked keys keep their names); choose another name"
            ) from None
        raise
    return key


def list_keys(factory: SessionFactory) -> list[KeyInfo]:
    with unit_of_work(factory) as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()
        return [KeyInfo(r.name, r.created_at, r.last_used_at, r.revoked_at) for r in rows]


def revoke_key(factory: SessionFactory, name: str) -> KeyInfo:
    """Revokes the key named ``name`` from the next request on; a key revoked
    already keeps its first ``revoked_at``. Raises :class:`UnknownKey`."""
    with unit_of_work(factory) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )
        row = session.scalars(select(ApiKey).where(ApiKey.name == name)).first()
        if row is None:
            raise UnknownKey(f"no key named {name!r}; `keys list` shows the names")
        return KeyInfo(row.name, row.created_at, row.last_used_at, row.revoked_at)


def keys_in_force(factory: SessionFactory) -> bool:
    with unit_of_work(factory) as session:
        return bool(session.scalar(select(exists().where(ApiKey.revoked_at.is_(None)))))


def _verdict_statement() -> Select[bool, int, str, bytes, datetime | None]:
    """Whether any key is in force, and the unrevoked key whose hash is
    ``:hashed`` if there is one: one round trip for every request."""
    one = select(literal(1).label("one")).subquery()
    return (
        select(
            exists().where(ApiKey.revoked_at.is_(None)).label("in_force"),
            ApiKey.id,
            ApiKey.name,
            ApiKey.key_sha256,
            ApiKey.last_used_at,
        )
        .select_from(one)
        .outerjoin(
            ApiKey,
            and_(ApiKey.key_sha256 == bindparam("hashed", type_=LargeBinary), ApiKey.revoked_at.is_(None)),
        )
    )


_VERDICT = _verdict_statement()


def authenticate(factory: SessionFactory, presented: str | None) -> Access:
    """Whether a request that presented ``presented`` (or no key) may go on.
    One statement (and, at most once a minute per key, the ``last_used_at`` write)."""
    hashed = digest(presented) if presented else None
    with transaction(factory) as connection:
        row = connection.execute(_VERDICT, {"hashed": hashed}).one()
        if not row.in_force:
            return Access(Verdict.open)
        if hashed is None:
            return Access(Verdict.missing)
        if row.key_sha256 is None or not hmac.compare_digest(row.key_sha256, hashed):
            return Access(Verdict.invalid)
        if row.last_used_at is None or row.last_used_at < datetime.now(UTC) - LAST_USED_PRECISION:
            connection.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=func.now()))
        return Access(Verdict.allowed, row.name)
