from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from . import accesslog
from .models import AccessLogEntry
from .permissions import forget_principal, forget_principals, perm_name
from .roles import GRANT_ACTIONS


def grant(obj, holder, role="viewer"):
    """Grant a user or group the permissions of `role` on obj (and so on what it covers)."""
    if role not in GRANT_ACTIONS:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(GRANT_ACTIONS)}")
    for action in GRANT_ACTIONS[role]:
        assign_perm(perm_name(type(obj), action), holder, obj)
    forget_principal(holder)


def revoke(obj, holder):
    for action in ("view", "change", "delete"):
        remove_perm(perm_name(type(obj), action), holder, obj)


def grant_creator(user, obj):
    """Whoever creates an object through a role may see, change and delete it."""
    grant_creator_many(user, [obj])


def grant_creator_many(user, objs):
    """grant_creator() for many new objects of one model, in a few queries: an object
    covered by its permission parent needs no grant; otherwise a creator without the global
    change permission owns it. Each grant is access-logged as a single grant is."""
    objs = list(objs)
    if not objs or user.is_superuser:
        return
    model = type(objs[0])
    parent = getattr(model, "permission_parent", None)
    if parent:
        attname = model._meta.get_field(parent).attname
        objs = [o for o in objs if getattr(o, attname) is None]
    if not objs or user.has_perm(perm_name(model, "change")):
        return
    content_type = ContentType.objects.get_for_model(model)
    codenames = [perm_name(model, a).split(".")[1] for a in GRANT_ACTIONS["owner"]]
    permissions = {
        p.codename: p
        for p in Permission.objects.filter(content_type=content_type, codename__in=codenames)
    }
    held = set()
    pks = [str(o.pk) for o in objs]
    for start in range(0, len(pks), 500):
        held.update(
            UserObjectPermission.objects.filter(
                user=user,
                permission__in=permissions.values(),
                object_pk__in=pks[start : start + 500],
            ).values_list("object_pk", "permission__codename")
        )
    grants, entries = [], []
    for obj in objs:
        for codename in codenames:
            if (str(obj.pk), codename) in held:
                continue
            grants.append(
                UserObjectPermission(
                    user=user,
                    permission=permissions[codename],
                    content_type=content_type,
                    object_pk=str(obj.pk),
                )
            )
            entries.append(
                accesslog.entry(
                    AccessLogEntry.Action.GRANT,
                    obj=obj,
                    detail=accesslog.grant_detail(codename, user),
                )
            )
    UserObjectPermission.objects.bulk_create(grants, batch_size=1000)
    AccessLogEntry.objects.bulk_create(entries, batch_size=1000)
    if grants:
        forget_principals()  # bulk_create sends no post_save
        forget_principal(user)


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
