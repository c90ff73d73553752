"""Who is acting and under which request id, for the change log, access log and logs.

Set by the request middleware for web requests and by the job runner for background work.
"""

import contextvars
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from .addresses import client_address


@dataclass
class Actor:
    request: object = None  # the HttpRequest; DRF sets request.user on it after authentication
    user: object = None  # used when there is no request (jobs, commands)
    request_id: str = ""

    def get_user(self):
        user = getattr(self.request, "user", None) if self.request is not None else self.user
        return user if getattr(user, "is_authenticated", False) else None

    def get_ip(self):
        return client_address(self.request) if self.request is not None else None


_actor = contextvars.ContextVar("steward_actor", default=None)


def current():
    return _actor.get() or Actor()


def new_request_id():
    return uuid.uuid4().hex


@contextmanager
def acting(*, request=None, user=None, request_id=None):
    token = _actor.set(Actor(request=request, user=user, request_id=request_id or new_request_id()))
    try:
        yield _actor.get()
    finally:
        _actor.reset(token)
