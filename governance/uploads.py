"""Request body limits, enforced before anything reads the body.

Every request body may be at most REQUEST_MAX_BYTES (10 MB); a view that takes larger ones
says so with @accepts_body(limit) (the bulk import: its file limit plus room for the form;
OpenLineage: OPENLINEAGE_MAX_BYTES). RequestBodyLimitMiddleware compares the declared
Content-Length with the view's limit once the URL is resolved, before the CSRF check, a DRF
parser or a view reads a byte, and answers 413 naming the limit: a 600 MB upload is refused
without being spooled to disk. (DRF's parsers read the body without Django's
DATA_UPLOAD_MAX_MEMORY_SIZE check, so without this any endpoint would read any size.)

A body without Content-Length (Transfer-Encoding: chunked) is refused with 411, unread:
Django reads no body that has no length under WSGI, so it would otherwise be taken silently
as empty, and the server would be left to drain it.
"""

import functools

from django.conf import settings
from django.http import JsonResponse


def request_limit():
    return settings.REQUEST_MAX_BYTES


def accepts_body(limit):
    """Let a view take request bodies of up to limit() bytes (called per request, so that
    the setting it reads may change) instead of REQUEST_MAX_BYTES."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            return view(request, *args, **kwargs)

        wrapped.request_body_limit = limit
        return wrapped

    return decorate


def declared_length(request):
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


class RequestBodyLimitMiddleware:
    """Placed before CsrfViewMiddleware, whose process_view reads form bodies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.META.get("HTTP_TRANSFER_ENCODING"):
            return JsonResponse(
                {
                    "detail": "a request body needs a Content-Length header; bodies without "
                    "one (Transfer-Encoding: chunked) are not accepted"
                },
                status=411,
            )
        limit_of = getattr(view_func, "request_body_limit", request_limit)
        limit, length = limit_of(), declared_length(request)
        if length > limit:
            return JsonResponse(
                {
                    "detail": f"the request body is {length} bytes; the limit for this "
                    f"endpoint is {limit} bytes",
                    "limit": limit,
                },
                status=413,
            )
        return None
