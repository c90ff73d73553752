"""Login rate limiting for every login path (admin, API token, browsable API).

Failed logins are counted per client address and per username in the cache; past
LOGIN_FAILURE_LIMIT within LOGIN_FAILURE_WINDOW seconds, further attempts are refused
even with the right password, until the window passes.
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

from .permissions import principal


def _keys(request, username):
    keys = [f"login-fail:user:{username.lower()}"] if username else []
    address = request.META.get("REMOTE_ADDR") if request is not None else None
    if address:
        keys.append(f"login-fail:ip:{address}")
    return keys


def note_failed_login(request, username):
    for key in _keys(request, username):
        cache.add(key, 0, settings.LOGIN_FAILURE_WINDOW)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, settings.LOGIN_FAILURE_WINDOW)


def is_locked(request, username):
    return any(
        (cache.get(key) or 0) >= settings.LOGIN_FAILURE_LIMIT for key in _keys(request, username)
    )


class RateLimitedModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is not None and is_locked(request, str(username)):
            # PermissionDenied stops every backend and is reported as a failed login.
            raise PermissionDenied("too many failed logins; try again later")
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_all_permissions(self, user_obj, obj=None):
        """The user's own and their groups' permissions, as the one Principal every
        has_perm() and object filter of the request reads (ModelBackend makes two queries
        of its own)."""
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        return principal(user_obj).perms
