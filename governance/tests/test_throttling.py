"""Throttles count requests in fixed windows, one counter per client and window."""

import pytest
from django.core.cache import cache

from governance.api.throttling import ScopedRateThrottle, UserRateThrottle, WindowCounter
from governance.testing import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    now = [600.0]  # the start of the eleventh one-minute window
    monkeypatch.setattr(WindowCounter, "timer", lambda self: now[0])
    return now


def test_a_user_gets_the_rate_per_window_then_429_with_retry_after(monkeypatch, clock):
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "3/min")
    user, other = make_user("sam"), make_user("kim")
    client = client_for(user)
    assert [client.get("/api/v1/jobs/").status_code for _ in range(3)] == [200, 200, 200]
    clock[0] = 645.5
    refused = client.get("/api/v1/jobs/")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "15"  # 14.5 s left, rounded up
    assert client_for(other).get("/api/v1/jobs/").status_code == 200  # counted on their own
    assert cache.get(f"throttle_user_{user.pk}:10") == 4  # one counter, not a list of times
    clock[0] = 660.0
    assert client.get("/api/v1/jobs/").status_code == 200


def test_a_scope_counts_apart_from_the_user_rate(monkeypatch, clock):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "login", "2/min")
    client = client_for(None)
    body = {"username": "nobody", "password": "wrong"}
    codes = [client.post("/api/v1/auth/token/", body).status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    clock[0] = 660.0
    assert client.post("/api/v1/auth/token/", body).status_code == 400


def test_a_counter_that_expired_between_two_calls_starts_again(monkeypatch, clock):
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "3/min")
    user = make_user("sam")
    client_for(user).get("/api/v1/jobs/")
    added = []
    real_add = cache.add

    def add_after_another_process(key, value, timeout):
        added.append(key)
        real_add(key, 5, timeout)  # another process opened the window first
        return False

    cache.delete(f"throttle_user_{user.pk}:10")
    monkeypatch.setattr(cache, "add", add_after_another_process)
    assert client_for(user).get("/api/v1/jobs/").status_code == 429
    assert added == [f"throttle_user_{user.pk}:10"]
