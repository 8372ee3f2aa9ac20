"""Operator commands (``flask --app web ...``):

- ``keys create NAME|list|revoke NAME``: the API keys;
- ``photos add URL...``: one UUID per line;
- ``photos queue [--status pending|failed] [--reason TEXT]``: queue them;
- ``stats``: counts by status, the queues and their consumers;
- ``dead-letters list|replay|purge``: the upscaler's dead letters.

Each calls one use case, as a route does; a backend that does not answer is a
message on stderr and exit status 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from photos import keys, operations, pipeline
from photos.db import is_unavailable
from photos.dead_letters import DeadLetters
from photos.messages import BrokerUnavailable
from photos.models import PhotoStatus
from photos.queue import UpscaleTopology
from web import resources

T = TypeVar("T")

photos_cli = AppGroup("photos", help="Photos: add them by URL, queue them for processing.")
dead_letters_cli = AppGroup(
    "dead-letters", help="The upscaler's dead letters: list them with their reasons, replay or purge them."
)


def _backends(action: Callable[[], T]) -> T:
    """``action()``, its backend failures turned into a message and exit 1."""
    try:
        return action()
    except BrokerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        if is_unavailable(exc):
            raise click.ClickException(f"the database does not answer: {str(exc).splitlines()[0]}") from None
        raise


def _url(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    try:
        return pipeline.check_urls(values)
    except pipeline.InvalidURLs as exc:
        raise click.BadParameter(f"{exc}: {', '.join(map(str, exc.invalid))}") from None


@photos_cli.command("add")
@click.argument("urls", nargs=-1, required=True, callback=_url)
def add_command(urls: list[str]) -> None:
    """Add a pending photo for each URL; print their UUIDs, one per line."""
    ids = _backends(lambda: pipeline.add_photos(resources.get().session_factory, urls))
    for photo in ids:
        click.echo(str(photo))


@photos_cli.command("queue")
@click.option(
    "--status",
    type=click.Choice([PhotoStatus.pending.value, PhotoStatus.failed.value]),
    default=PhotoStatus.pending.value,
    show_default=True,
    help="which photos to queue",
)
@click.option("--reason", help="only those whose failure reason is this (as GET /photos/failures lists it)")
def queue_command(status: str, reason: str | None) -> None:
    """Queue every photo of a status (pending by default) for processing."""
    services = resources.get()
    queued = _backends(
        lambda: operations.queue_by_status(
            services.session_factory, services.publisher(), PhotoStatus(status), reason
        )
    )
    click.echo(f"queued {queued}")


def stats_command() -> None:
    """Counts by status, the work, retry and dead-letter queues, the consumers."""
    services = resources.get()
    counts = _backends(lambda: operations.status_counts(services.session_factory))
    click.echo("photos")
    for status, count in counts.items():
        click.echo(f"  {status.value:<12}{count:>10}")
    watched = services.topology.watched_queues
    states = _backends(lambda: services.queue_inspector.states(list(watched.values())))
    click.echo("queues                                      ready  consumers")
    for role, state in zip(watched, states, strict=True):
        click.echo(f"  {role:<6}{state.name:<36}{state.messages:>6}{state.consumers:>11}")
    click.echo(f"consumers {states[0].consumers}")


_queue_option = click.option(
    "--queue",
    envvar="UPSCALE_QUEUE",
    default="image-upscaling",
    show_default=True,
    help="the upscaler's work queue (its dead letters are on QUEUE.dead)",
)


def _dead_letters(queue: str) -> DeadLetters:
    return DeadLetters(resources.get().settings.amqp_uri, UpscaleTopology(queue))


@dead_letters_cli.command("list")
@_queue_option
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def list_dead_command(queue: str, limit: int) -> None:
    """One JSON line per dead letter, oldest first, with its reason headers;
    they stay where they are."""
    dead = _dead_letters(queue)
    letters = _backends(lambda: dead.list(limit))
    for letter in letters:
        line: dict[str, object] = {
            "reason": letter.reason,
            "step": letter.step,
            "attempts": letter.attempts,
            "bytes": len(letter.body),
        }
        try:
            body = json.loads(letter.body)
        except ValueError:
            body = None
        if isinstance(body, dict):
            line.update({k: body[k] for k in ("width", "height") if k in body})
        click.echo(json.dumps(line))
    click.echo(f"{len(letters)} dead letters on {dead.topology.dead_queue}", err=True)


@dead_letters_cli.command("replay")
@_queue_option
@click.option("--limit", type=click.IntRange(min=1), help="at most this many (default: all)")
def replay_dead_command(queue: str, limit: int | None) -> None:
    """Put the dead letters back on the upscaler's work queue."""
    dead = _dead_letters(queue)
    moved = _backends(lambda: dead.replay(limit))
    click.echo(f"replayed {moved} onto {dead.topology.queue}")


@dead_letters_cli.command("purge")
@_queue_option
@click.option("--yes", is_flag=True, help="do not ask")
def purge_dead_command(queue: str, yes: bool) -> None:
    """Delete every dead letter."""
    dead = _dead_letters(queue)
    if not yes:
        count = _backends(dead.count)
        click.confirm(f"delete the {count} dead letters of {dead.topology.dead_queue}?", abort=True)
    purged = _backends(dead.purge)
    click.echo(f"purged {purged} from {dead.topology.dead_queue}")


keys_cli = AppGroup("keys", help="API keys: while one is in force, every request needs a key.")


@keys_cli.command("create")
@click.argument("name")
def create_command(name: str) -> None:
    """Create a key named NAME and print it (once: only its hash is kept)."""
    try:
        key = _backends(lambda: keys.create_key(resources.get().session_factory, name))
    except keys.KeyCommandError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(key)
    click.echo(f"Key {name.strip()!r} created. It is shown this once: keep it now.", err=True)


@keys_cli.command("list")
def list_command() -> None:
    """List the keys: name, when created, last used, revoked."""
    rows = _backends(lambda: keys.list_keys(resources.get().session_factory))
    if not rows:
        click.echo("No keys: the service is open to anyone who can reach it.", err=True)
        return
    header = ("NAME", "CREATED", "LAST USED", "REVOKED")
    table = [(k.name, _when(k.created_at), _when(k.last_used_at), _when(k.revoked_at)) for k in rows]
    widths = [max(len(row[i]) for row in (header, *table)) for i in range(len(header))]
    for row in (header, *table):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@keys_cli.command("revoke")
@click.argument("name")
def revoke_command(name: str) -> None:
    """Revoke the key named NAME; it stops working at the next request."""
    try:
        info = _backends(lambda: keys.revoke_key(resources.get().session_factory, name))
    except keys.KeyCommandError as exc:
        raise click.ClickException(str(exc)) from None
    assert info.revoked_at is not None
    click.echo(f"Key {info.name!r} revoked at {_when(info.revoked_at)}.")


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def init_app(app: Flask) -> None:
    app.cli.add_command(keys_cli)
    app.cli.add_command(photos_cli)
    app.cli.add_command(dead_letters_cli)
    app.cli.command("stats")(stats_command)
