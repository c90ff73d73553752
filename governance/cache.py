"""Django's Redis cache, keeping one client per connection pool.

Django builds a new redis.Redis client for every cache call, and building one fills a table
of some 170 response handlers. An API request makes two or three cache calls (its throttle
counter, its user's cached roles), so that is worth keeping: a client holds no connection of
its own, only its pool, and each thread has its own cache object already.
"""

from django.core.cache.backends import redis


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        if index not in self._clients:
            self._clients[index] = super().get_client(key, write=write)
        return self._clients[index]


class RedisCache(redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
