from django.db import migrations

# Django's icontains compares UPPER(column) LIKE UPPER(pattern) on PostgreSQL, so the
# trigram indexes that serve it are on UPPER(column); the typo match compares UPPER(name)
# too (trigrams ignore case), so the indexes on the bare columns go.
COLUMNS = [
    ("catalog_table", "name"),
    ("catalog_table", "description"),
    ("catalog_table", "comment"),
    ("catalog_field", "name"),
    ("catalog_field", "description"),
    ("catalog_field", "comment"),
]
UNUSED = [
    ("catalog_table", "name"),
    ("catalog_field", "name"),
    ("catalog_table", "description"),
    ("catalog_table", "comment"),
    ("catalog_field", "description"),
    ("catalog_field", "comment"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_{column}_upper_trgm "
            f"ON {table} USING gin ((UPPER({column})) gin_trgm_ops)"
        )
    for table, column in UNUSED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {table}_{column}_trgm")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {table}_{column}_upper_trgm")
    for table, column in UNUSED:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_{column}_trgm "
            f"ON {table} USING gin ({column} gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    """Trigram indexes that Django's case-insensitive lookups can use (PostgreSQL only)."""

    dependencies = [("catalog", "0003_search_indexes")]

    operations = [migrations.RunPython(create, drop)]
