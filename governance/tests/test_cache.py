import os

import pytest
import redis

from governance.cache import RedisCache

URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_cache():
    cache = RedisCache(URL, {"OPTIONS": {"socket_connect_timeout": 2}})
    try:
        cache.delete("steward-test:counter")
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {URL}")
    yield cache
    cache.delete("steward-test:counter")


def test_every_cache_call_uses_the_same_client_on_the_real_server(redis_cache):
    client = redis_cache._cache.get_client()
    assert redis_cache._cache.get_client(write=True) is client
    assert redis_cache.add("steward-test:counter", 1, 60)
    assert redis_cache.incr("steward-test:counter") == 2
    assert redis_cache.get_many(["steward-test:counter", "steward-test:none"]) == {
        "steward-test:counter": 2
    }
    assert redis_cache._cache.get_client() is client
