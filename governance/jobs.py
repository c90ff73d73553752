"""The one job runner: a JobRun row is saved first, the task is enqueued when the
transaction commits, and the task keeps status, progress, attempts and errors on the row.

    @app.task(base=JobTask, bind=True)
    def test_sources(self, job, source_ids): ...        # job is the JobRun

    job = jobs.enqueue(test_sources, name="Test connections", target=source, source_ids=[...])

Tasks receive ids, never secrets; arguments travel as JSON.

A worker killed in the middle of a task (kill -9, out of memory, a lost host) cannot say
so, so a running run carries a heartbeat, and sweep() (beat sends it every minute) ends the
runs whose heartbeat stopped: each is marked failed and sent again as a new run while the
task has attempts left. The broker delivers a message at least once (Redis again after its
visibility timeout), so a delivery runs a job only if it finds the run pending and claims it
in one conditional update; any other delivery of that message does nothing.
"""

import contextvars
import logging
import threading
import traceback
from contextlib import contextmanager
from datetime import timedelta

from celery import Task, current_app
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connections, models, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from . import context
from .models import JobRun

logger = logging.getLogger(__name__)
# A command running a job in-process listens to its progress here (to draw a bar).
progress_listener = contextvars.ContextVar("steward_job_progress", default=None)


class TransientError(Exception):
    """A failure worth retrying (a source briefly unreachable, a lock timeout)."""


class Superseded(Exception):
    """The sweeper ended this run (its worker was taken for dead) and retried it as another."""


class JobTask(Task):
    abstract = True
    typing = False  # the worker passes job_id; run() receives the JobRun instead
    acks_late = True
    reject_on_worker_lost = True
    max_retries = 3  # transient errors, and the sweeper's retries of a dead worker's run
    retry_delay = 10  # seconds, doubled at each attempt

    def __call__(self, job_id, **arguments):
        job = _claim(job_id, self.name)
        if job is None:
            return None
        with context.acting(user=job.user, request_id=f"job-{job.pk}"), _heartbeat(job):
            try:
                result = self.run(job, **arguments)
            except Superseded:
                logger.warning("job run %s was retried as another run; nothing committed", job.pk)
                return None
            except TransientError as exc:
                if self.request.retries < self.max_retries and not self.request.is_eager:
                    self._finish(job, JobRun.Status.PENDING, error=f"retrying: {exc}")
                    raise self.retry(
                        exc=exc, countdown=self.retry_delay * 2**self.request.retries
                    ) from exc
                self._finish(job, JobRun.Status.FAILED, error=str(exc), tb=traceback.format_exc())
                return None
            except Exception as exc:
                logger.exception("job run %s failed", job.pk)
                self._finish(
                    job,
                    JobRun.Status.FAILED,
                    error=str(exc) or type(exc).__name__,
                    tb=traceback.format_exc(),
                )
                return None
        job.progress = 100
        self._finish(job, JobRun.Status.SUCCEEDED, result=result)
        return result

    @staticmethod
    def _finish(job, status, *, error="", tb="", result=None):
        """Record the outcome, unless the sweeper has ended the run meanwhile."""
        job.status, job.error, job.traceback, job.result = status, error[:5000], tb, result
        job.finished_at = None if status == JobRun.Status.PENDING else timezone.now()
        recorded = JobRun.objects.filter(pk=job.pk, status=JobRun.Status.RUNNING).update(
            status=job.status,
            error=job.error,
            traceback=job.traceback,
            result=job.result,
            finished_at=job.finished_at,
            progress=job.progress,
        )
        if not recorded:
            logger.warning("job run %s was retried as another run; %s not recorded", job.pk, status)


def _claim(job_id, task_name):
    """Start the run if it is pending; None when this delivery has nothing to do."""
    now = timezone.now()
    claimed = JobRun.objects.filter(pk=job_id, status=JobRun.Status.PENDING).update(
        status=JobRun.Status.RUNNING,
        attempts=models.F("attempts") + 1,
        started_at=Coalesce("started_at", models.Value(now, models.DateTimeField())),
        finished_at=None,
        heartbeat_at=now,
    )
    job = JobRun.objects.filter(pk=job_id).first()
    if job is None:
        logger.warning("job run %s no longer exists; task %s skipped", job_id, task_name)
    elif not claimed:
        logger.info(
            "job run %s is %s; this delivery of %s does nothing", job_id, job.status, task_name
        )
    return job if claimed else None


