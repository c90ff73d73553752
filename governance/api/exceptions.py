from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .. import accesslog
from ..models import AccessLogEntry


def exception_handler(exc, context):
    """DRF's handler, plus: model validation errors are 400s naming the field, and every
    permission denial is written to the access log."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
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
