"""API tokens: the one write path (create, revoke) and the lookup that authenticates.

A key is 32 random bytes (URL-safe base64) behind a fixed marker; only its SHA-256 digest is
stored, so a copy of the database or a look at the admin reveals no usable key. A fast
digest is enough for a random key of this length (there is nothing to guess), and it keeps
authentication to one indexed lookup. The last-used time is written at most once per
LAST_USED_INTERVAL per token, so that requests do not each cost a write.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from . import accesslog
from .models import AccessLogEntry, ApiToken

MARKER = "stw_"
PREFIX_LENGTH = 12
LAST_USED_INTERVAL = timedelta(minutes=5)


def digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def token_create(*, user, name="api"):
    """A new token for `user`; returns (token, key). The key exists only in this answer."""
    key = MARKER + secrets.token_urlsafe(32)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:PREFIX_LENGTH],
        digest=digest(key),
        created_at=now,
        expires_at=now + timedelta(days=settings.API_TOKEN_EXPIRY_DAYS),
    )
    accesslog.record(AccessLogEntry.Action.TOKEN_CREATED, detail=_detail(token))
    return token, key


def tokens_revoke(queryset, *, reason):
    """Delete the tokens of `queryset`, each revocation written to the access log."""
    tokens = list(queryset.select_related("user"))
    if not tokens:
        return 0
    ApiToken.objects.filter(pk__in=[t.pk for t in tokens]).delete()
    AccessLogEntry.objects.bulk_create(
        accesslog.entry(AccessLogEntry.Action.TOKEN_REVOKED, detail=_detail(t, reason))
        for t in tokens
    )
    return len(tokens)


def user_tokens_revoke(user_ids, *, reason):
    """Revoke every token of these users (a password change, deactivation, lost role)."""
    return tokens_revoke(ApiToken.objects.filter(user_id__in=list(user_ids)), reason=reason)


def _detail(token, reason=""):
    detail = {"token": token.prefix, "name": token.name, "owner": token.user.get_username()}
    return {**detail, "reason": reason} if reason else detail


class Expired(Exception):
    pass


def authenticate(key):
    """The token whose key this is (with its user), None when there is none or its user is
    inactive; Expired past its expiry. One indexed query, plus a rare last-used write."""
    token = ApiToken.objects.select_related("user").filter(digest=digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.expires_at <= now:
        raise Expired
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
