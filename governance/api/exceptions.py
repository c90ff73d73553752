from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .. import accesslog
from ..models import AccessLogEntry

NAMED_PER_MODEL = 10


def still_used(exc, user):
    """What keeps an object from being deleted, per model: how many, and the names of those
    the user may view (hidden ones are only counted)."""
    blockers = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    by_model = {}
    for obj in blockers:
        by_model.setdefault(type(obj), []).append(obj)
    found = []
    for model, objs in sorted(by_model.items(), key=lambda item: item[0]._meta.label):
        restrict = getattr(model.objects, "restrict", None)
        visible = set()
        if restrict is not None:
            visible = set(
                restrict(user, "view")
                .filter(pk__in=[o.pk for o in objs])
                .values_list("pk", flat=True)
            )
        names = sorted(str(o) for o in objs if o.pk in visible)
        meta = model._meta
        found.append(
            {
                "model": str(meta.verbose_name if len(objs) == 1 else meta.verbose_name_plural),
                "count": len(objs),
                "names": names[:NAMED_PER_MODEL],
            }
        )
    return found


def conflict(exc, context):
    request, view = context.get("request"), context.get("view")
    blockers = still_used(exc, getattr(request, "user", None))
    what = getattr(getattr(view, "queryset", None), "model", None)
    subject = f"this {what._meta.verbose_name}" if what is not None else "this object"
    uses = " and ".join(f"{b['count']} {b['model']}" for b in blockers)
    return Response(
        {"detail": f"Cannot delete {subject}: {uses} still use it.", "still_used_by": blockers},
        status=status.HTTP_409_CONFLICT,
    )


def exception_handler(exc, context):
    """DRF's handler, plus: model validation errors are 400s naming the field, deleting what
    other objects still use is a 409 naming what uses it, and every permission denial is
    written to the access log."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError | RestrictedError):
        return conflict(exc, context)
    if isinstance(exc, exceptions.PermissionDenied) and not isinstance(
        exc, exceptions.NotAuthenticated
    ):
        request = context.get("request")
        if request is not None and request.user.is_authenticated:
            view = context.get("view")
            accesslog.record(
                AccessLogEntry.Action.PERMISSION_DENIED,
                detail={
                    "method": request.method,
                    "path": request.path,
                    "view": type(view).__name__ if view else "",
                },
            )
    return drf_exception_handler(exc, context)
