"""The one job runner: a JobRun row is saved first, the task is enqueued when the
transaction commits, and the task keeps status, progress, attempts and errors on the row.

    @app.task(base=JobTask, bind=True)
    def test_sources(self, job, source_ids): ...        # job is the JobRun

    job = jobs.enqueue(test_sources, name="Test connections", target=source, source_ids=[...])

Tasks receive ids, never secrets; arguments travel as JSON.
"""

import contextvars
import logging
import traceback

from celery import Task
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from . import context
from .models import JobRun

logger = logging.getLogger(__name__)
# A command running a job in-process listens to its progress here (to draw a bar).
progress_listener = contextvars.ContextVar("steward_job_progress", default=None)


class TransientError(Exception):
    """A failure worth retrying (a source briefly unreachable, a lock timeout)."""


class JobTask(Task):
    abstract = True
    typing = False  # the worker passes job_id; run() receives the JobRun instead
    acks_late = True
    reject_on_worker_lost = True
    max_retries = 3
    retry_delay = 10  # seconds, doubled at each attempt

    def __call__(self, job_id, **arguments):
        job = JobRun.objects.filter(pk=job_id).first()
        if job is None:
            logger.warning("job run %s no longer exists; task %s skipped", job_id, self.name)
            return None
        if job.status == JobRun.Status.SUCCEEDED:
            return job.result  # redelivered after it already finished: nothing to do again
        now = timezone.now()
        job.status, job.attempts, job.started_at, job.finished_at = (
            JobRun.Status.RUNNING,
            job.attempts + 1,
            job.started_at or now,
            None,
        )
        job.save(update_fields=["status", "attempts", "started_at", "finished_at"])
        with context.acting(user=job.user, request_id=f"job-{job.pk}"):
            try:
                result = self.run(job, **arguments)
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
        job.status, job.error, job.traceback, job.result = status, error[:5000], tb, result
        job.finished_at = None if status == JobRun.Status.PENDING else timezone.now()
        job.save(
            update_fields=["status", "error", "traceback", "result", "finished_at", "progress"]
        )


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
