from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import signals  # noqa: F401  (scan schedules follow their source)
        from .services import sync_builtin_rules

        post_migrate.connect(sync_builtin_rules, sender=self, dispatch_uid="catalog-builtin-rules")
