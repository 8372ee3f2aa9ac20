"""What an API key costs a request: the same request to gunicorn as ``make
run`` starts it, with no key in force (one query: is any key in force?) and
with a key in force and presented (that query, the lookup by hash, the
constant-time comparison), interleaved round by round so that the machine's
drift falls on both alike. Nothing is cached (a revoke counts at the next
request); these figures are the price of that. Wall time, median.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import Engine, text, update

from bench.report import Report
from photos import db, keys, schema
from photos.config import Settings
from photos.models import ApiKey
from tests.support.services import AMQP_URI, Process, answers_ok, closed_port, service_env, temporary_database
from tests.support.wait import wait_for
from web.wsgi import gunicorn_command

REQUESTS_PER_ROUND = 40
PATH = "/photos/failures"


def run(report: Report, rounds: int) -> None:
    report.section(f"API keys: GET {PATH} open, and with a key in force and presented")
    with temporary_database() as uri, tempfile.TemporaryDirectory() as work:
        schema.upgrade(uri)
        engine = db.make_engine(uri)
        factory = db.make_session_factory(engine)
        port = closed_port()
        settings = Settings(pg_uri=uri, amqp_uri=AMQP_URI, thumbs_dir=Path(work), port=port)
        web = Process(
            gunicorn_command(f"127.0.0.1:{port}"),
            service_env(settings, PORT=str(port)),
            Path(work) / "web.log",
        ).start()
        url = f"http://127.0.0.1:{port}{PATH}"
        try:
            wait_for(lambda: answers_ok(f"http://127.0.0.1:{port}/healthz"), 60, what="gunicorn to answer")
            key = keys.create_key(factory, "bench")
            session = requests.Session()
            timings: dict[str, list[float]] = {"open": [], "keyed": []}
            checks: dict[str, list[float]]
            for _ in range(rounds):
                for mode in ("open", "keyed"):
                    _set_revoked(engine, revoked=mode == "open")
                    headers = {"X-API-Key": key} if mode == "keyed" else {}
                    assert session.get(url, headers=headers, timeout=10).status_code == 200
                    for _ in range(REQUESTS_PER_ROUND):
                        start = time.perf_counter()
                        session.get(url, headers=headers, timeout=10).raise_for_status()
                        timings[mode].append(time.perf_counter() - start)
            refused = session.get(url, timeout=10).status_code
            # The check on its own, in this process: what the request pays for it.
            checks = {"open": [], "keyed": []}
            for _ in range(rounds):
                for mode in ("open", "keyed"):
                    _set_revoked(engine, revoked=mode == "open")
                    presented = key if mode == "keyed" else None
                    for _ in range(REQUESTS_PER_ROUND):
                        start = time.perf_counter()
                        keys.authenticate(factory, presented)
                        checks[mode].append(time.perf_counter() - start)
        finally:
            web.terminate()
            engine.dispose()
    assert refused == 401  # the key was in force at the end: no key, no answer
    open_ms = statistics.median(timings["open"]) * 1000
    keyed_ms = statistics.median(timings["keyed"]) * 1000
    report.figure(f"GET {PATH}, no key in force, median of {len(timings['open'])}", open_ms, "ms", 2)
    report.figure(
        f"GET {PATH}, key in force and presented, median of {len(timings['keyed'])}", keyed_ms, "ms", 2
    )
    report.figure(
        "  difference of the medians (within the noise of a shared machine)", keyed_ms - open_ms, "ms", 2
    )
    for mode, what in (("open", "no key in force"), ("keyed", "a key presented and found")):
        median = statistics.median(checks[mode]) * 1000
        report.figure(f"keys.authenticate on its own, {what}, median", median, "ms", 3)


def _set_revoked(engine: Engine, *, revoked: bool) -> None:
    with engine.begin() as connection:
        connection.execute(update(ApiKey).values(revoked_at=text("now()") if revoked else None))
