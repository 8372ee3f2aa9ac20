"""End to end: POST /photos/process → RabbitMQ → ``python -m consumer`` →
download from a local HTTP server → thumbnail → file and rows in Postgres.

The service as ``make run`` starts it by default (one consumer per core,
scripts/run.py) is compared with the bare thumbnail on the same cores:
``fit_within`` in a loop over the same photos already in memory, one process
per core. Each round runs bare, the service, and bare again, and each of the
service's figures is divided by the average of the two bare figures around
it; the goals take the median of those per-round ratios, so that a busy spell
on the shared machine falls on both sides of a ratio. One consumer against
bare in one process is printed beside them.

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
from scripts.run import consumer_count
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

    def run(self, consumers: int) -> Run:
        with self.engine.begin() as connection:
            connection.execute(text("TRUNCATE photos CASCADE"))
        ids = pipeline.add_photos(db.make_session_factory(self.engine), self.urls)
        processes = [
            # Settings as make run's consumers read them: the defaults.
            consumer(self.settings, self.logs / f"consumer-{uuid.uuid4().hex[:6]}.log").start()
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
    cores = len(os.sched_getaffinity(0))
    default = consumer_count()
    report.section(
        f"End to end: {photos} photos of 12 MP, POST → queue → consumers → files and rows "
        f"({default} consumers, as make run starts them here; bare: one process per core, {cores})"
    )
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
        rounds_done: list[tuple[Run, Run, Run, Run, Run]] = []
        try:
            for _ in range(max(3, rounds // 5)):
                # Bare before and after each run of the service: the machine's
                # speed drifts (other work on it), and the service's figures are
                # compared with the average of the two around them.
                before = bare(paths, cores)
                default_run = service.run(default)
                one = service.run(1)
                bare_one = bare(paths, 1)
                after = bare(paths, cores)
                rounds_done.append((before, default_run, after, one, bare_one))
        finally:
            app.extensions["photos"].close()
            engine.dispose()
            broker.delete()
            host.stop()
    _report(report, rounds_done, default, cores)


def _report(report: Report, rounds: list[tuple[Run, Run, Run, Run, Run]], default: int, cores: int) -> None:
    for i, (before, service, after, one, bare_one) in enumerate(rounds, 1):
        report.say(
            f"round {i}: bare {before.per_second:.1f} → {after.per_second:.1f} photos/s "
            f"({before.cpu_seconds / before.photos * 1000:.1f} → {after.cpu_seconds / after.photos * 1000:.1f} ms CPU a photo); "
            f"{default} consumers {service.per_second:.1f} photos/s, {service.cpu_seconds / service.photos * 1000:.1f} ms CPU a photo; "
            f"1 consumer {one.per_second:.1f} photos/s against bare on 1 core {bare_one.per_second:.1f}"
        )

    def bare_cpu(r: tuple[Run, Run, Run, Run, Run]) -> float:
        return (r[0].cpu_seconds / r[0].photos + r[2].cpu_seconds / r[2].photos) / 2

    def bare_rate(r: tuple[Run, Run, Run, Run, Run]) -> float:
        return (r[0].per_second + r[2].per_second) / 2

    report.figure(
        "CPU per photo, bare (average before and after)",
        statistics.median(map(bare_cpu, rounds)) * 1000,
        "ms",
    )
    report.figure(
        f"CPU per photo, {default} consumers (all of them)",
        statistics.median(r[1].cpu_seconds / r[1].photos for r in rounds) * 1000,
        "ms",
    )
    report.figure(
        "CPU per photo, whole machine while the consumers ran (Postgres, RabbitMQ, the photo host, others)",
        statistics.median(r[1].machine_cpu_seconds / r[1].photos for r in rounds) * 1000,
        "ms",
    )
    # Each round's service figure over the bare figures around it, then the
    # median over rounds: a busy spell moves both sides of a ratio.
    report.goal(
        "consumer CPU per photo / bare (median of rounds)",
        statistics.median(r[1].cpu_seconds / r[1].photos / bare_cpu(r) for r in rounds),
        "≤",
        1.10,
    )
    report.goal(
        f"photos/s, make run's default ({default} consumers) / bare with one process per core (median of rounds)",
        statistics.median(r[1].per_second / bare_rate(r) for r in rounds),
        "≥",
        0.90,
    )
    report.figure(
        "photos/s, 1 consumer / bare in 1 process (informative, median of rounds)",
        statistics.median(r[3].per_second / r[4].per_second for r in rounds),
        digits=2,
    )
