from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    """Trigram similarity for typo-tolerant catalog search (PostgreSQL only; a no-op elsewhere)."""

    dependencies = [("catalog", "0001_initial")]

    operations = [TrigramExtension()]
