from governance.celery import app
from governance.jobs import JobTask
from sources.models import DataSource

from . import services


@app.task(base=JobTask, bind=True, name="catalog.scan_source")
def scan_source(self, job, source_id):
    """Scan one source into the catalog; the counts become the job's result."""
    return services.source_scan(source=DataSource.objects.get(pk=source_id), job=job)


@app.task(name="catalog.scheduled_scan")
def scheduled_scan(source_id):
    """What beat sends on a source's cron schedule: a scan job like any other."""
    source = DataSource.objects.filter(pk=source_id, is_active=True).first()
    if source is not None:
        services.scan_enqueue(source=source)
