"""Roles are groups. Admin holds every permission globally; Steward may add governed
objects and edits what it is granted; Viewer reads what it is granted. Object grants
bundle permissions by role: a viewer grant is view, a steward grant view and change."""

from django.apps import apps
from django.contrib.auth.models import Group, Permission

ADMIN, STEWARD, VIEWER = "Admin", "Steward", "Viewer"
ROLES = (ADMIN, STEWARD, VIEWER)
GRANT_ACTIONS = {
    "viewer": ("view",),
    "steward": ("view", "change"),
    "owner": ("view", "change", "delete"),
}


def governed_models():
    from .models import BaseModel

    return [m for m in apps.get_models() if issubclass(m, BaseModel)]


def sync_roles(**kwargs):
    """Give the role groups their global permissions (run after every migrate)."""
    admin, _ = Group.objects.get_or_create(name=ADMIN)
    steward, _ = Group.objects.get_or_create(name=STEWARD)
    Group.objects.get_or_create(name=VIEWER)
    admin.permissions.set(Permission.objects.all())
    add_codenames = [f"add_{m._meta.model_name}" for m in governed_models()]
    steward.permissions.set(
        Permission.objects.filter(
            codename__in=add_codenames,
            content_type__app_label__in={m._meta.app_label for m in governed_models()},
        )
    )
