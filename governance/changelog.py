"""The one change log: every create, update and delete of a governed model (a BaseModel),
from the admin, the API, commands or jobs, with who, when, request id, before and after.

Secrets are never written: an encrypted field appears as "******" when set, and a change
of secret is listed in `changed` without its value.
"""

import contextlib
import contextvars
import copy
import datetime
import decimal
import functools
import json
import uuid

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction
from django.db.models import Max
from django.db.models.fields import AutoFieldMixin

from . import context
from .crypto import MASK, EncryptedTextField
from .models import ChangeLogEntry

_TIMESTAMPS = {"created_at", "updated_at"}


def _tracked_fields(model):
    exclude = set(model.changelog_exclude) | _TIMESTAMPS
    return [f for f in model._meta.concrete_fields if f.name not in exclude and not f.generated]


@functools.cache
def _tracked(model):
    """(attname, is a secret) of the model's tracked fields."""
    return tuple((f.attname, isinstance(f, EncryptedTextField)) for f in _tracked_fields(model))


_JSON_PLAIN = frozenset({str, int, float, bool, type(None)})
# Values the encoder turns into a string (dates, times, decimals, uuids) take no round trip.
_JSON_STRINGS = (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, uuid.UUID)
_ENCODER = DjangoJSONEncoder()


def _json_safe(value):
    """What json.loads(json.dumps(value, cls=DjangoJSONEncoder)) gives, cheaply when it can."""
    kind = type(value)
    if kind in _JSON_PLAIN:
        return value
    if kind in (dict, list) and not value:
        return kind()
    if isinstance(value, _JSON_STRINGS):
        return _ENCODER.default(value)
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _snapshot(model, values):
    data = {}
    for attname, secret in _tracked(model):
        if attname not in values:
            continue  # deferred when loaded
        value = values[attname]
        data[attname] = (MASK if value else "") if secret else _json_safe(value)
    return data


def snapshot(instance):
    """A JSON-safe dict of the instance's tracked fields, secrets masked."""
    data = {}
    for attname, secret in _tracked(type(instance)):
        value = getattr(instance, attname)
        data[attname] = (MASK if value else "") if secret else _json_safe(value)
    return data


def _values(instance):
    fields = type(instance)._meta.concrete_fields
    return {f.attname: f.value_from_object(instance) for f in fields if not f.generated}


def _secrets(model, values):
    return {
        f.attname: values.get(f.attname)
        for f in model._meta.concrete_fields
        if isinstance(f, EncryptedTextField)
    }


_reading = contextvars.ContextVar("changelog_reading", default=False)


