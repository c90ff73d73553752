"""Object permissions on django-guardian: one restrict() for the API, the admin and jobs.

A user sees an object with a global permission (a role), a grant on the object to them or to
one of their groups, or a grant on the object's permission parent (a source covers its tables).
"""

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.functions import Cast
from guardian.models import GroupObjectPermission, UserObjectPermission

ACTIONS = ("view", "add", "change", "delete")
METHOD_ACTIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def perm_name(model, action):
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def can(user, action, obj):
    """True when user may do action on obj (globally or by a grant on obj or its parent)."""
    if not getattr(user, "is_active", False):
        return False
    if user.is_superuser or (action == "view" and getattr(obj, "readable_by_all", False)):
        return True
    perm = perm_name(type(obj), action)
    parent_field = getattr(type(obj), "permission_parent", None)
    parent = getattr(obj, parent_field) if parent_field else None
    if parent is not None and action == "add":
        return can(user, "change", parent)  # adding under a source is changing the source
    if user.has_perm(perm):
        return True
    if parent is not None:
        return can(user, "view" if action == "view" else "change", parent)
    return user.has_perm(perm, obj)


def granted(user, model, action):
    """A filter for `model` objects granted to the user or their groups for `action`.
    Guardian keeps object ids as text; casting the grant side lets the database use the
    primary key instead of casting every row of the model."""
    content_type = ContentType.objects.get_for_model(model)
    codename = f"{action}_{model._meta.model_name}"
    by_user = UserObjectPermission.objects.filter(
        user=user, permission__codename=codename, content_type=content_type
    )
    by_group = GroupObjectPermission.objects.filter(
        group__user=user, permission__codename=codename, content_type=content_type
    )
    as_id = Cast("object_pk", models.BigIntegerField())
    return models.Q(pk__in=by_user.values_list(as_id, flat=True)) | models.Q(
        pk__in=by_group.values_list(as_id, flat=True)
    )


class RestrictedQuerySet(models.QuerySet):
    def restrict(self, user, action="view"):
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser or (
            action == "view" and getattr(self.model, "readable_by_all", False)
        ):
            return self
        model = self.model
        parent_field = getattr(model, "permission_parent", None)
        perm = perm_name(model, action)
        if user.has_perm(perm):
            return self
        if parent_field:
            field = model._meta.get_field(parent_field)
            parent_action = "view" if action == "view" else "change"
            allowed = field.related_model.objects.restrict(user, parent_action).values("pk")
            covered = models.Q(**{f"{parent_field}__in": allowed})
            if not field.null:
                return self.filter(covered)
            # Without a parent (a manual table, say) the object carries its own grants.
            own = models.Q(**{f"{parent_field}__isnull": True}) & granted(user, model, action)
            return self.filter(covered | own)
        return self.filter(granted(user, model, action))


class GenericRestrictedQuerySet(models.QuerySet):
    """For rows about other objects (change log, jobs): visible with the global view
    permission on this model, or when the user may view the object the row is about."""

    type_field = "content_type"
    id_field = "object_id"

    def also_visible(self, user):
        return models.Q(pk__in=[])

    def restrict(self, user, action="view"):
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser or user.has_perm(perm_name(self.model, action)):
            return self
        if action != "view":
            return self.none()
        visible = self.also_visible(user)
        type_ids = self.exclude(**{self.type_field: None}).values_list(self.type_field, flat=True)
        for type_id in set(type_ids):
            model = ContentType.objects.get_for_id(type_id).model_class()
            if model is not None and hasattr(model.objects, "restrict"):
                allowed = model.objects.restrict(user, "view").values("pk")
                visible |= models.Q(
                    **{f"{self.type_field}_id": type_id, f"{self.id_field}__in": allowed}
                )
        return self.filter(visible)
