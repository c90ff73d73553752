from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from catalog.models import Table
from sources.models import DataSource

from ...inference import VIEW_KINDS, infer_views


class Command(BaseCommand):
    help = (
        "Infer table and column lineage again from the view definitions the catalog holds "
        "(a scan does it for new and changed views). Edges are stored as inferred and "
        "pending; edges already known, approved or rejected, stay as they are."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", help="the source's name or id")
        parser.add_argument("--all", action="store_true", help="every source")
        parser.add_argument("--batch", type=int, default=500, help="views per transaction")

    def handle(self, *args, source=None, all=False, batch=500, **options):
        if bool(source) == bool(all):
            raise CommandError("give a source name or id, or --all")
        sources = DataSource.objects.order_by("pk")
        if source:
            match = sources.filter(name=source)
            if not match and source.isdigit():
                match = sources.filter(pk=int(source))
            if not match:
                raise CommandError(f"no source named {source!r}")
            sources = match
        views = (
            Table.objects.filter(source__in=sources, kind__in=VIEW_KINDS, removed=False)
            .exclude(view_definition="")
            .order_by("source_id", "pk")
        )
        by_source = {}
        for source_id, view_id in views.values_list("source_id", "pk"):
            by_source.setdefault(source_id, []).append(view_id)
        totals = Counter()
        with tqdm(
            total=sum(map(len, by_source.values())),
            desc="views",
            unit="view",
            file=self.stderr,
            disable=options["verbosity"] < 1,
        ) as bar:
            for each in sources.filter(pk__in=by_source):
                ids = by_source[each.pk]
                for start in range(0, len(ids), batch):
                    chunk = list(Table.objects.filter(pk__in=ids[start : start + batch]))
                    with transaction.atomic():
                        totals.update(infer_views(each, chunk))
                    bar.update(len(chunk))
        self.stdout.write(
            f"{sum(map(len, by_source.values()))} views read: "
            f"{totals['lineage_edges']} new edges, {totals['lineage_field_edges']} new field "
            f"edges, {totals['lineage_edges_retired']} edges and "
            f"{totals['lineage_field_edges_retired']} field edges retired and "
            f"{totals['lineage_edges_reopened']} edges reopened because a definition no "
            f"longer reads them, {totals['lineage_errors']} definitions that could not be read"
        )