@contextmanager
def _heartbeat(job):
    """Stamp the run's heartbeat every JOB_HEARTBEAT_INTERVAL seconds while the task runs.

    A thread rather than progress updates alone: it keeps beating while the task waits in a
    driver call or a long query, when no progress is reported. It lives and dies with the
    process running the task, which is what the sweeper needs to know. (set_progress stamps
    the heartbeat too, for free: it keeps it fresh when this thread's write has to wait for
    the task's own transaction, as on SQLite with its single writer.)"""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(settings.JOB_HEARTBEAT_INTERVAL):
                try:
                    JobRun.objects.filter(pk=job.pk, status=JobRun.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError as exc:  # the next beat tries again
                    logger.warning("job run %s: heartbeat not recorded: %s", job.pk, exc)
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=beat, name=f"job-{job.pk}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def hold(job):
    """Inside the transaction that commits a job's result: lock the run until that commit and
    raise Superseded if the sweeper has ended it, so that a worker taken for dead that wakes
    up commits nothing beside the run that replaced it."""
    running = JobRun.objects.select_for_update().filter(pk=job.pk, status=JobRun.Status.RUNNING)
    if not running.values_list("pk", flat=True):
        raise Superseded(f"job run {job.pk} was retried as another run")


def sweep(*, stalled_after=None):
    """End the running runs whose heartbeat is older than JOB_STALLED_AFTER seconds: each is
    marked failed and, while its task has attempts left, sent again as a new run. Returns
    the runs ended."""
    if stalled_after is None:
        stalled_after = settings.JOB_STALLED_AFTER
    cutoff = timezone.now() - timedelta(seconds=stalled_after)
    ended = []
    for pk in JobRun.objects.stalled(cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            # Another sweeper, or a transaction that holds the run, has it: leave it.
            stalled = JobRun.objects.stalled(cutoff).select_for_update(skip_locked=True)
            job = stalled.filter(pk=pk).first()
            if job is not None:
                _end_stalled(job)
                ended.append(job)
    return ended


def _end_stalled(job):
    last_seen = timezone.localtime(job.heartbeat_at or job.started_at)
    error = f"the worker stopped responding (no heartbeat since {last_seen:%Y-%m-%d %H:%M:%S %Z})"
    task = current_app.tasks.get(job.task)
    if task is not None and job.attempts <= task.max_retries:
        job.retried_as = JobRun.objects.create(
            name=job.name,
            task=job.task,
            user=job.user,
            target_type=job.target_type,
            target_id=job.target_id,
            target_repr=job.target_repr,
            arguments=job.arguments,
            attempts=job.attempts,
        )
        retry = job.retried_as
        transaction.on_commit(lambda: _send(task, retry, retry.arguments))
        error += f"; retried as job run {retry.pk}"
    else:
        error += "; no attempts left"
    job.status, job.error, job.finished_at = JobRun.Status.FAILED, error, timezone.now()
    job.save(update_fields=["status", "error", "finished_at", "retried_as"])
    logger.warning("job run %s: %s", job.pk, error)


def _create(task, name, target, user, arguments):
    return JobRun.objects.create(
        name=name,
        task=task.name,
        user=user if getattr(user, "pk", None) else None,
        target_type=ContentType.objects.get_for_model(type(target)) if target is not None else None,
        target_id=target.pk if target is not None else None,
        target_repr=str(target)[:200] if target is not None else "",
        arguments=arguments,
    )


def enqueue(task, *, name, target=None, user=None, **arguments):
    """Save the job run and send the task once the surrounding transaction commits."""
    job = _create(task, name, target, user, arguments)
    transaction.on_commit(lambda: _send(task, job, arguments))
    return job


def run_now(task, *, name, target=None, user=None, on_progress=None, **arguments):
    """Run a job in this process (commands), tracked on a JobRun like a queued one."""
    job = _create(task, name, target, user, arguments)
    token = progress_listener.set(on_progress)
    try:
        task.apply(kwargs={"job_id": job.pk, **arguments}, task_id=f"job-{job.pk}")
    except KeyboardInterrupt:  # the operator stopped it: not a dead worker to retry
        JobRun.objects.filter(pk=job.pk, status=JobRun.Status.RUNNING).update(
            status=JobRun.Status.FAILED, error="interrupted", finished_at=timezone.now()
        )
        raise
    finally:
        progress_listener.reset(token)
    job.refresh_from_db()
    return job


def _send(task, job, arguments):
    try:
        task.apply_async(kwargs={"job_id": job.pk, **arguments}, task_id=f"job-{job.pk}")
    except (KombuOperationalError, OSError) as exc:  # the broker is down: say so on the row
        logger.exception("could not enqueue job run %s", job.pk)
        JobRun.objects.filter(pk=job.pk).update(
            status=JobRun.Status.FAILED,
            error=f"the task queue is unavailable: {type(exc).__name__}",
            finished_at=timezone.now(),
        )
