import threading
from unittest import mock

import pytest
from celery.contrib.testing.worker import start_worker
from kombu.exceptions import OperationalError

from governance import jobs
from governance.celery import app
from governance.models import JobRun
from governance.testing import client_for, make_user
from sources.models import DataSource
from sources.tasks import check_connections


@app.task(base=jobs.JobTask, bind=True, name="governance.tests.flaky")
def flaky(self, job, fail_times):
    """Fails with a transient error `fail_times` times, then succeeds."""
    if job.attempts <= fail_times:
        raise jobs.TransientError(f"attempt {job.attempts} failed")
    job.set_progress(50, "half way")
    return {"attempts": job.attempts}


@app.task(base=jobs.JobTask, bind=True, name="governance.tests.broken")
def broken(self, job):
    raise ValueError("the input is wrong")


def sqlite_source(name="shop"):
    return DataSource.objects.create(name=name, kind="sqlite", database="missing.sqlite3")


def test_job_run_is_saved_before_the_task_and_succeeds(db, django_capture_on_commit_callbacks):
    source = sqlite_source()
    user = make_user("sam")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = jobs.enqueue(
            check_connections,
            name="Test connections",
            target=source,
            user=user,
            source_ids=[source.pk],
        )
        assert JobRun.objects.get(pk=job.pk).status == "pending"  # saved, not yet sent
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert (job.status, job.progress, job.attempts) == ("succeeded", 100, 1)
    assert job.result == {"tested": 1, "failed": 1, "results": {"shop": "not_found"}}
    assert job.started_at <= job.finished_at and job.duration >= 0
    assert job.arguments == {"source_ids": [source.pk]}


def test_a_failing_job_keeps_the_error_and_traceback(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.enqueue(broken, name="Broken")
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "the input is wrong"
    assert "ValueError" in job.traceback


def test_an_unreachable_broker_fails_the_job_clearly(db, django_capture_on_commit_callbacks):
    # Fake: the publish fails the way kombu fails when Redis is down.
    error = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    with (
        mock.patch.object(broken, "apply_async", side_effect=error),
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = jobs.enqueue(broken, name="Broken")
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "the task queue is unavailable: OperationalError"


def test_redelivered_finished_job_does_nothing(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.enqueue(flaky, name="Flaky", fail_times=0)
    job.refresh_from_db()
    assert job.status == "succeeded"
    flaky.apply(kwargs={"job_id": job.pk, "fail_times": 0})
    job.refresh_from_db()
    assert job.attempts == 1


def test_jobs_api_shows_own_jobs_and_jobs_on_visible_objects(db):
    from governance.services import grant

    mine, theirs = sqlite_source("mine"), sqlite_source("theirs")
    sam, olga = make_user("sam"), make_user("olga")
    grant(mine, olga, "viewer")
    own = JobRun.objects.create(name="own", task="t", user=sam)
    on_mine = JobRun.objects.create(name="on mine", task="t", target=mine)
    on_theirs = JobRun.objects.create(name="on theirs", task="t", target=theirs)
    ids = {r["id"] for r in client_for(sam).get("/api/v1/jobs/").json()["results"]}
    assert ids == {own.pk}
    ids = {r["id"] for r in client_for(olga).get("/api/v1/jobs/").json()["results"]}
    assert ids == {on_mine.pk}
    assert client_for(olga).get(f"/api/v1/jobs/{on_theirs.pk}/").status_code == 404
    body = client_for(olga).get(f"/api/v1/jobs/{on_mine.pk}").json()
    assert body["status"] == "pending" and body["target_type"] == "datasource"
    assert client_for(olga).delete(f"/api/v1/jobs/{on_mine.pk}/").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_job_through_the_broker():
    """End to end: the configured broker (Redis in CI, the embedded one locally) and a worker."""
    app.conf.task_always_eager = False
    source = sqlite_source()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        job = jobs.enqueue(flaky, name="Flaky", target=source, fail_times=0)
        done = threading.Event()
        for _ in range(200):
            job.refresh_from_db()
            if job.status in ("succeeded", "failed"):
                done.set()
                break
            done.wait(0.1)
    assert job.status == "succeeded", job.error
    assert job.result == {"attempts": 1}
    assert job.progress == 100
