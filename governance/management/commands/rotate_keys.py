from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance.crypto import count_secrets, rotate_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the newest key of ENCRYPTION_KEYS (the first). "
        "Run it after putting a new key in front; drop the old key only afterwards."
    )

    def handle(self, *args, **options):
        with tqdm(
            total=count_secrets(), unit="secret", disable=options["verbosity"] < 1, file=self.stderr
        ) as bar:
            counts, failures = rotate_all(progress=bar.update)
        for name, number in counts.items():
            self.stdout.write(f"{name}: {number}")
        if failures:
            for failure in failures:
                self.stderr.write(f"cannot decrypt with any configured key: {failure}")
            raise CommandError(
                f"{len(failures)} secret(s) could not be decrypted; add the key they were "
                "written with to ENCRYPTION_KEYS and run again"
            )
