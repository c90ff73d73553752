from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance import jobs
from sources.models import DataSource

from ...tasks import scan_source


class Command(BaseCommand):
    help = "Scan sources into the catalog now, in this process, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("sources", nargs="*", help="source names or ids")
        parser.add_argument("--all", action="store_true", help="every active source")

    def handle(self, *args, **options):
        if options["all"]:
            sources = list(DataSource.objects.filter(is_active=True))
        elif options["sources"]:
            sources = [self._source(ref) for ref in options["sources"]]
        else:
            raise CommandError("name the sources to scan, or use --all")
        failed = 0
        for source in sources:
            with tqdm(
                total=100,
                desc=source.name,
                unit="%",
                file=self.stderr,
                disable=options["verbosity"] < 1,
            ) as bar:

                def advance(percent, message, bar=bar):
                    bar.set_postfix_str(message[:40])
                    bar.update(percent - bar.n)

                job = jobs.run_now(
                    scan_source,
                    name="Scan",
                    target=source,
                    on_progress=advance,
                    source_id=source.pk,
                )
            if job.status == "succeeded":
                summary = ", ".join(f"{k} {v}" for k, v in job.result.items() if v)
                self.stdout.write(
                    f"{source.name}: {summary or 'no changes'} "
                    f"({job.duration:.1f} s, job #{job.pk})"
                )
            else:
                failed += 1
                self.stderr.write(f"{source.name}: failed: {job.error} (job #{job.pk})")
        if failed:
            raise CommandError(f"{failed} scan(s) failed")

    def _source(self, ref):
        source = DataSource.objects.filter(name=ref).first() or (
            DataSource.objects.filter(pk=ref).first() if ref.isdigit() else None
        )
        if source is None:
            raise CommandError(f"no source named {ref!r}")
        return source
