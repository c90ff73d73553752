import re
from functools import wraps

import redis
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers

from . import context
from .api.parsers import UNSTORABLE, field_errors, message

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
    """The metadata database or Redis (the cache: throttles, cached roles) going away is a
    503 with Retry-After naming the part, not a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, redis.ConnectionError | redis.TimeoutError):
            component, detail = "cache", "The cache (Redis) is unavailable"
        elif not isinstance(exception, OperationalError | InterfaceError):
            return None
        elif isinstance(exception, DatabaseError) and "locked" in str(exception).lower():
            component, detail = "database", "The metadata database is busy"
        else:
            component, detail = "database", "The metadata database is unavailable"
        response = JsonResponse(
            {"detail": f"{detail}; try again shortly.", "component": component}, status=503
        )
        response["Retry-After"] = "30"
        return response


class UnstorableTextMiddleware:
    """A path or query parameter that no database can store (NUL, unpaired surrogates) is a
    400 naming it, before any view reads it; bodies are checked by the API's parsers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        errors = field_errors(request.GET.lists())
        if UNSTORABLE.search(request.path):
            errors = {"path": [message(request.path)]}
        if errors:
            return JsonResponse(errors, status=400)
        return self.get_response(request)


# Only this site's own scripts, styles, fonts and connections; no plugins, no <base>
# rewriting, forms post only here, and no other site may frame a page.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "img-src": "'self' data:",  # Swagger UI and the admin draw small icons from data: URLs
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
NO_STORE_PATHS = ("/api/v1/", "/api/schema/")  # what a user may see, never kept by caches


def content_security_policy(**directives):
    """The policy as a header value; `directives` (underscores for dashes) override it."""
    policy = CONTENT_SECURITY_POLICY | {k.replace("_", "-"): v for k, v in directives.items()}
    return "; ".join(f"{name} {value}" for name, value in policy.items())


class SecurityHeadersMiddleware:
    """The Content-Security-Policy on every response that has none of its own, and
    `Cache-Control: no-store` on API data."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.policy)
        if request.path_info.startswith(NO_STORE_PATHS):
            add_never_cache_headers(response)
        return response


def csp_override(**directives):
    """A view decorator: this view's responses carry the policy with `directives` changed."""
    policy = content_security_policy(**directives)

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response["Content-Security-Policy"] = policy
            return response

        return wrapped

    return decorator
