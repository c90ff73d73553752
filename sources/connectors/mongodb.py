import pymongo
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from .base import COMMON_FIELDS, Connector, first_line, host_literal, kind_from_text

MONGO_FIELDS = {"auth_source": str, "replica_set": str, "direct_connection": bool}
AUTH_CODES = {13, 18}


class MongoDBConnector(Connector):
    kind = "mongodb"
    default_port = 27017
    option_fields = {**COMMON_FIELDS, **MONGO_FIELDS}
    public_options = frozenset(option_fields)
    # pymongo matches certificates against the address it dials, which is the checked IP.
    tls_modes = ("disable", "require", "verify-ca")
    client_class = pymongo.MongoClient

    def open(self, target, stack):
        ms = int(self.connect_timeout * 1000)
        params = {
            "host": host_literal(target),
            "port": self.port,
            "appname": "steward",
            "connect": False,
            "serverSelectionTimeoutMS": ms,
            "connectTimeoutMS": ms,
            "socketTimeoutMS": self.timeout_ms,
            # Discovery would follow member addresses the server names, past the guard.
            "directConnection": self.options.get("direct_connection", True),
        }
        if self.options.get("replica_set"):
            params["replicaSet"] = self.options["replica_set"]
        if self.spec.username:
            params.update(username=self.spec.username, password=self.spec.password)
            params["authSource"] = self.options.get("auth_source") or self.spec.database or "admin"
        if self.tls != "disable":
            params.update(tls=True, tlsAllowInvalidHostnames=True)
            if self.tls == "require":
                params["tlsAllowInvalidCertificates"] = True
            elif ca := self.ca_file(stack):
                params["tlsCAFile"] = ca
        client = self.client_class(**params)
        try:
            client.admin.command("ping")
        except Exception:
            client.close()
            raise
        return client

    def server_version(self, conn):
        return conn.server_info()["version"]

    def classify(self, exc):
        detail = first_line(str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0])
        if isinstance(exc, OperationFailure) and exc.code in AUTH_CODES:
            return "auth", detail
        if isinstance(exc, ServerSelectionTimeoutError):
            kind = kind_from_text(str(exc))
            return (kind if kind in ("refused", "tls") else "timeout"), detail
        return kind_from_text(str(exc)), detail
