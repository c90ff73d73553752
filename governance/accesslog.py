from django.contrib.contenttypes.models import ContentType

from . import context
from .models import AccessLogEntry


def entry(action, *, obj=None, user=None, request=None, user_name="", detail=None):
    """An unsaved access-log entry; the current actor fills in user, address and request id.
    record() saves one; bulk writers save many with bulk_create."""
    actor = context.current()
    if request is not None:
        actor = context.Actor(request=request, request_id=actor.request_id)
    user = user if user is not None else actor.get_user()
    return AccessLogEntry(
        user=user if getattr(user, "pk", None) else None,
        user_name=(user.get_username() if user is not None else user_name)[:150],
        action=action,
        content_type=ContentType.objects.get_for_model(type(obj)) if obj is not None else None,
        object_id=obj.pk if obj is not None else None,
        object_repr=str(obj)[:200] if obj is not None else "",
        ip_address=actor.get_ip(),
        request_id=actor.request_id,
        detail=detail or {},
    )


def record(action, **kwargs):
    """Append one access-log entry (see entry() for the arguments)."""
    item = entry(action, **kwargs)
    item.save()
    return item


def grant_detail(codename, holder):
    """How a grant or revocation is described, whoever writes it."""
    from django.contrib.auth.models import Group

    holder_type = "group" if isinstance(holder, Group) else "user"
    return {"permission": codename, "holder_type": holder_type, "holder": str(holder)}


def for_object(obj):
    return AccessLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)), object_id=obj.pk
    )
