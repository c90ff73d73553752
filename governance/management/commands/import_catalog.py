import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance import context

from ...bulk import formats, importer


class Command(BaseCommand):
    help = (
        "Import a catalog file (JSON, YAML, CSV or XLSX) in one transaction, as a user whose "
        "permissions apply, with a progress bar. Prints the counts, or every error."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--user", required=True, help="import as this username")
        parser.add_argument("--format", choices=formats.FORMATS, help="default: detected")
        parser.add_argument("--mode", choices=importer.MODES, default=importer.CREATE)
        parser.add_argument("--dry-run", action="store_true", help="check and count only")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {options['user']!r}")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no file {path}")
        with (
            tqdm(total=100, unit="%", file=self.stderr, disable=options["verbosity"] < 1) as bar,
            context.acting(user=user),
        ):

            def advance(percent, message):
                bar.set_postfix_str(message[:40])
                bar.update(int(percent) - bar.n)

            try:
                with open(path, "rb") as handle:
                    result = importer.bulk_import(
                        data=handle,
                        user=user,
                        format=options["format"],
                        mode=options["mode"],
                        dry_run=options["dry_run"],
                        progress=advance,
                    )
            except importer.ImportRejected as exc:
                bar.close()
                for item in exc.errors:  # every one, however many
                    self.stderr.write(importer.error_line(item))
                for name in exc.objects:
                    self.stderr.write(f"not allowed: {name}")
                raise CommandError(exc.detail) from None
        self.stdout.write(json.dumps(result["counts"]))
        self.stdout.write(
            f"{'checked (dry run)' if options['dry_run'] else 'imported'} {path.name} "
            f"as {result['format']} in {result['seconds']} s"
        )
