import contextlib
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from governance import context

from ...bulk import exporter, formats


class Command(BaseCommand):
    help = (
        "Export the catalog a user may view (tables, fields, tags, owners, classification "
        "decisions, lineage) as JSON, YAML, CSV or XLSX, with a progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="export what this username may view")
        parser.add_argument("--format", choices=formats.FORMATS, default="json")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")
        parser.add_argument("--source", help="only this source's tables (by name)")
        parser.add_argument("--schema", help="only tables in this schema")
        parser.add_argument("--tag", help='only tables carrying this "Category.Name" tag')
        parser.add_argument("--updated-since", help="only tables updated since (ISO 8601)")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {options['user']!r}")
        since = options["updated_since"]
        if since and parse_datetime(since) is None:
            raise CommandError("--updated-since: expected an ISO 8601 date-time")
        if options["format"] == "xlsx" and not options["output"]:
            raise CommandError("XLSX needs --output")
        filters = {
            "source": options["source"],
            "schema": options["schema"],
            "tag": options["tag"],
            "updated_since": parse_datetime(since) if since else None,
        }
        bar = tqdm(unit="tables", file=self.stderr, disable=options["verbosity"] < 1)

        def advance(done, total):
            bar.total = total
            bar.update(done - bar.n)

        with context.acting(user=user):
            try:
                export = exporter.bulk_export(
                    user=user, format=options["format"], filters=filters, progress=advance
                )
            except exporter.ExportRefused as exc:
                raise CommandError(str(exc)) from None
            with contextlib.ExitStack() as stack:
                target = (
                    stack.enter_context(open(options["output"], "wb"))  # noqa: SIM115
                    if options["output"]
                    else sys.stdout.buffer
                )
                for chunk in export.chunks:
                    target.write(chunk)
        bar.close()
        self.stderr.write(f"exported {export.tables} tables as {options['format']}")
