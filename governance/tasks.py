from governance import jobs
from governance.celery import app
from governance.jobs import JobTask


@app.task(name="governance.sweep_job_runs")
def sweep_job_runs():
    """Beat sends this every minute: end the runs whose worker died, and retry them."""
    return [job.pk for job in jobs.sweep()]


@app.task(base=JobTask, bind=True, name="governance.import_bundle")
def import_bundle(self, job, path, format=None, mode="create", dry_run=False):
    """Import a large bundle file (kept under VAR_DIR/imports until done); counts result."""
    from .bulk.importer import bulk_import_file

    return bulk_import_file(
        path=path,
        user=job.user,
        format=format,
        mode=mode,
        dry_run=dry_run,
        progress=job.set_progress,
    )
