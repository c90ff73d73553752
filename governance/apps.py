from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import signals  # noqa: F401  (change log, access log)
        from .roles import sync_roles

        post_migrate.connect(sync_roles, dispatch_uid="steward-sync-roles")
