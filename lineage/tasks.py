"""Keeping the optional Neo4j projection in step with the database.

Each committed lineage write sends `sync_neo4j` with the edge ids it touched. That task is
a plain Celery task rather than a JobRun: it runs on every approval and every scan that
infers lineage, is idempotent and cheap, and `manage.py sync_lineage_neo4j` (a JobRun with
progress, `rebuild_neo4j`) repairs anything a lost message left behind. Failures are
retried with backoff and logged.
"""

import logging

from celery.utils.time import get_exponential_backoff_interval
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError

from governance.celery import app
from governance.jobs import JobTask

from . import projection

logger = logging.getLogger(__name__)
MESSAGE_SIZE = 5000  # edge ids per message


@app.task(name="lineage.sync_neo4j", bind=True, acks_late=True, max_retries=5)
def sync_neo4j(self, edge_ids, table_ids=()):
    """Refresh these edges (and remove these deleted tables) in the Neo4j projection. While
    the server is unavailable it is tried again, after 10 s, 20 s, 40 s... with jitter."""
    if not projection.enabled():
        return None
    from . import neo4j  # only where the projection is on (see lineage.projection)

    try:
        return neo4j.sync(edge_ids=edge_ids, table_ids=table_ids)
    except neo4j.RETRYABLE as exc:
        delay = get_exponential_backoff_interval(10, self.request.retries, 600, full_jitter=True)
        raise self.retry(exc=exc, countdown=delay) from exc


@app.task(base=JobTask, bind=True, name="lineage.rebuild_neo4j")
def rebuild_neo4j(self, job):
    """Rebuild the whole projection; the counts become the job's result."""
    from . import neo4j

    return neo4j.sync(progress=job.set_progress)


def neo4j_sync_on_commit(edge_ids=(), table_ids=()):
    """Send sync_neo4j for these ids once the current transaction commits; nothing at all
    when NEO4J_BOLT_URL is not set.

    Ids gather per atomic block, sent together when it commits: deleting a table deletes
    each of its edges one by one, and that is one message rather than one per edge. The
    batch lives on the innermost block, so a savepoint rolled back drops its ids (and its
    commit callback) together."""
    if not projection.enabled():
        return
    edge_ids = {int(i) for i in edge_ids}
    table_ids = {int(i) for i in table_ids}
    if not (edge_ids or table_ids):
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _send(edge_ids, table_ids)
        return
    block = connection.atomic_blocks[-1]
    batch = getattr(block, "neo4j_batch", None)
    if batch is None:
        batch = block.neo4j_batch = (set(), set())
        transaction.on_commit(lambda: _send(*batch))
    batch[0].update(edge_ids)
    batch[1].update(table_ids)


def _send(edge_ids, table_ids):
    edge_ids, table_ids = sorted(edge_ids), sorted(table_ids)
    chunks = [edge_ids[i : i + MESSAGE_SIZE] for i in range(0, len(edge_ids), MESSAGE_SIZE)]
    for index, chunk in enumerate(chunks or [[]]):
        try:
            sync_neo4j.delay(edge_ids=chunk, table_ids=table_ids if index == 0 else [])
        except (KombuOperationalError, OSError):
            logger.exception(
                "could not queue the Neo4j lineage sync of %d edge(s); "
                "run manage.py sync_lineage_neo4j to repair the projection",
                len(chunk),
            )
