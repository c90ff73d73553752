from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance import jobs

from ... import projection
from ...tasks import rebuild_neo4j


class Command(BaseCommand):
    help = (
        "Rebuild the Neo4j lineage projection (NEO4J_BOLT_URL) from the database: every "
        "table, lineage edge and field edge, then remove what the database no longer holds."
    )

    def handle(self, *args, **options):
        if not projection.enabled():
            raise CommandError("NEO4J_BOLT_URL is not set: there is no Neo4j projection to build")
        with tqdm(
            total=100,
            desc="Neo4j lineage",
            unit="%",
            file=self.stderr,
            disable=options["verbosity"] < 1,
        ) as bar:

            def advance(percent, message):
                bar.set_postfix_str(message[:40])
                bar.update(percent - bar.n)

            job = jobs.run_now(
                rebuild_neo4j, name="Rebuild the Neo4j lineage projection", on_progress=advance
            )
        if job.status != "succeeded":
            raise CommandError(f"the rebuild failed: {job.error} (job #{job.pk})")
        # In a fixed order: PostgreSQL's jsonb does not keep the keys' order.
        summary = ", ".join(
            f"{key.replace('_', ' ')} {job.result[key]}"
            for key in ("tables", "edges", "field_edges")
            if key in job.result
        )
        self.stdout.write(f"Neo4j lineage projection rebuilt: {summary} (job #{job.pk})")
