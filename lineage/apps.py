from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"

    def ready(self):
        from catalog.signals import tables_added, views_changed
        from governance.bulk import sections

        from . import inference, openlineage, signals  # noqa: F401  (signals connects its receivers)
        from .bulk import LineageSection

        # Scans announce new and redefined views; their definitions become inferred edges.
        views_changed.connect(inference.on_views_changed, dispatch_uid="lineage_views_changed")
        # New tables take over the external tables OpenLineage made for them before the scan.
        tables_added.connect(
            openlineage.adopt_external_tables, dispatch_uid="lineage_adopt_external_tables"
        )
        # Lineage edges are a section of the import/export bundle, after the catalog's.
        sections.register(LineageSection)
