"""Two-factor sign-in to the admin: enrolment, verification, recovery codes, and the API
staying token-based."""

import re
from base64 import b32decode

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from governance.models import AccessLogEntry
from governance.testing import PASSWORD, make_user


@pytest.fixture(autouse=True)
def mfa_required(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MFA_REQUIRED = True
    # Each wrong code slows the next try down; tests that type one go on at once (but see
    # test_wrong_codes_slow_further_tries_down).
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0


@pytest.fixture
def sam(db):
    return make_user("sam", roles=["Steward"], staff=True)


def signed_in(user):
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": user, "password": PASSWORD})
    assert response.status_code == 302, response.content[:1000]
    return client


def current_code(key):
    return str(TOTP(key).token()).zfill(6)


def enrol(client):
    page = client.get("/admin/mfa/?next=/admin/").content.decode()
    assert 'class="mfa-qr"><svg' in page
    secret = re.search(r'class="mfa-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    key = b32decode(secret + "=" * (-len(secret) % 8))
    response = client.post("/admin/mfa/", {"code": current_code(key), "next": "/admin/"})
    assert response.status_code == 200
    return re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())


def test_a_steward_without_a_device_is_sent_to_enrolment(sam):
    client = signed_in("sam")
    for page in ("/admin/", "/admin/sources/datasource/", "/admin/password_change/"):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/mfa/?next=")
    page = client.get("/admin/mfa/").content.decode()
    assert 'data-step="enrol"' in page and 'class="mfa-qr"><svg' in page
    assert "Data sources" not in page


def test_enrolment_with_a_valid_code_opens_the_admin(sam):
    client = signed_in("sam")
    wrong = client.post("/admin/mfa/", {"code": "000000"}).content.decode()
    assert "not valid" in wrong
    assert client.get("/admin/").status_code == 302
    codes = enrol(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/admin/").status_code == 200
    assert TOTPDevice.objects.get(user=sam).confirmed
    assert AccessLogEntry.objects.filter(action="mfa_enrolled", user=sam).exists()
    assert AccessLogEntry.objects.filter(action="mfa_failed", user=sam).exists()
    # Once verified, the page offers new recovery codes and shows no key.
    page = client.get("/admin/mfa/").content.decode()
    assert 'data-step="manage"' in page and "mfa-secret" not in page


def test_with_a_device_the_admin_opens_only_after_a_valid_code(sam):
    device = TOTPDevice.objects.create(user=sam, name="phone", confirmed=True)
    client = signed_in("sam")
    assert client.get("/admin/governance/jobrun/").status_code == 302
    page = client.get("/admin/mfa/").content.decode()
    assert 'data-step="verify"' in page and "mfa-qr" not in page
    response = client.post("/admin/mfa/", {"code": "123456", "next": "/admin/governance/jobrun/"})
    assert "not valid" in response.content.decode()
    assert client.get("/admin/governance/jobrun/").status_code == 302
    response = client.post(
        "/admin/mfa/", {"code": current_code(device.bin_key), "next": "/admin/governance/jobrun/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/governance/jobrun/"
    assert client.get("/admin/governance/jobrun/").status_code == 200


def test_a_recovery_code_works_once(sam):
    codes = enrol(signed_in("sam"))
    first = signed_in("sam")
    assert first.post("/admin/mfa/", {"code": codes[0].upper()}).status_code == 302
    assert first.get("/admin/").status_code == 200
    second = signed_in("sam")
    assert "not valid" in second.post("/admin/mfa/", {"code": codes[0]}).content.decode()
    assert second.get("/admin/").status_code == 302
    assert StaticToken.objects.filter(device__user=sam).count() == 9


def test_new_recovery_codes_replace_the_old(sam):
    client = signed_in("sam")
    old = enrol(client)
    page = client.post("/admin/mfa/", {"recovery": "1"}).content.decode()
    new = re.findall(r"<li><code>([a-z2-7]+)</code></li>", page)
    assert len(new) == 10 and not set(new) & set(old)
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(new)


def test_the_api_stays_token_based_and_an_unverified_session_gets_nothing(sam):
    TOTPDevice.objects.create(user=sam, name="phone", confirmed=True)
    answer = APIClient().post("/api/v1/auth/token/", {"username": "sam", "password": PASSWORD})
    assert answer.status_code == 200
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
    assert api.get("/api/v1/jobs/").status_code == 200
    session = signed_in("sam")
    assert session.get("/api/v1/jobs/").status_code in (401, 403)


def test_a_pending_user_can_log_out(sam):
    client = signed_in("sam")
    assert client.post("/admin/logout/").status_code == 200
    assert client.get("/admin/mfa/").status_code == 302  # to the login page now
    assert client.get("/admin/mfa/")["Location"].startswith("/admin/login/")


def test_the_next_page_stays_on_this_site(sam):
    device = TOTPDevice.objects.create(user=sam, name="phone", confirmed=True)
    client = signed_in("sam")
    code = current_code(device.bin_key)
    response = client.post("/admin/mfa/", {"code": code, "next": "https://evil.example/"})
    assert response["Location"] == "/admin/"


def test_who_must_enrol(db, settings):
    make_user("vera", roles=["Viewer"], staff=True)
    make_user("ada", roles=["Admin"], staff=True)
    make_user("root", superuser=True)
    assert signed_in("vera").get("/admin/").status_code == 200  # viewers need not
    assert signed_in("ada").get("/admin/").status_code == 302
    assert signed_in("root").get("/admin/").status_code == 302
    settings.MFA_REQUIRED = False  # local default: make run's demo logins work as before
    assert signed_in("ada").get("/admin/").status_code == 200
    assert signed_in("root").get("/admin/").status_code == 200


def test_whoever_enrolled_uses_the_device_even_when_not_required(sam, settings):
    settings.MFA_REQUIRED = False
    TOTPDevice.objects.create(user=sam, name="phone", confirmed=True)
    assert signed_in("sam").get("/admin/").status_code == 302


def test_a_lost_device_is_reset_by_someone_who_may_change_the_user(sam, settings):
    settings.MFA_REQUIRED = False
    root = make_user("root", superuser=True)
    ada = make_user("ada", roles=["Admin"], staff=True)
    for user in (sam, root):
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(ada)
    client.post(
        "/admin/auth/user/",
        {"action": "reset_two_factor", "_selected_action": [sam.pk, root.pk]},
    )
    assert not TOTPDevice.objects.filter(user=sam).exists()
    assert TOTPDevice.objects.filter(user=root).exists()  # only a superuser resets a superuser
    assert AccessLogEntry.objects.get(action="mfa_reset").detail == {"user": "sam"}
    assert signed_in("sam").get("/admin/").status_code == 200


def test_wrong_codes_slow_further_tries_down(sam, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    device = TOTPDevice.objects.create(user=sam, name="phone", confirmed=True)
    client = signed_in("sam")
    assert "not valid" in client.post("/admin/mfa/", {"code": "123456"}).content.decode()
    response = client.post("/admin/mfa/", {"code": current_code(device.bin_key)})
    assert "Too many wrong codes" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_django_otp_screens_with_keys_are_not_in_the_admin(db, settings):
    settings.MFA_REQUIRED = False
    client = Client()
    client.force_login(make_user("root", superuser=True))
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert client.get("/admin/otp_static/staticdevice/").status_code == 404
