import threading

import oracledb

from .base import Connector, ConnectorError, first_line, kind_from_text

AUTH_CODES = {1017, 1005, 28000, 28001, 1045}
NOT_FOUND = {"DPY-6001", "DPY-6003", "ORA-12514", "ORA-12505"}
TIMEOUT_CODES = {"DPY-4024", "ORA-03156", "ORA-01013"}


def within(seconds, fn, **kwargs):
    """Run fn in a worker thread: a thin-mode handshake has no read timeout of its own."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn(**kwargs)
        except BaseException as exc:  # handed to the waiting caller
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="steward-oracle-connect", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError("no answer from the server in time")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class OracleConnector(Connector):
    kind = "oracle"
    default_port = 1521
    # Thin mode matches certificates against the address it dials, which is the checked IP.
    tls_modes = ("disable", "require", "verify-ca")

    def open(self, target, stack):
        if not oracledb.is_thin_mode():
            raise ConnectorError("other", "python-oracledb is in thick mode; thin mode is required")
        params = {
            "user": self.spec.username,
            "password": self.spec.password,
            "host": target,
            "port": self.port,
            "service_name": self.spec.database,
            "tcp_connect_timeout": self.connect_timeout,
            "retry_count": 0,
        }
        if self.tls != "disable":
            params.update(
                protocol="tcps", ssl_context=self.ssl_context(), ssl_server_dn_match=False
            )
        conn = within(self.connect_timeout, oracledb.connect, **params)
        conn.call_timeout = self.timeout_ms
        return conn

    def server_version(self, conn):
        return conn.version

    def classify(self, exc):
        error = exc.args[0] if exc.args else None
        code = getattr(error, "code", 0)
        full_code = getattr(error, "full_code", "")
        lines = [line for line in str(exc).splitlines() if not line.startswith("Help:")]
        if full_code == "DPY-6005" and len(lines) > 1:
            lines = lines[1:]  # the first line only carries a connection id
        detail = first_line("\n".join(lines))
        if code in AUTH_CODES:
            return "auth", detail
        if full_code in NOT_FOUND or f"ORA-{code:05}" in NOT_FOUND:
            return "not_found", detail
        if full_code in TIMEOUT_CODES or isinstance(exc, TimeoutError):
            return "timeout", detail
        cause = exc.__cause__
        if isinstance(cause, ConnectionRefusedError):
            return "refused", detail
        return kind_from_text(str(exc) + " " + str(cause or "")), detail
