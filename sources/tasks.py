from governance.celery import app
from governance.jobs import JobTask

from . import services
from .models import DataSource


@app.task(base=JobTask, bind=True, name="sources.check_connections")
def check_connections(self, job, source_ids):
    """Test the connection of each source, with progress; the outcome lands in the log."""
    sources = list(DataSource.objects.filter(pk__in=source_ids).order_by("name"))
    outcome = {}
    for index, source in enumerate(sources, start=1):
        result = services.datasource_test_connection(source=source, user=job.user)
        outcome[source.name] = "ok" if result.ok else result.error_kind
        job.set_progress(100 * index / len(sources), f"tested {index} of {len(sources)}")
    return {
        "tested": len(sources),
        "failed": sum(v != "ok" for v in outcome.values()),
        "results": outcome,
    }
