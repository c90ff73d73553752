"""The one event path: services call emit() inside their transaction, so an event exists
exactly when the change that caused it was committed."""

from django.contrib.contenttypes.models import ContentType

from . import context
from .models import Event


def emit(kind, obj=None, **payload):
    return emit_many(kind, [(obj, payload)])[0]


def emit_many(kind, items):
    """Write one event of `kind` per (obj, payload) pair in one query."""
    request_id = context.current().request_id
    events = [
        Event(
            kind=kind,
            content_type=ContentType.objects.get_for_model(type(obj)) if obj is not None else None,
            object_id=obj.pk if obj is not None else None,
            object_repr=str(obj)[:200] if obj is not None else "",
            payload=payload,
            request_id=request_id,
        )
        for obj, payload in items
    ]
    return Event.objects.bulk_create(events)
