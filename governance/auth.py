"""Sign-in lockout for every login path (admin, API token, browsable API).

Failed sign-ins are counted in fixed windows of LOGIN_FAILURE_WINDOW seconds, per username
and client address pair and per client address. LOGIN_FAILURE_LIMIT failures of one
username from one address lock that pair; LOGIN_FAILURE_ADDRESS_LIMIT failures from one
address, whatever the usernames, lock the address. Nothing counts per username alone:
anyone could then lock any user out. A nonexistent username counts like a real one, so the
lock reveals nothing. Attempts refused by a lock are not counted again.

The counts live where every web worker sees them (LOGIN_FAILURE_STORE): the cache when it
is Redis, the database otherwise.
"""

import hashlib
import math
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .addresses import client_address
from .models import LoginFailureCount
from .permissions import principal


def _keys(request, username):
    """(key, limit) for the pair and for the address."""
    address = client_address(request) or "unknown"
    pair = hashlib.sha256(f"{username.casefold()}\n{address}".encode()).hexdigest()
    return [
        (f"login-fail:pair:{pair}", settings.LOGIN_FAILURE_LIMIT),
        (f"login-fail:ip:{address}", settings.LOGIN_FAILURE_ADDRESS_LIMIT),
    ]


class CacheCounts:
    """Counters in the cache: shared by every worker when the cache is Redis."""

    def hit(self, key, window):
        cache.add(f"{key}:ends", time.time() + window, window)
        if not cache.add(key, 1, window):
            try:
                cache.incr(key)
            except ValueError:  # expired since the add
                cache.set(key, 1, window)

    def read(self, keys):
        found = cache.get_many([*keys, *(f"{key}:ends" for key in keys)])
        return {
            key: (found[key], found[f"{key}:ends"])
            for key in keys
            if key in found and f"{key}:ends" in found
        }

    def clear(self, key):
        cache.delete_many([key, f"{key}:ends"])


class DatabaseCounts:
    """Counters as rows, one per key and window, incremented in the database."""

    def hit(self, key, window):
        now = timezone.now()
        LoginFailureCount.objects.filter(window_ends__lte=now).delete()
        for _ in range(3):
            if LoginFailureCount.objects.filter(key=key).update(count=F("count") + 1):
                return
            try:
                with transaction.atomic():
                    LoginFailureCount.objects.create(
                        key=key, count=1, window_ends=now + timedelta(seconds=window)
                    )
                return
            except IntegrityError:  # another worker opened the window first
                continue

    def read(self, keys):
        rows = LoginFailureCount.objects.filter(key__in=keys, window_ends__gt=timezone.now())
        return {row.key: (row.count, row.window_ends.timestamp()) for row in rows}

    def clear(self, key):
        LoginFailureCount.objects.filter(key=key).delete()


def _store():
    return CacheCounts() if settings.LOGIN_FAILURE_STORE == "cache" else DatabaseCounts()


def note_failed_login(request, username):
    if getattr(request, "_login_locked", False):
        return
    store = _store()
    for key, _ in _keys(request, username):
        store.hit(key, settings.LOGIN_FAILURE_WINDOW)


def retry_after(request, username):
    """Seconds until `username` may try again from this request's address; 0 when free."""
    keys = _keys(request, username)
    counts = _store().read([key for key, _ in keys])
    now = time.time()
    waits = [
        counts[key][1] - now for key, limit in keys if key in counts and counts[key][0] >= limit
    ]
    return max(1, math.ceil(max(waits))) if waits else 0


def lock_message(seconds):
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed sign-ins; try again in {minutes} minute{'s' * (minutes != 1)}."


class RateLimitedModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is not None and retry_after(request, str(username)):
            if request is not None:
                request._login_locked = True
            # PermissionDenied stops every backend and is reported as a failed login.
            raise PermissionDenied("too many failed sign-ins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and username is not None:
            _store().clear(_keys(request, str(username))[0][0])
        return user

    def get_all_permissions(self, user_obj, obj=None):
        """The user's own and their groups' permissions, as the one Principal every
        has_perm() and object filter of the request reads (ModelBackend makes two queries
        of its own)."""
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        return principal(user_obj).perms
