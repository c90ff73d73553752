from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def import_models(self):
        super().import_models()
        from .bulk import models  # noqa: F401  (the proxy behind the admin's import page)

    def ready(self):
        from django.db.models.signals import post_migrate

        from governance.bulk import sections

        from . import signals  # noqa: F401  (scan schedules follow their source)
        from .bulk import admin  # noqa: F401  (the bulk import page and export actions)
        from .bulk.section import CatalogSection
        from .services import sync_builtin_rules

        post_migrate.connect(sync_builtin_rules, sender=self, dispatch_uid="catalog-builtin-rules")
        sections.register(CatalogSection)
