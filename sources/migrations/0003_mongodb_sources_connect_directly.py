"""MongoDB sources always connect directly to the address the guard checked, so the
`direct_connection` option is gone: drop it from the options stored for them."""

from django.db import migrations


def drop_direct_connection(apps, schema_editor):
    DataSource = apps.get_model("sources", "DataSource")
    for source in DataSource.objects.filter(kind="mongodb"):
        if "direct_connection" in (source.options or {}):
            source.options.pop("direct_connection")
            source.save(update_fields=["options"])


class Migration(migrations.Migration):
    dependencies = [
        ("sources", "0002_datasource_last_scan_at_and_more"),
    ]

    operations = [
        migrations.RunPython(drop_direct_connection, migrations.RunPython.noop),
    ]
