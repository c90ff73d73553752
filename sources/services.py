from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import accesslog
from governance.models import AccessLogEntry

from .connectors import get_connector
from .connectors.base import NetworkPolicy
from .models import ConnectionTest, DataSource


def network_policy():
    return NetworkPolicy(
        allow=tuple(settings.SOURCE_HOSTS_ALLOW),
        block_private=settings.SOURCE_BLOCK_PRIVATE_NETWORKS,
        sqlite_dir=settings.SOURCE_SQLITE_DIR,
        connect_timeout=settings.SOURCE_CONNECT_TIMEOUT,
        statement_timeout=settings.SOURCE_STATEMENT_TIMEOUT,
    )


def datasource_test_connection(*, source, user=None, candidate=None, operation="test"):
    """Open a connection to the source (or to unsaved `candidate` settings for it), log the
    outcome, and remember it on the source when the stored settings were tested."""
    tested = candidate or source
    result = get_connector(tested.connection_spec(), network_policy()).test()
    with transaction.atomic():  # three small writes, one commit
        _record_test(source, user, candidate, operation, result)
    return result


def _record_test(source, user, candidate, operation, result):
    ConnectionTest.objects.create(
        source=source,
        operation=operation,
        user=user if getattr(user, "pk", None) else None,
        ok=result.ok,
        latency_ms=result.latency_ms,
        server_version=result.server_version[:200],
        error_kind=result.error_kind,
        error=result.error,
    )
    accesslog.record(
        AccessLogEntry.Action.CONNECTION_TEST,
        obj=source,
        user=user,
        detail={"ok": result.ok, "error_kind": result.error_kind, "unsaved": candidate is not None},
    )
    if candidate is None:
        # Status fields, not an edit: a plain update keeps them out of the change log.
        DataSource.objects.filter(pk=source.pk).update(
            last_test_at=timezone.now(),
            last_test_ok=result.ok,
            last_test_error_kind=result.error_kind,
            last_test_error=result.error,
        )
