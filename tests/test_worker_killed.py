"""A Celery worker killed with kill -9 in the middle of a scan, for real: a worker process on
Redis scans a PostgreSQL source while this test holds a lock the scan waits for; the worker's
main process is killed, the sweeper ends the run and retries it, and a new worker finishes it.

Needs REDIS_URL (the broker both processes share) and a metadata database another process can
open (PostgreSQL, as in CI, or an SQLite file); skipped with the reason otherwise.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from catalog.models import Table
from catalog.services import scan_enqueue
from governance import jobs
from governance.celery import app
from governance.models import JobRun
from sources.models import DataSource

ROOT = Path(settings.BASE_DIR)
STALLED_AFTER = 2  # seconds; the worker beats every 0.5 s


def redis_answers():
    try:
        return bool(settings.REDIS_URL) and redis.Redis.from_url(settings.REDIS_URL).ping()
    except redis.RedisError:
        return False


pytestmark = [
    pytest.mark.skipif(
        not redis_answers(), reason="needs REDIS_URL with a Redis answering: the shared broker"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def metadata_url():
    """The test database, as a URL a worker process can open."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        )
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():
        return f"sqlite:///{db['NAME']}"
    pytest.skip("the metadata database must be one another process can open")


@pytest.fixture
def pg_source():
    name = f"steward_killed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id integer PRIMARY KEY, total numeric(10, 2))")
    yield DataSource.objects.create(
        name="Orders", kind="postgresql", host="127.0.0.1", port=5432, database=name,
        username="postgres",
    )  # fmt: skip
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Worker:
    """`celery -A governance worker` in its own process (prefork, one pool child)."""

    def __init__(self, tmp_path, name, metadata_url):
        self.log = tmp_path / f"{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": metadata_url,
            "JOB_HEARTBEAT_INTERVAL": "0.5",
            "JOB_STALLED_AFTER": str(STALLED_AFTER),
            "SOURCE_HOSTS_ALLOW": "127.0.0.1",
            "SECRET_KEY": settings.SECRET_KEY,
            "ENCRYPTION_KEYS": ",".join(settings.ENCRYPTION_KEYS),
        }
        command = [sys.executable, "-m", "celery", "-A", "governance", "worker"]
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [*command, "--concurrency=1", f"--hostname={name}@%h", "--loglevel=INFO"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def wait_for(condition, what, worker, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.process.poll() is None, f"worker exited: {worker.log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: {worker.log.read_text()[-3000:]}"
        time.sleep(0.1)


def scan_waits_on_the_lock(database):
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'steward' AND wait_event_type = 'Lock'"
        ).fetchone()
    return row[0] == 1


def redeliver_unacknowledged():
    """What the Redis transport does to unacknowledged messages after the visibility
    timeout, done now."""
    with app.connection_for_write(transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible(num=100)


def test_a_scan_whose_worker_is_killed_is_failed_retried_and_finished(
    metadata_url, pg_source, tmp_path
):
    app.conf.task_always_eager = False  # through Redis to the worker processes
    lock = psycopg.connect(f"host=127.0.0.1 user=postgres dbname={pg_source.database}")
    lock.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")  # the scan waits for it
    first = Worker(tmp_path, "first", metadata_url)
    try:
        job, queued = scan_enqueue(source=pg_source)
        assert queued
        wait_for(
            lambda: scan_waits_on_the_lock(pg_source.database), "the scan never started", first
        )
        job.refresh_from_db()
        assert job.status == "running" and job.attempts == 1

        first.process.send_signal(signal.SIGKILL)  # the main process; its pool child dies too
        first.process.wait(timeout=30)
        time.sleep(STALLED_AFTER + 1)
        assert scan_enqueue(source=pg_source) == (job, False)  # not swept yet: still "running"
        assert jobs.sweep(stalled_after=STALLED_AFTER) == [job]
        job.refresh_from_db()
        retry = job.retried_as
        assert job.status == "failed" and "the worker stopped responding" in job.error
        assert job.error.endswith(f"; retried as job run {retry.pk}")
        assert (retry.status, retry.attempts) == ("pending", 1)
        lock.rollback()

        # A scan request gets the retry that is on its way, not the dead run.
        assert scan_enqueue(source=pg_source) == (retry, False)
        second = Worker(tmp_path, "second", metadata_url)
        try:
            wait_for(
                lambda: JobRun.objects.get(pk=retry.pk).status in ("succeeded", "failed"),
                "the retry did not finish",
                second,
            )
            retry.refresh_from_db()
            assert (retry.status, retry.attempts) == ("succeeded", 2), retry.error
            assert retry.result["tables_added"] == 1
            assert list(Table.objects.filter(source=pg_source).values_list("name", flat=True)) == [
                "orders"
            ]

            # The dead worker's message comes back, as Redis hands out an unacknowledged
            # message again once its visibility timeout (65 minutes) has passed: it finds its
            # run failed and retried, so nothing runs and nothing changes.
            redeliver_unacknowledged()
            wait_for(
                lambda: f"job run {job.pk} is failed" in second.log.read_text(),
                "the redelivered message was not consumed",
                second,
            )
            job.refresh_from_db()
            assert (job.status, job.attempts, job.retried_as_id) == ("failed", 1, retry.pk)

            # Nothing is left waiting or running: the next request scans again.
            rescan, queued = scan_enqueue(source=pg_source)
            assert queued and rescan.pk not in (job.pk, retry.pk)
            wait_for(
                lambda: JobRun.objects.get(pk=rescan.pk).status == "succeeded",
                "the rescan did not succeed",
                second,
            )
        finally:
            second.stop()
        assert Table.objects.filter(source=pg_source).count() == 1
    finally:
        lock.close()
        if first.process.poll() is None:
            first.process.kill()
