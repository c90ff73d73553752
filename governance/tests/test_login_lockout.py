"""Failed sign-ins lock one username at one address (LOGIN_FAILURE_LIMIT), and an address for
everyone only far later (LOGIN_FAILURE_ADDRESS_LIMIT); the counts live where every web
worker sees them; X-Forwarded-For is believed only from TRUSTED_PROXIES; a locked user is
told so and for how long, the same way whether or not the username exists."""

import time

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from rest_framework.test import APIClient

from governance.addresses import client_address
from governance.models import AccessLogEntry, LoginFailureCount
from governance.testing import PASSWORD, make_user

PROXY = "10.9.0.1"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(params=["database", "cache"])
def store(request, settings):
    """Every counting rule holds for both stores: the database (no REDIS_URL) and the cache
    (Redis when REDIS_URL is set, as in CI)."""
    settings.LOGIN_FAILURE_STORE = request.param
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_ADDRESS_LIMIT = 6
    settings.LOGIN_FAILURE_WINDOW = 300
    return request.param


@pytest.fixture
def users(db):
    return make_user("alice", staff=True), make_user("bob", staff=True)


def sign_in(username, password=PASSWORD, address="203.0.113.7", **headers):
    return APIClient(REMOTE_ADDR=address, **headers).post(
        "/api/v1/auth/token/", {"username": username, "password": password}
    )


def fail(username, times, address="203.0.113.7", **headers):
    return [sign_in(username, "wrong", address, **headers).status_code for _ in range(times)]


LOCKED = {"detail": "Too many failed sign-ins; try again in 5 minutes.", "retry_after": 300}


def test_failures_lock_one_user_at_one_address(store, users):
    assert fail("alice", 3) == [400, 400, 429]  # the third failure says so at once
    locked = sign_in("alice")
    assert locked.status_code == 429
    assert locked.json() == LOCKED and locked["Retry-After"] == "300"
    # Nobody else behind the address, and not alice elsewhere.
    assert sign_in("bob").status_code == 200
    assert sign_in("alice", address="198.51.100.9").status_code == 200


def test_an_address_is_locked_for_everyone_only_far_later(store, users):
    for name in ("carol", "dave", "erin", "frank", "grace"):
        fail(name, 1)
    assert sign_in("bob").status_code == 200
    fail("heidi", 1)  # the sixth failure from this address
    assert sign_in("bob").status_code == 429
    assert sign_in("bob", address="198.51.100.9").status_code == 200


def test_the_lock_reads_the_same_for_a_username_that_does_not_exist(store, users):
    fail("alice", 3)
    fail("nobody-here", 3)
    real, ghost = sign_in("alice"), sign_in("nobody-here")
    assert (real.status_code, real.json()) == (ghost.status_code, ghost.json())


def test_a_successful_sign_in_clears_the_users_count(store, users):
    fail("alice", 2)
    assert sign_in("alice").status_code == 200
    assert fail("alice", 2) == [400, 400]
    assert sign_in("alice").status_code == 200


def test_the_lock_ends_with_the_window(store, users, settings):
    settings.LOGIN_FAILURE_WINDOW = 1
    fail("alice", 3)
    assert sign_in("alice").status_code == 429
    time.sleep(1.5)
    assert sign_in("alice").status_code == 200


def test_the_admin_login_page_tells_a_locked_user(store, users, client):
    for _ in range(3):
        page = client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert "Too many failed sign-ins; try again in 5 minutes." in page.content.decode()
    page = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 200 and "try again in 5 minutes" in page.content.decode()
    bob = client.post("/admin/login/", {"username": "bob", "password": PASSWORD})
    assert bob.status_code == 302


def test_without_redis_every_worker_reads_the_same_counts(settings, users):
    """Counts are rows in the database, not in one process's memory: emptying the local
    cache (what another worker would see) leaves the lock in place."""
    settings.LOGIN_FAILURE_STORE = "database"
    settings.LOGIN_FAILURE_LIMIT = 3
    fail("alice", 3)
    cache.clear()
    assert sign_in("alice").status_code == 429
    assert LoginFailureCount.objects.count() == 2  # the pair and the address


def test_forwarded_for_is_ignored_unless_a_trusted_proxy_sent_it(store, users, settings):
    settings.TRUSTED_PROXIES = [PROXY + "/32"]
    # Straight from the client: a made-up header changes nothing.
    for spoof in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        sign_in("alice", "wrong", HTTP_X_FORWARDED_FOR=spoof)
    assert sign_in("alice", HTTP_X_FORWARDED_FOR="4.4.4.4").status_code == 429


def test_behind_a_trusted_proxy_each_client_counts_alone(store, users, settings):
    settings.TRUSTED_PROXIES = ["10.9.0.0/16"]
    behind = {"address": PROXY, "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7, 10.9.0.2"}
    fail("alice", 3, **behind)
    assert sign_in("alice", **behind).status_code == 429
    entry = AccessLogEntry.objects.filter(action="login_failed").first()
    assert entry.ip_address == "203.0.113.7"  # the rightmost hop no trusted proxy is at
    other = {"address": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.8"}
    assert sign_in("alice", **other).status_code == 200


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("203.0.113.7", "", "203.0.113.7"),
        ("203.0.113.7", "6.6.6.6", "203.0.113.7"),  # not from a trusted proxy
        (PROXY, "", PROXY),
        (PROXY, "203.0.113.7", "203.0.113.7"),
        (PROXY, "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (PROXY, "203.0.113.7, 10.9.0.2", "203.0.113.7"),
        (PROXY, "10.9.0.3, 10.9.0.2", "10.9.0.3"),  # only proxies: the farthest one
        (PROXY, "junk, 203.0.113.7", "203.0.113.7"),
        (PROXY, "203.0.113.7, junk", PROXY),  # a broken chain: what we saw ourselves
        (PROXY, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address(settings, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = ["10.9.0.0/16"]
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_request_throttles_count_the_same_client_address(db, monkeypatch):
    """DRF would take an untrusted X-Forwarded-For as the client's identity, so a new
    header per request would escape the login rate limit."""
    from governance.api.throttling import ScopedRateThrottle

    rates = {**ScopedRateThrottle.THROTTLE_RATES, "login": "3/min"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    statuses = [sign_in("x", "y", HTTP_X_FORWARDED_FOR=f"9.9.9.{n}").status_code for n in range(4)]
    assert statuses == [400, 400, 400, 429]
