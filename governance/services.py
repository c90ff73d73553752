from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm, remove_perm

from .permissions import perm_name
from .roles import GRANT_ACTIONS


def grant(obj, holder, role="viewer"):
    """Grant a user or group the permissions of `role` on obj (and so on what it covers)."""
    if role not in GRANT_ACTIONS:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(GRANT_ACTIONS)}")
    for action in GRANT_ACTIONS[role]:
        assign_perm(perm_name(type(obj), action), holder, obj)


def revoke(obj, holder):
    for action in ("view", "change", "delete"):
        remove_perm(perm_name(type(obj), action), holder, obj)


def grant_creator(user, obj):
    """Whoever creates an object through a role may see, change and delete it."""
    parent = getattr(type(obj), "permission_parent", None)
    if user.is_superuser or (parent and getattr(obj, parent) is not None):
        return  # covered by the grant on its parent
    if not user.has_perm(perm_name(type(obj), "change")):
        grant(obj, user, "owner")


def holders(obj):
    """Who holds which permission on obj: object grants to users and groups, and groups
    whose role covers the model globally."""
    from guardian.shortcuts import get_groups_with_perms, get_users_with_perms

    users = get_users_with_perms(obj, attach_perms=True, with_group_users=False)
    groups = get_groups_with_perms(obj, attach_perms=True)
    model_perms = {perm_name(type(obj), a).split(".")[1] for a in ("view", "change", "delete")}
    global_groups = Group.objects.filter(
        permissions__content_type__app_label=obj._meta.app_label,
        permissions__codename__in=model_perms,
    ).distinct()
    return {
        "users": [
            {"id": u.pk, "username": u.get_username(), "permissions": sorted(p)}
            for u, p in users.items()
        ],
        "groups": [
            {"id": g.pk, "name": g.name, "permissions": sorted(p)} for g, p in groups.items()
        ],
        "global_groups": [
            {
                "id": g.pk,
                "name": g.name,
                "permissions": sorted(
                    g.permissions.filter(
                        codename__in=model_perms, content_type__app_label=obj._meta.app_label
                    ).values_list("codename", flat=True)
                ),
            }
            for g in global_groups
        ],
    }
