"""Object permissions on django-guardian: one restrict() for the API, the admin and jobs.

A user sees an object with a global permission (a role), a grant on the object to them or to
one of their groups, or a grant on the object's permission parent (a source covers its tables).
"""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection, models, transaction
from django.db.models.expressions import RawSQL
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


def may_write(user, action, obj, original=None):
    """Whether the user may have written obj as it now stands; asked after every write of
    the API and the admin, inside its transaction. Adding needs "add" on the result (change on
    its permission parent); changing needs "change" on the object as it was (`original`) and
    as it is, so that moving it under another parent needs change on both parents."""
    if original is not None and not can(user, action, original):
        return False
    return can(user, action, obj)


def reference_action(field):
    """What a writer needs on the object a relation field points to: change on the
    permission parent (adding or moving an object under it changes it), view on any other
    (a lineage edge's upstream table, a table's tags)."""
    return "change" if field.name == getattr(field.model, "permission_parent", None) else "view"


def assignable_users():
    """Who may be named on an object (its owner): active accounts. Naming colleagues needs
    the list of their usernames (nothing more: no names, addresses or roles), shown only to
    someone who may add or change the object; an account that cannot sign in cannot be
    accountable for anything."""
    return get_user_model()._default_manager.filter(is_active=True)


def is_governed(model):
    """Objects with a visibility rule (restrict()), and users (assignable_users())."""
    return hasattr(model._default_manager, "restrict") or model is get_user_model()


def usable(user, field, queryset=None, action=None):
    """The objects a relation field may point to when the user writes it: restrict() for
    reference_action(field) (or `action`), assignable_users() for users. `queryset` is what
    to narrow (an admin's ordering, a search); relations to models outside governance
    (content types, schedules) carry no object data and are left as they are."""
    related = field.related_model
    if queryset is None:
        queryset = related._default_manager.all()
    if related is get_user_model():
        return queryset & assignable_users()
    if hasattr(queryset, "restrict"):
        return queryset.restrict(user, action or reference_action(field))
    return queryset


@dataclass(frozen=True)
class Principal:
    """What a user holds: global permissions ("app.codename") from their own and their
    groups' roles, the ids of their groups, and the ids of the permissions they or their
    groups hold on at least one object (which object is read live, in granted())."""

    perms: frozenset
    group_ids: tuple
    object_perm_ids: frozenset = frozenset()


VERSION_KEY = "permissions:version"
# A cached Principal's key; the number changes with Principal's fields, so that entries a
# running deployment cached in the old shape are never read as the new one.
PRINCIPAL_KEY = "permissions:2:user:{pk}:{superuser:d}"


def principal(user):
    """The user's Principal, loaded once per request (kept on the user object). With
    PERMISSION_CACHE_SECONDS set it is also shared between requests through the cache,
    stamped with a version that every change to roles, groups or memberships replaces
    (see forget_principals), so a revocation counts from the next request."""
    found = getattr(user, "_principal", None)
    if found is not None:
        return found
    timeout = settings.PERMISSION_CACHE_SECONDS
    key = PRINCIPAL_KEY.format(pk=user.pk, superuser=user.is_superuser)
    version = None
    if timeout:
        hits = cache.get_many([VERSION_KEY, key])
        version, entry = hits.get(VERSION_KEY), hits.get(key)
        if version is not None and entry is not None and entry[0] == version:
            user._principal = entry[1]
            return entry[1]
    found = _load_principal(user)
    if timeout:
        if version is None:
            cache.add(VERSION_KEY, uuid.uuid4().hex, None)
            version = cache.get(VERSION_KEY)
        cache.set(key, (version, found), timeout)
    user._principal = found
    return found


def _load_principal(user):
    """One query: the permissions as (app label, codename) rows, the groups as rows with an
    empty app label (which no permission has) and the group id as text, and the permissions
    held on objects as rows labelled "#" with the permission id as text."""
    fields = ("content_type__app_label", "codename")
    if user.is_superuser:
        own = Permission.objects.values_list(*fields).order_by()
    else:
        own = Permission.objects.filter(user=user).values_list(*fields).order_by()
    grouped = Permission.objects.filter(group__user=user).values_list(*fields).order_by()

    def labelled(queryset, label, column):
        return (
            queryset.annotate(label=models.Value(label, output_field=models.CharField()))
            .annotate(value=Cast(column, models.CharField()))
            .values_list("label", "value")
            .order_by()
        )

    groups = labelled(Group.objects.filter(user=user), "", "pk")
    on_objects = labelled(UserObjectPermission.objects.filter(user=user), "#", "permission_id")
    group_objects = labelled(
        GroupObjectPermission.objects.filter(group__user=user), "#", "permission_id"
    )
    perms, group_ids, object_perm_ids = set(), [], set()
    for app_label, name in own.union(grouped, groups, on_objects, group_objects):
        if app_label == "#":
            object_perm_ids.add(int(name))
        elif app_label:
            perms.add(f"{app_label}.{name}")
        else:
            group_ids.append(int(name))
    return Principal(
        perms=frozenset(perms),
        group_ids=tuple(sorted(group_ids)),
        object_perm_ids=frozenset(object_perm_ids),
    )


