"""The one change log: every create, update and delete of a governed model (a BaseModel),
from the admin, the API, commands or jobs, with who, when, request id, before and after.

Secrets are never written: an encrypted field appears as "******" when set, and a change
of secret is listed in `changed` without its value.
"""

import copy
import json

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Max

from . import context
from .crypto import MASK, EncryptedTextField
from .models import ChangeLogEntry

_TIMESTAMPS = {"created_at", "updated_at"}


def _tracked_fields(model):
    exclude = set(model.changelog_exclude) | _TIMESTAMPS
    return [f for f in model._meta.concrete_fields if f.name not in exclude]


def _snapshot(model, values):
    data = {}
    for field in _tracked_fields(model):
        if field.attname not in values:
            continue  # deferred when loaded
        value = values[field.attname]
        if isinstance(field, EncryptedTextField):
            value = MASK if value else ""
        data[field.attname] = value
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def snapshot(instance):
    """A JSON-safe dict of the instance's tracked fields, secrets masked."""
    return _snapshot(type(instance), _values(instance))


def _values(instance):
    return {f.attname: f.value_from_object(instance) for f in type(instance)._meta.concrete_fields}


def _secrets(model, values):
    return {
        f.attname: values.get(f.attname)
        for f in model._meta.concrete_fields
        if isinstance(f, EncryptedTextField)
    }


def remember(instance, values=None):
    """Keep the values as loaded (cheaply: reads must not pay for the change log) so that the
    next save can be diffed without a query. JSON values are copied one level deep, enough
    for code that edits a dict or list in place."""
    values = _values(instance) if values is None else values
    instance._changelog_values = {
        key: copy.copy(value) if isinstance(value, dict | list) else value
        for key, value in values.items()
    }


def _loaded_state(instance):
    # Set when the row was loaded, or fetched by before_save(); after the write it is too late.
    values = getattr(instance, "_changelog_values", None)
    if values is None:
        return None
    return _snapshot(type(instance), values), _secrets(type(instance), values)


def before_save(instance):
    """An instance that was not loaded (built with a known pk) gets its stored state now."""
    if not hasattr(instance, "_changelog_values") and instance.pk is not None:
        stored = type(instance)._base_manager.filter(pk=instance.pk).first()
        instance._changelog_values = stored._changelog_values if stored is not None else None


def record(instance, action):
    """Write one change-log entry for instance (called after the write, in its transaction)."""
    before_state = None if action == ChangeLogEntry.Action.CREATE else _loaded_state(instance)
    before, before_secrets = before_state or (None, {})
    if action == ChangeLogEntry.Action.DELETE:
        after, after_secrets = None, {}
    else:
        values = _values(instance)
        after, after_secrets = _snapshot(type(instance), values), _secrets(type(instance), values)
    if action == ChangeLogEntry.Action.UPDATE and before is None:
        action = ChangeLogEntry.Action.CREATE
    changed = sorted(
        key
        for key in set(before or {}) | set(after or {})
        if (before or {}).get(key) != (after or {}).get(key)
    )
    changed += sorted(
        key
        for key in set(before_secrets) | set(after_secrets)
        if before_secrets.get(key) != after_secrets.get(key) and key not in changed
    )
    if action == ChangeLogEntry.Action.UPDATE and not changed:
        return None
    actor = context.current()
    user = actor.get_user()
    content_type = ContentType.objects.get_for_model(type(instance))
    with transaction.atomic():
        last = ChangeLogEntry.objects.filter(
            content_type=content_type, object_id=instance.pk
        ).aggregate(v=Max("version"))["v"]
        entry = ChangeLogEntry.objects.create(
            user=user,
            user_name=user.get_username() if user else "",
            request_id=actor.request_id,
            action=action,
            content_type=content_type,
            object_id=instance.pk,
            object_repr=str(instance)[:200],
            version=(last or 0) + 1,
            before=before,
            after=after,
            changed=changed,
        )
    if action != ChangeLogEntry.Action.DELETE:
        remember(instance)
    return entry


def history(instance):
    return ChangeLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(type(instance)), object_id=instance.pk
    ).order_by("-version")


class VersionNotRestorable(Exception):
    pass


def restore(instance, version):
    """Put the object back to its state after `version`; recorded as a new update.

    Secrets are not in the change log, so the current secrets are kept.
    """
    entry = history(instance).filter(version=version).first()
    if entry is None:
        raise VersionNotRestorable(f"version {version} does not exist for this object")
    if entry.after is None:
        raise VersionNotRestorable(f"version {version} is a deletion and cannot be restored")
    model = type(instance)
    for field in _tracked_fields(model):
        if field.primary_key or isinstance(field, EncryptedTextField):
            continue
        if field.attname in entry.after:
            value = entry.after[field.attname]
            if not isinstance(field, models.ForeignKey | models.JSONField):
                value = field.to_python(value)
            setattr(instance, field.attname, value)
    instance.full_clean(validate_unique=True)
    instance.save()
    return instance


def record_many(model, changes):
    """Change-log entries for bulk writes that bypass model signals (a scan applying
    thousands of rows): `changes` is a list of (instance, action, before-snapshot)."""
    if not changes:
        return []
    actor = context.current()
    user = actor.get_user()
    content_type = ContentType.objects.get_for_model(model)
    ids = [instance.pk for instance, _, _ in changes]
    last = dict(
        ChangeLogEntry.objects.filter(content_type=content_type, object_id__in=ids)
        .values("object_id")
        .annotate(v=Max("version"))
        .values_list("object_id", "v")
    )
    entries = []
    for instance, action, before in changes:
        after = None if action == ChangeLogEntry.Action.DELETE else snapshot(instance)
        changed = sorted(
            k
            for k in set(before or {}) | set(after or {})
            if (before or {}).get(k) != (after or {}).get(k)
        )
        entries.append(
            ChangeLogEntry(
                user=user,
                user_name=user.get_username() if user else "",
                request_id=actor.request_id,
                action=action,
                content_type=content_type,
                object_id=instance.pk,
                object_repr=str(instance)[:200],
                version=last.get(instance.pk, 0) + 1,
                before=before,
                after=after,
                changed=changed,
            )
        )
    return ChangeLogEntry.objects.bulk_create(entries, batch_size=2000)