@contextlib.contextmanager
def reading():
    """For read-only work (a GET request): rows loaded inside are not remembered, which
    saves the copying on every list. A save of such a row still logs the right "before":
    before_save() fetches the stored row first."""
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def loaded(instance, field_names, values):
    """Called for every governed row loaded from the database."""
    if not _reading.get():
        remember(instance, dict(zip(field_names, values, strict=True)))


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
        if stored is not None:
            remember(stored)
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
    changed = _changed(before, after)
    changed += [key for key in _changed(before_secrets, after_secrets) if key not in changed]
    if action == ChangeLogEntry.Action.UPDATE and not changed:
        return None
    content_type = ContentType.objects.get_for_model(type(instance))
    with transaction.atomic():
        last = ChangeLogEntry.objects.filter(
            content_type=content_type, object_id=instance.pk
        ).aggregate(v=Max("version"))["v"]
        entry = _entry(context.current(), content_type, instance, action, (last or 0) + 1)
        entry.before, entry.after, entry.changed = before, after, changed
        entry.save()
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

    Secrets are not in the change log: the current ones are kept while the object's
    secret_target() stays the same, and removed when the restored version points elsewhere
    (they were typed for the current target, not for that one).
    """
    entry = history(instance).filter(version=version).first()
    if entry is None:
        raise VersionNotRestorable(f"version {version} does not exist for this object")
    if entry.after is None:
        raise VersionNotRestorable(f"version {version} is a deletion and cannot be restored")
    model = type(instance)
    target = instance.secret_target()
    for field in _tracked_fields(model):
        if field.primary_key or isinstance(field, EncryptedTextField):
            continue
        if field.attname in entry.after:
            value = entry.after[field.attname]
            if not isinstance(field, models.ForeignKey | models.JSONField):
                value = field.to_python(value)
            setattr(instance, field.attname, value)
    if instance.secret_target() != target:
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                setattr(instance, field.attname, field.decode(""))
    instance.full_clean(validate_unique=True)
    instance.save()
    return instance


def record_many(model, changes):
    """Change-log entries for bulk writes that bypass model signals (a scan applying
    thousands of rows): `changes` is a list of (instance, action, before-snapshot)."""
    if not changes:
        return []
    actor = context.current()
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
        entry = _entry(actor, content_type, instance, action, last.get(instance.pk, 0) + 1)
        after = None if action == ChangeLogEntry.Action.DELETE else snapshot(instance)
        entry.before, entry.after, entry.changed = before, after, _changed(before, after)
        entries.append(entry)
    return insert_objects(entries)


def _changed(before, after):
    """The keys whose values differ between two snapshots (either may be None)."""
    before, after = before or {}, after or {}
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def _entry(actor, content_type, instance, action, version):
    user = actor.get_user()
    return ChangeLogEntry(
        user=user,
        user_name=user.get_username() if user else "",
        request_id=actor.request_id,
        action=action,
        content_type=content_type,
        object_id=instance.pk,
        object_repr=str(instance)[:200],
        version=version,
    )


# --- bulk writes ---------------------------------------------------------------------------
# Scans write hundreds of thousands of rows; bulk_create builds and adapts each value several
# times over. On PostgreSQL (psycopg 3) these send rows with COPY instead.

FALLBACK_BATCH = 1000


def can_copy(model):
    """Whether rows of `model` go in with COPY: PostgreSQL through psycopg 3."""
    connection = connections[router.db_for_write(model)]
    return (
        connection.vendor == "postgresql"
        and getattr(connection.Database, "__name__", "") == "psycopg"
        and isinstance(model._meta.pk, AutoFieldMixin)
    )


def _converter(field, connection):
    if isinstance(field, models.JSONField):
        return lambda value: None if value is None else json.dumps(value, cls=field.encoder)
    if type(field).__module__.startswith("django.db.models."):
        return None  # psycopg adapts the Python value as it is
    return lambda value: field.get_db_prep_save(value, connection)


def insert_rows(model, columns, rows, *, returning_ids=False):
    """Insert `rows`, tuples of values for the attnames in `columns`, without building
    instances or sending signals: one COPY on PostgreSQL (psycopg 3), else bulk_create (where
    auto_now fields take the time of the write). With returning_ids, returns the new ids in
    row order (on PostgreSQL drawn from the table's sequence before the COPY)."""
    rows = list(rows)
    if not rows:
        return [] if returning_ids else None
    fields = [model._meta.get_field(name) for name in columns]
    if not can_copy(model):
        attnames = [f.attname for f in fields]
        ids = []
        for start in range(0, len(rows), FALLBACK_BATCH):
            batch = rows[start : start + FALLBACK_BATCH]
            objs = model._base_manager.bulk_create(
                [model(**dict(zip(attnames, row, strict=True))) for row in batch]
            )
            ids += [obj.pk for obj in objs]
        return ids if returning_ids else None
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own, under Django's wrapper
        ids = None
        if returning_ids:
            raw.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [quote(model._meta.db_table), model._meta.pk.column, len(rows)],
            )
            ids = sorted(row[0] for row in raw.fetchall())
            fields = [model._meta.pk, *fields]
            rows = [(pk, *row) for pk, row in zip(ids, rows, strict=True)]
        converters = [(i, c) for i, f in enumerate(fields) if (c := _converter(f, connection))]
        columns = ", ".join(quote(f.column) for f in fields)
        with raw.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                if converters:
                    row = list(row)
                    for i, convert in converters:
                        row[i] = convert(row[i])
                copy.write_row(row)
    return ids


def insert_objects(objs):
    """bulk_create for unsaved instances of one model (defaults and auto_now applied, no
    signals; the instances get their ids), with COPY on PostgreSQL. Returns the instances."""
    objs = list(objs)
    if not objs:
        return objs
    model = type(objs[0])
    if not can_copy(model):
        return model._base_manager.bulk_create(objs, batch_size=FALLBACK_BATCH)
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key or f.generated)]
    rows = [tuple(f.pre_save(obj, True) for f in fields) for obj in objs]
    ids = insert_rows(model, [f.attname for f in fields], rows, returning_ids=True)
    db = router.db_for_write(model)
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, db
    return objs