def forget_principals():
    """Every cached Principal is stale: now, for the rest of this transaction, and again
    at commit, so that a request that read the old rows meanwhile cannot keep them. Called
    on every change of roles, groups and memberships, and on every new object grant (a
    Principal that still lists a revoked one costs a subquery that finds nothing)."""
    _permission_ids.clear()
    if settings.PERMISSION_CACHE_SECONDS:
        cache.set(VERSION_KEY, uuid.uuid4().hex, None)
        transaction.on_commit(lambda: cache.set(VERSION_KEY, uuid.uuid4().hex, None))


def forget_principal(holder):
    """A user object that was just given a grant stops using the Principal it loaded earlier
    in this request (a job or command may use it again; other requests load theirs)."""
    holder.__dict__.pop("_principal", None)


_permission_ids = {}


def permission_id(model, action):
    """The id of `app.action_model`, remembered per process: permission rows change only
    when migrations run (forget_principals clears this then)."""
    key = (model._meta.app_label, model._meta.model_name, action)
    if key not in _permission_ids:
        _permission_ids[key] = (
            Permission.objects.filter(
                content_type=ContentType.objects.get_for_model(model),
                codename=f"{action}_{model._meta.model_name}",
            )
            .values_list("pk", flat=True)
            .first()
        )
    return _permission_ids[key]


NOTHING = models.Q(pk__in=[])  # the rule that lets nothing through


def granted(user, model, action):
    """A filter for `model` objects granted to the user or their groups for `action`.

    It is one SQL subquery over guardian's tables, written out rather than built from ORM
    lookups: every request of a user without a global role builds it, and building and
    compiling the ORM form cost more than running it. Guardian keeps object ids as text;
    casting the grant side lets the database use the primary key instead of casting every
    row of the model. A permission names its content type, so grant rows are found by
    permission and holder, the leading columns of guardian's unique indexes."""
    perm = permission_id(model, action)
    if perm is None or perm not in principal(user).object_perm_ids:
        return NOTHING
    sql, params = _grants_sql(UserObjectPermission, "user", 1), [perm, user.pk]
    group_ids = principal(user).group_ids
    if group_ids:
        sql += " UNION ALL " + _grants_sql(GroupObjectPermission, "group", len(group_ids))
        params += [perm, *group_ids]
    return models.Q(pk__in=RawSQL(sql, params))  # noqa: S611  (values are parameters)


def _grants_sql(grant_model, holder, holders):
    meta, quote = grant_model._meta, connection.ops.quote_name
    object_pk, permission, holder = (
        quote(meta.get_field(name).column) for name in ("object_pk", "permission", holder)
    )
    as_id = models.BigIntegerField().cast_db_type(connection)
    marks = ", ".join(["%s"] * holders)
    # Names from model metadata, values as parameters.
    select = f"SELECT CAST({object_pk} AS {as_id}) FROM {quote(meta.db_table)}"  # noqa: S608
    return f"{select} WHERE {permission} = %s AND {holder} IN ({marks})"


def _ids(model, rule):
    """The ids a rule lets through, as a subquery: a grant rule's own (the grant tables,
    without reading the model's rows), or the model's rows filtered by the rule."""
    if len(rule.children) == 1 and not rule.negated and rule.children[0][0] == "pk__in":
        return rule.children[0][1]
    return model._base_manager.filter(rule).values("pk")


class RestrictedQuerySet(models.QuerySet):
    def restrict(self, user, action="view"):
        rule = self.rule(user, action)
        if rule is None:
            return self
        return self.none() if rule is NOTHING else self.filter(rule)

    def rule(self, user, action="view"):
        """What restrict() filters on, as a Q on this model; None when it lets all through."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if user is None or not user.is_authenticated or not user.is_active:
            return NOTHING
        model = self.model
        if user.is_superuser or (action == "view" and getattr(model, "readable_by_all", False)):
            return None
        if user.has_perm(perm_name(model, action)):
            return None
        parent_field = getattr(model, "permission_parent", None)
        if not parent_field:
            return granted(user, model, action)
        field = model._meta.get_field(parent_field)
        parent = field.related_model
        parent_rule = parent.objects.all().rule(user, "view" if action == "view" else "change")
        if parent_rule is None:
            covered = models.Q(**{f"{parent_field}__isnull": False})
        elif parent_rule is NOTHING:
            covered = NOTHING
        else:
            covered = models.Q(**{f"{parent_field}__in": _ids(parent, parent_rule)})
        if not field.null:
            return None if parent_rule is None else covered
        # Without a parent (a manual table, say) the object carries its own grants. Most
        # users hold none: the filter is then the parent's alone, which the planner can
        # estimate (a few rows under a few parents) where it takes an OR for half.
        if permission_id(model, action) not in principal(user).object_perm_ids:
            return covered
        own = models.Q(**{f"{parent_field}__isnull": True}) & granted(user, model, action)
        return own if covered is NOTHING else covered | own


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
