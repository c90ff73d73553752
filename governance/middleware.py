import re

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import JsonResponse

from . import context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    """Gives every request an id (or keeps a well-formed X-Request-ID) and makes it current."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else context.new_request_id()
        request.request_id = request_id
        with context.acting(request=request, request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class ServiceUnavailableMiddleware:
    """The metadata database going away is a 503 with Retry-After, not a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if isinstance(exception, DatabaseError) and "locked" in str(exception).lower():
            detail = "The metadata database is busy; try again shortly."
        else:
            detail = "The metadata database is unavailable; try again shortly."
        response = JsonResponse({"detail": detail, "component": "database"}, status=503)
        response["Retry-After"] = "30"
        return response
