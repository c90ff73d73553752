"""Who may read the pages about the console rather than its data: /metrics, the API schema
and the API docs. Anyone signed in (an admin session or an API token), or a client whose
address is in METRICS_ALLOW (a Prometheus scraper, say). Locally METRICS_ALLOW lets everyone
in; in production it is empty, so these pages do not describe the console to strangers."""

import ipaddress
from functools import lru_cache, wraps

from django.conf import settings
from django.http import JsonResponse
from rest_framework.exceptions import AuthenticationFailed

from .api.authentication import TokenAuthentication

DENIED = (
    "Sign in (an admin session or an API token) to read this, or call from an address "
    "in METRICS_ALLOW."
)


@lru_cache(maxsize=8)
def _networks(entries):
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def allowlisted(request):
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address  # ::ffff:10.0.0.1 is 10.0.0.1
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOW)))


def signed_in(request):
    if request.user.is_authenticated:
        return True
    try:
        return TokenAuthentication().authenticate(request) is not None
    except AuthenticationFailed:
        return False


def signed_in_or_allowlisted(view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if allowlisted(request) or signed_in(request):
            return view(request, *args, **kwargs)
        return JsonResponse({"detail": DENIED}, status=401, headers={"WWW-Authenticate": "Token"})

    return guarded
