"""End to end: POST /photos/process → RabbitMQ → ``python -m consumer`` →
download from a local HTTP server → thumbnail → file and rows in Postgres.

Throughput with 1 and with 2 consumers is compared with the bare thumbnail
throughput on the same number of cores: ``fit_within`` in a loop over the same
photos already in memory, in 1 and in 2 processes. Runs alternate (bare 1,
consumers 1, bare 2, consumers 2, and again) so that a busy spell on the
machine falls on both sides of a ratio; the best round of each is kept, as
the one least disturbed by others.

Each run has fresh rows in the benchmark's own database, its own queue and
thumbs directory; consumers are started and seen consuming before the clock
starts. The clock runs from the POST to the last ``completed_at`` in the
database. Consumer CPU time (from /proc) is reported per photo beside the
bare loop's, which shows the cost of everything around the thumbnail whatever
the scheduling.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from bench.corpus import Corpus
from bench.report import Report
from photos import db, imaging, pipeline, schema
from photos.config import Settings
from photos.queue import Topology
from tests.support.photo_host import PhotoHost, serve_bytes
from tests.support.services import AMQP_URI, Broker, Process, consumer, temporary_database, unique_queue
from web import create_app

BOX = 320
MAX_PIXELS = 100_000_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    seconds: float
    photos: int
    cpu_seconds: float = 0.0  # of the thumbnail processes or consumers
    machine_cpu_seconds: float = 0.0  # of every process on the machine

    @property
    def per_second(self) -> float:
        return self.photos / self.seconds


# --- bare thumbnails, in 1 or 2 processes ------------------------------------


def _bare_worker(
    paths: list[str], barrier: Barrier, results: multiprocessing.Queue[tuple[float, float, float]]
) -> None:
    files = [Path(p).read_bytes() for p in paths]
    imaging.fit_within(files[0], BOX, BOX, max_pixels=MAX_PIXELS)  # warm-up
    barrier.wait()
    start, cpu = time.time(), time.process_time()
    for data in files:
        imaging.fit_within(data, BOX, BOX, max_pixels=MAX_PIXELS)
    results.put((start, time.time(), time.process_time() - cpu))


def bare(paths: list[Path], processes: int) -> Run:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results: multiprocessing.Queue[tuple[float, float, float]] = context.Queue()
    shares = [[str(p) for p in paths[i::processes]] for i in range(processes)]
    workers = [context.Process(target=_bare_worker, args=(share, barrier, results)) for share in shares]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    start = min(o[0] for o in outcomes)
    end = max(o[1] for o in outcomes)
    return Run(end - start, len(paths), sum(o[2] for o in outcomes))


# --- the service, with 1 or 2 consumers --------------------------------------


@dataclass
class Service:
    settings: Settings
    engine: Engine
    client: FlaskClient
    broker: Broker
    urls: list[str]
    logs: Path

    def run(self, consumers: int, prefetch: int = 1) -> Run:
        with self.engine.begin() as connection:
            connection.execute(text("TRUNCATE photos CASCADE"))
        ids = pipeline.add_photos(db.make_session_factory(self.engine), self.urls)
        processes = [
            consumer(
                self.settings,
                self.logs / f"consumer-{uuid.uuid4().hex[:6]}.log",
                CONSUMER_PREFETCH=str(prefetch),
            ).start()
            for _ in range(consumers)
        ]
        try:
            self._wait_consuming(consumers, processes)
            cpu_before = sum(_cpu_seconds(p.pid) for p in processes)
            machine_before = _machine_busy_seconds()
            start = time.time()
            response = self.client.post("/photos/process", json=[str(i) for i in ids])
            assert response.status_code == 202, response.get_data(as_text=True)
            end = self._wait_done(len(ids), processes)
            cpu = sum(_cpu_seconds(p.pid) for p in processes) - cpu_before
            machine = _machine_busy_seconds() - machine_before
        finally:
            for process in processes:
                if process.alive():
                    process.terminate()
        return Run(end - start, len(ids), cpu, machine)

    def _wait_consuming(self, consumers: int, processes: list[Process]) -> None:
        deadline = time.monotonic() + 60
        while True:
            with self.broker.channel() as channel:
                declared = channel.queue_declare(self.broker.topology.queue, passive=True)
            if declared.method.consumer_count >= consumers:
                return
            for process in processes:
                if not process.alive():
                    raise RuntimeError(f"a consumer exited at start:\n{process.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("consumers did not start consuming within 60 s")
            time.sleep(0.05)

    def _wait_done(self, photos: int, processes: list[Process]) -> float:
        """Epoch time of the last completion; raises if a photo failed."""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with self.engine.connect() as connection:
                row = connection.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE status = 'completed'), "
                        "count(*) FILTER (WHERE status = 'failed'), "
                        "extract(epoch FROM max(completed_at)) FROM photos"
                    )
                ).one()
            completed, failed, last = int(row[0]), int(row[1]), row[2]
            if failed:
                logs = "\n".join(p.log()[-1500:] for p in processes)
                raise RuntimeError(f"{failed} photos failed in the end-to-end run:\n{logs}")
            if completed == photos:
                return float(last)
            time.sleep(0.1)
        raise RuntimeError("the end-to-end run did not finish within 600 s")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, from /proc (it is not our child's
    rusage until it exits)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy_seconds() -> float:
    """CPU seconds spent by every process on the machine (all cores) so far."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def run(report: Report, corpus: Corpus, rounds: int, photos: int = 60) -> None:
    report.section(f"End to end: {photos} photos of 12 MP, POST → queue → consumers → files and rows")
    paths = [corpus.jpeg_12mp[i % len(corpus.jpeg_12mp)] for i in range(photos)]
    host = PhotoHost().start()
    urls = [host.add(f"/photos/{i}.jpg", serve_bytes(p.read_bytes())) for i, p in enumerate(paths)]
    with temporary_database() as uri, tempfile.TemporaryDirectory() as scratch:
        schema.upgrade(uri)
        thumbs = Path(scratch) / "thumbs"
        thumbs.mkdir()
        settings = Settings(
            pg_uri=uri,
            amqp_uri=AMQP_URI,
            thumbs_dir=thumbs,
            queue_name=unique_queue(),
            allowed_fetch_hosts=frozenset({"127.0.0.1"}),
        )
        broker = Broker(AMQP_URI, Topology(settings.queue_name))
        broker.declare()
        engine = db.make_engine(uri)
        app = create_app(settings)
        service = Service(settings, engine, app.test_client(), broker, urls, Path(scratch))
        results: dict[str, list[Run]] = {
            "bare1": [],
            "e2e1": [],
            "bare2": [],
            "e2e2": [],
            "e2e1p2": [],
            "e2e2p2": [],
        }
        try:
            for _ in range(max(3, rounds // 5)):
                results["bare1"].append(bare(paths, 1))
                results["e2e1"].append(service.run(1))
                results["bare2"].append(bare(paths, 2))
                results["e2e2"].append(service.run(2))
                results["e2e1p2"].append(service.run(1, prefetch=2))
                results["e2e2p2"].append(service.run(2, prefetch=2))
        finally:
            app.extensions["photos"].close()
            engine.dispose()
            broker.delete()
            host.stop()
    best = {name: max(runs, key=lambda r: r.per_second) for name, runs in results.items()}
    for name, label in (
        ("bare1", "bare fit_within, 1 process"),
        ("e2e1", "end to end, 1 consumer"),
        ("bare2", "bare fit_within, 2 processes"),
        ("e2e2", "end to end, 2 consumers"),
        ("e2e1p2", "end to end, 1 consumer with CONSUMER_PREFETCH=2 (informative)"),
        ("e2e2p2", "end to end, 2 consumers with CONSUMER_PREFETCH=2 (informative)"),
    ):
        rates = ", ".join(f"{r.per_second:.1f}" for r in results[name])
        report.say(f"{label}: {best[name].per_second:.1f} photos/s (rounds: {rates})")
    for name, label in (("bare1", "bare loop"), ("e2e1", "1 consumer"), ("e2e2", "2 consumers")):
        cpu = statistics.median(r.cpu_seconds / r.photos for r in results[name]) * 1000
        report.figure(f"CPU per photo, {label}", cpu, "ms")
    for name, label in (("e2e1", "1 consumer"), ("e2e2", "2 consumers")):
        # Includes Postgres, RabbitMQ, the photo host and the web app in this
        # process, and whatever else the machine was doing.
        cpu = statistics.median(r.machine_cpu_seconds / r.photos for r in results[name]) * 1000
        report.figure(f"CPU per photo, whole machine, {label}", cpu, "ms")
    report.goal("1 consumer / bare on 1 core", best["e2e1"].per_second / best["bare1"].per_second, "≥", 0.95)
    report.figure(
        "2 consumers / bare on 2 cores (informative)",
        best["e2e2"].per_second / best["bare2"].per_second,
        digits=2,
    )
    report.goal("2 consumers / 1 consumer", best["e2e2"].per_second / best["e2e1"].per_second, "≥", 1.8)
    # What two cores give the bare loop over one on this machine: a virtual
    # machine whose two vCPUs share a physical core gives much less than 2.
    report.figure(
        "bare, 2 processes / 1 process: the machine's own scaling (informative)",
        best["bare2"].per_second / best["bare1"].per_second,
        digits=2,
    )
    report.figure(
        "with CONSUMER_PREFETCH=2: 1 consumer / bare on 1 core (informative)",
        best["e2e1p2"].per_second / best["bare1"].per_second,
        digits=2,
    )
    report.figure(
        "with CONSUMER_PREFETCH=2: 2 consumers / bare on 2 cores (informative)",
        best["e2e2p2"].per_second / best["bare2"].per_second,
        digits=2,
    )
