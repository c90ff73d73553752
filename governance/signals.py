"""Signal receivers that must see every write, whatever path it took.

The change log hangs off model signals so that admin, API, commands and jobs all record;
the access log hangs off auth and guardian signals for logins and grants; cached roles and
memberships are forgotten whenever roles, groups or memberships change; a user's API tokens
are revoked when their password changes, they are deactivated or they lose a role.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_migrate,
    post_save,
    pre_delete,
    pre_save,
)
from django.dispatch import receiver
from guardian.models import GroupObjectPermission, UserObjectPermission

from . import accesslog, changelog, tokens
from .models import AccessLogEntry, BaseModel, ChangeLogEntry
from .permissions import forget_principals


def _governed(sender):
    return isinstance(sender, type) and issubclass(sender, BaseModel)


@receiver(pre_save)
def _before_save(sender, instance, raw=False, **kwargs):
    if _governed(sender) and not raw:
        changelog.before_save(instance)


@receiver(post_save)
def _after_save(sender, instance, created, raw=False, **kwargs):
    if _governed(sender) and not raw:
        action = ChangeLogEntry.Action.CREATE if created else ChangeLogEntry.Action.UPDATE
        changelog.record(instance, action)


@receiver(post_delete)
def _after_delete(sender, instance, **kwargs):
    if _governed(sender):
        changelog.record(instance, ChangeLogEntry.Action.DELETE)
        _forget_grants(instance)


def _forget_grants(instance):
    """Guardian's grant rows name their object by id only: a deleted object's grants go
    with it, each access-logged as a revocation, so that no row outlives what it granted.
    An object covered by its permission parent (a scanned table, a field) holds none."""
    parent = getattr(type(instance), "permission_parent", None)
    if parent and getattr(instance, type(instance)._meta.get_field(parent).attname) is not None:
        return
    content_type = ContentType.objects.get_for_model(type(instance))
    for model in (UserObjectPermission, GroupObjectPermission):
        rows = model.objects.filter(content_type=content_type, object_pk=str(instance.pk))
        for row in rows.select_related("permission"):
            row.content_object = instance  # the revocation names it, though it is gone
            row.delete()


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    accesslog.record(AccessLogEntry.Action.LOGIN, user=user, request=request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    accesslog.record(AccessLogEntry.Action.LOGOUT, user=user, request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    from .auth import note_failed_login

    username = str(credentials.get("username", ""))[:150]
    note_failed_login(request, username)
    detail = {"username": username}
    if getattr(request, "_login_locked", False):
        detail["locked"] = True
    accesslog.record(
        AccessLogEntry.Action.LOGIN_FAILED, request=request, user_name=username, detail=detail
    )


def _permission_event(instance, action):
    holder = getattr(instance, "user", None) or getattr(instance, "group", None)
    accesslog.record(
        action,
        obj=instance.content_object,
        detail=accesslog.grant_detail(instance.permission.codename, holder),
    )


@receiver(post_save, sender=UserObjectPermission)
@receiver(post_save, sender=GroupObjectPermission)
def _granted(sender, instance, created, **kwargs):
    if created:
        _permission_event(instance, AccessLogEntry.Action.GRANT)
        forget_principals()  # the holder's Principal may not list this permission yet


@receiver(post_delete, sender=UserObjectPermission)
@receiver(post_delete, sender=GroupObjectPermission)
def _revoked(sender, instance, **kwargs):
    _permission_event(instance, AccessLogEntry.Action.REVOKE)


@receiver(m2m_changed, sender=get_user_model().groups.through)
@receiver(m2m_changed, sender=get_user_model().user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
def _roles_changed(sender, action, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        forget_principals()


@receiver(post_delete, sender=Group)
@receiver(post_delete, sender=Permission)
@receiver(post_migrate)
def _roles_removed(**kwargs):
    forget_principals()


User = get_user_model()
# The user fields whose change ends the tokens issued under the old value.
_CREDENTIAL_FIELDS = {"password", "is_active", "is_superuser"}


@receiver(pre_save, sender=User)
def _credentials_changing(sender, instance, raw=False, update_fields=None, **kwargs):
    """Compare with the stored row, whatever wrote the change (a form, set_password() in a
    command, a plain assignment); saves that cannot touch these fields cost nothing."""
    if raw or instance.pk is None:
        return
    if update_fields is not None and not _CREDENTIAL_FIELDS & set(update_fields):
        return
    stored = User.objects.filter(pk=instance.pk).values(*_CREDENTIAL_FIELDS).first()
    if stored is None:
        return
    if stored["password"] != instance.password:
        instance._tokens_revoked_because = "password changed"
    elif stored["is_active"] and not instance.is_active:
        instance._tokens_revoked_because = "deactivated"
    elif stored["is_superuser"] and not instance.is_superuser:
        instance._tokens_revoked_because = "superuser status removed"


@receiver(post_save, sender=User)
def _credentials_changed(sender, instance, raw=False, **kwargs):
    reason = instance.__dict__.pop("_tokens_revoked_because", None)
    if reason:
        tokens.user_tokens_revoke([instance.pk], reason=reason)


@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
def _role_lost(sender, instance, action, reverse, pk_set, **kwargs):
    """Removing a group or permission from a user, or users from a group or permission."""
    if action == "post_remove":
        users = pk_set if reverse else [instance.pk]
    elif action == "pre_clear":
        users = instance.user_set.values_list("pk", flat=True) if reverse else [instance.pk]
    else:
        return
    what = "role" if sender is User.groups.through else "permission"
    tokens.user_tokens_revoke(users, reason=f"{what} removed")


@receiver(pre_delete, sender=Group)
def _group_deleted(sender, instance, **kwargs):
    tokens.user_tokens_revoke(instance.user_set.values_list("pk", flat=True), reason="role removed")
