"""Request throttles that count requests in fixed windows.

DRF's throttles keep, per client, the time of every request within the window and read
and rewrite that whole list on each request, so their cost grows with the rate allowed
(up to 6,000 entries at 6000/min). These keep one counter per client and window in the
cache instead: one increment per request, plus an add when a window opens. Across the
boundary of two windows a client can get up to twice the rate in a short span, which
suits limits meant to stop runaway clients and password guessing (failed logins are also
counted on their own, see governance.auth).
"""

from rest_framework import throttling

from ..addresses import client_address


class WindowCounter(throttling.SimpleRateThrottle):
    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        key = f"{self.key}:{window}"
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window's first request, or its counter just expired
            count = 1 if self.cache.add(key, 1, self.duration + 1) else self.cache.incr(key)
        return count <= self.num_requests

    def wait(self):
        return max(self.window_ends - self.now, 0)

    def get_ident(self, request):
        """The client address as the lockout sees it (TRUSTED_PROXIES decides whether
        X-Forwarded-For counts), not DRF's, which believes the header from anyone."""
        return client_address(request) or ""


class AnonRateThrottle(throttling.AnonRateThrottle, WindowCounter):
    pass


class UserRateThrottle(throttling.UserRateThrottle, WindowCounter):
    pass


class ScopedRateThrottle(throttling.ScopedRateThrottle, WindowCounter):
    pass
