import logging

from . import context


class RequestContextFilter(logging.Filter):
    """Adds the request id (or job id) of the current actor to every log record."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            # Django logs a request's outcome after the middleware has returned.
            request = getattr(record, "request", None)
            record.request_id = (
                getattr(request, "request_id", None) or context.current().request_id or None
            )
        return True
