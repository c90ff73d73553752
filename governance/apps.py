from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StewardAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Steward's site (lockout messages, second factor)."""

    default = False  # GovernanceConfig stays this module's default
    default_site = "governance.adminsite.StewardAdminSite"


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import signals  # noqa: F401  (change log, access log)
        from .roles import sync_roles

        post_migrate.connect(sync_roles, dispatch_uid="steward-sync-roles")
