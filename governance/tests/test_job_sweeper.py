"""Heartbeats of running job runs, and the sweeper that ends the runs whose worker died.

The worker killed for real (kill -9 of its main process) is in tests/test_worker_killed.py.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from catalog.models import Table
from catalog.services import scan_enqueue
from catalog.tasks import scan_source
from governance import jobs
from governance.celery import app
from governance.models import JobRun
from governance.tasks import sweep_job_runs
from governance.testing import client_for, make_user
from sources.demo import build_shop_database
from sources.models import DataSource


@app.task(base=jobs.JobTask, bind=True, name="governance.tests.answer")
def answer(self, job, value):
    return {"value": value, "attempts": job.attempts}


@app.task(base=jobs.JobTask, bind=True, name="governance.tests.watch_heartbeat")
def watch_heartbeat(self, job, seconds):
    """Reads its own heartbeat from the database while it works for `seconds`."""
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(JobRun.objects.get(pk=job.pk).heartbeat_at)
        time.sleep(0.02)
    return {"heartbeats": len(seen)}


@app.task(base=jobs.JobTask, bind=True, name="governance.tests.taken_for_dead")
def taken_for_dead(self, job):
    """Stalls long enough for the sweeper to end its run, then finishes as if nothing happened."""
    stall(job.pk)
    jobs.sweep()
    return {"finished": True}


@app.task(base=jobs.JobTask, bind=True, name="governance.tests.interrupted")
def interrupted(self, job):
    raise KeyboardInterrupt


def stall(pk, minutes=10):
    """What a run looks like after its worker has been silent for `minutes`."""
    JobRun.objects.filter(pk=pk).update(heartbeat_at=timezone.now() - timedelta(minutes=minutes))


def running(task, *, attempts=1, silent_for=None, **extra):
    job = JobRun.objects.create(
        name=task.name,
        task=task.name,
        status="running",
        attempts=attempts,
        started_at=timezone.now() - timedelta(hours=1),
        arguments={"value": 7},
        **extra,
    )
    if silent_for is not None:
        stall(job.pk, silent_for)
    return job


def shop_source(settings, name="shop"):
    build_shop_database(f"{settings.SOURCE_SQLITE_DIR}/{name}.sqlite3", customers=5)
    return DataSource.objects.create(name=name, kind="sqlite", database=f"{name}.sqlite3")


def test_the_sweeper_ends_only_running_runs_whose_heartbeat_stopped(
    db, django_capture_on_commit_callbacks
):
    sam = make_user("sam")
    fresh = running(answer, silent_for=0.5, user=sam)
    silent = running(answer, silent_for=10, user=sam)
    never_beat = running(answer)  # heartbeat_at empty: started an hour ago, never seen since
    exhausted = running(answer, attempts=4, silent_for=10)
    unknown_task = running(answer, silent_for=10)
    JobRun.objects.filter(pk=unknown_task.pk).update(task="governance.tests.removed")
    untouched = [fresh]
    for status in ("pending", "succeeded", "failed"):
        untouched.append(JobRun.objects.create(name="old", task=answer.name, status=status))
        stall(untouched[-1].pk, 60)
    state = ("status", "error", "finished_at", "heartbeat_at", "retried_as")
    before = list(JobRun.objects.filter(pk__in=[j.pk for j in untouched]).values(*state))

    with django_capture_on_commit_callbacks() as sends:
        ended = jobs.sweep()

    assert {job.pk for job in ended} == {silent.pk, never_beat.pk, exhausted.pk, unknown_task.pk}
    for job in (silent, never_beat, exhausted, unknown_task):
        job.refresh_from_db()
        assert job.status == "failed" and job.finished_at is not None
        assert job.error.startswith("the worker stopped responding (no heartbeat since ")
    for job in (exhausted, unknown_task):
        assert job.error.endswith(" UTC); no attempts left") and job.retried_as is None
    retries = []
    for job in (silent, never_beat):
        retry = job.retried_as
        assert job.error.endswith(f"; retried as job run {retry.pk}")
        assert (retry.status, retry.task, retry.arguments) == ("pending", answer.name, {"value": 7})
        assert (retry.user, retry.attempts, retry.retried_as) == (job.user, 1, None)
        retries.append(retry)
    assert JobRun.objects.count() == len(ended) + len(untouched) + len(retries)
    assert list(JobRun.objects.filter(pk__in=[j.pk for j in untouched]).values(*state)) == before

    # The API shows the dead run, what became of it, and the retry it hands over to.
    body = client_for(sam).get(f"/api/v1/jobs/{silent.pk}/").json()
    assert (body["status"], body["retried_as"]) == ("failed", silent.retried_as_id)
    assert body["heartbeat_at"] is not None and "stopped responding" in body["error"]

    # Each retry is sent when the sweep commits, and runs as the next attempt.
    assert len(sends) == 2
    for send in sends:
        send()
    for retry in retries:
        retry.refresh_from_db()
        assert (retry.status, retry.result) == ("succeeded", {"value": 7, "attempts": 2})
    assert jobs.sweep() == []


def test_a_redelivered_message_does_nothing_once_its_run_is_retried_or_running(
    db, django_capture_on_commit_callbacks
):
    dead = running(answer, silent_for=10)
    with django_capture_on_commit_callbacks():
        jobs.sweep()
    dead.refresh_from_db()
    retry = dead.retried_as

    # The broker hands the dead worker's message out again (after its visibility timeout).
    answer.apply(kwargs={"job_id": dead.pk, "value": 7}, task_id=f"job-{dead.pk}")
    after = JobRun.objects.get(pk=dead.pk)
    assert (after.status, after.attempts, after.error) == ("failed", 1, dead.error)
    assert after.result is None

    # The retry's message, twice: the second copy finds it finished and leaves it.
    answer.apply(kwargs={"job_id": retry.pk, "value": 7}, task_id=f"job-{retry.pk}")
    answer.apply(kwargs={"job_id": retry.pk, "value": 8}, task_id=f"job-{retry.pk}")
    retry.refresh_from_db()
    assert (retry.status, retry.attempts, retry.result) == (
        "succeeded",
        2,
        {"value": 7, "attempts": 2},
    )

    # A copy delivered while another worker runs the job leaves it to that worker.
    alive = running(answer, silent_for=0)
    answer.apply(kwargs={"job_id": alive.pk, "value": 7}, task_id=f"job-{alive.pk}")
    alive.refresh_from_db()
    assert (alive.status, alive.attempts, alive.result) == ("running", 1, None)


def test_a_worker_taken_for_dead_records_nothing_when_it_wakes_up(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        job = jobs.run_now(taken_for_dead, name="Stalls")
    assert job.status == "failed" and "stopped responding" in job.error
    assert job.result is None and job.retried_as.status == "pending"


def test_a_scan_taken_for_dead_commits_nothing_and_its_retry_scans_once(
    db, settings, django_capture_on_commit_callbacks
):
    source = shop_source(settings)
    stalled = []

    def stall_once(percent, message):  # the worker goes quiet in the middle of reading
        if not stalled:
            stalled.append(JobRun.objects.get(status="running"))
            stall(stalled[0].pk)
            assert jobs.sweep() == stalled

    with django_capture_on_commit_callbacks() as sends:
        job = jobs.run_now(
            scan_source, name="Scan", target=source, source_id=source.pk, on_progress=stall_once
        )
    assert job.status == "failed" and job.retried_as is not None
    assert not Table.objects.filter(source=source).exists()
    assert scan_enqueue(source=source) == (job.retried_as, False)  # no phantom: the retry

    for send in sends:
        send()
    retry = JobRun.objects.get(pk=job.retried_as_id)
    assert retry.status == "succeeded", retry.error
    assert retry.result["tables_added"] == Table.objects.filter(source=source).count() > 0
    assert scan_enqueue(source=source)[1] is True  # nothing waiting or running: a new scan


def test_the_heartbeat_beats_while_the_task_runs(transactional_db, settings):
    settings.JOB_HEARTBEAT_INTERVAL = 0.05
    job = jobs.run_now(watch_heartbeat, name="Watch", seconds=0.6)
    assert job.status == "succeeded", job.error
    assert job.result["heartbeats"] >= 4  # the claim's stamp, then the thread's


def test_progress_stamps_the_heartbeat(db):
    job = running(answer, silent_for=10)
    job.set_progress(50, "half way")
    job.refresh_from_db()
    assert timezone.now() - job.heartbeat_at < timedelta(seconds=5)
    assert jobs.sweep() == []


def test_a_command_stopped_with_ctrl_c_fails_its_run_instead_of_leaving_it_running(db):
    with pytest.raises(KeyboardInterrupt):
        jobs.run_now(interrupted, name="Interrupted")
    job = JobRun.objects.get(name="Interrupted")
    assert (job.status, job.error) == ("failed", "interrupted")


def test_beat_installs_the_sweeper_every_minute(transactional_db):
    from django_celery_beat.schedulers import DatabaseScheduler

    assert not PeriodicTask.objects.filter(task="governance.sweep_job_runs").exists()
    DatabaseScheduler(app=app)  # what `celery beat` does when it starts
    entry = PeriodicTask.objects.get(task="governance.sweep_job_runs")
    assert entry.enabled and (entry.interval.every, entry.interval.period) == (60, "seconds")
    stalled = running(answer, silent_for=10)
    assert entry.task == sweep_job_runs.name
    assert sweep_job_runs.delay().get() == [stalled.pk]


def test_the_admin_shows_a_swept_run_and_its_retry(db, client, django_capture_on_commit_callbacks):
    dead = running(answer, silent_for=10)
    with django_capture_on_commit_callbacks():
        jobs.sweep()
    dead.refresh_from_db()
    client.force_login(make_user("root", superuser=True))
    page = client.get(f"/admin/governance/jobrun/{dead.pk}/change/").content.decode()
    assert "the worker stopped responding" in page
    assert f"/admin/governance/jobrun/{dead.retried_as_id}/change/" in page
    listing = client.get("/admin/governance/jobrun/").content.decode()
    assert listing.count('<progress max="100"') == 2
