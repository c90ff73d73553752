from django.db import migrations

INDEXES = [
    ("catalog_table", "name"),
    ("catalog_table", "description"),
    ("catalog_table", "comment"),
    ("catalog_field", "name"),
    ("catalog_field", "description"),
    ("catalog_field", "comment"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_{column}_trgm "
            f"ON {table} USING gin ({column} gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {table}_{column}_trgm")


class Migration(migrations.Migration):
    """Trigram indexes for substring and typo-tolerant search (PostgreSQL only)."""

    dependencies = [("catalog", "0002_trigram")]

    operations = [migrations.RunPython(create, drop)]
