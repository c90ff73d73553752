"""Two-factor sign-in to the admin: TOTP (django-otp) with single-use recovery codes.

Whoever has a confirmed authenticator must use it; with MFA_REQUIRED (on in production)
superusers and the Admin and Steward roles must also enrol one before the admin opens. A
session is verified once a code was accepted in it. The API stays token-based: tokens are
not sessions and do not ask for a code, and a session that is not verified yet does not
reach the API.
"""

import segno
from django.conf import settings
from django.db import transaction
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import accesslog
from .models import AccessLogEntry
from .roles import ADMIN, STEWARD

RECOVERY_CODES = 10


def required_for(user):
    return settings.MFA_REQUIRED and (
        user.is_superuser or user.groups.filter(name__in=(ADMIN, STEWARD)).exists()
    )


def authenticator(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def pending(request):
    """True when the signed-in user still owes a second factor in this session."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if getattr(user, "is_verified", lambda: False)():
        return False
    return authenticator(user) is not None or required_for(user)


def new_authenticator(user):
    """The user's authenticator waiting to be confirmed with a first code (kept across
    reloads of the enrolment page, so that a scanned code stays valid)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def qr_svg(device):
    code = segno.make(device.config_url, error="m")
    return code.svg_inline(scale=4, light="#fff", title="Scan with an authenticator app")


def secret_text(device):
    """The key as an authenticator app types it in: base32, in groups of four."""
    from base64 import b32encode

    text = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def clean_code(code):
    return "".join((code or "").split()).lower()


@transaction.atomic
def confirm(request, device, code):
    """Confirm a new authenticator with its first code; returns the recovery codes (to be
    shown once) or None when the code is wrong."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
    if not device.verify_token(clean_code(code)):
        accesslog.record(AccessLogEntry.Action.MFA_FAILED, detail={"step": "enrolment"})
        return None
    device.confirmed = True
    device.save()
    TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
    otp_login(request, device)
    accesslog.record(AccessLogEntry.Action.MFA_ENROLLED)
    return new_recovery_codes(device.user)


def new_recovery_codes(user):
    """Replace the user's recovery codes; the new ones are returned to be shown once."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name="recovery", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def verify(request, code):
    """Accept a code from the authenticator or a recovery code (which then is used up).
    Returns None on success, else the reason to show."""
    code = clean_code(code)
    devices = list(devices_for_user(request.user))
    if any(not d.verify_is_allowed()[0] for d in devices):
        return "Too many wrong codes; wait a minute and try again."
    with transaction.atomic():
        for device in devices_for_user(request.user, for_verify=True):
            if code and device.verify_token(code):
                otp_login(request, device)
                return None
    accesslog.record(AccessLogEntry.Action.MFA_FAILED, detail={"step": "sign-in"})
    return "That code is not valid; try the current one from your app, or a recovery code."


def reset(user):
    """Forget the user's authenticator and recovery codes (a lost phone): the next sign-in
    enrols again."""
    for model in (TOTPDevice, StaticDevice):
        model.objects.filter(user=user).delete()
    accesslog.record(AccessLogEntry.Action.MFA_RESET, detail={"user": user.get_username()})
