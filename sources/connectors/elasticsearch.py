import elasticsearch

from .base import COMMON_FIELDS, Connector, first_line, host_literal, kind_from_text


class ElasticsearchConnector(Connector):
    kind = "elasticsearch"
    default_port = 9200
    option_fields = {**COMMON_FIELDS, "api_key": str}
    public_options = frozenset(COMMON_FIELDS)

    def open(self, target, stack):
        """The client is lazy: it first talks to the server on the first request."""
        https = self.tls != "disable"
        params = {
            "hosts": [
                {
                    "host": host_literal(target),
                    "port": self.port,
                    "scheme": "https" if https else "http",
                }
            ],
            "request_timeout": self.statement_timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
        }
        if self.options.get("api_key"):
            params["api_key"] = self.options["api_key"]
        elif self.spec.username:
            params["basic_auth"] = (self.spec.username, self.spec.password)
        if https:
            verify = self.tls != "require"
            params["verify_certs"] = verify
            if verify:
                params["ca_certs"] = self.ca_file(stack)
                # verify-full checks the host name even though the socket goes to the IP.
                params["ssl_assert_hostname"] = (
                    self.spec.host if self.tls == "verify-full" else False
                )
        return elasticsearch.Elasticsearch(**{k: v for k, v in params.items() if v is not None})

    def server_version(self, conn):
        info = conn.options(request_timeout=self.connect_timeout).info()
        return info["version"]["number"]

    def classify(self, exc):
        if isinstance(exc, elasticsearch.UnsupportedProductError):
            return "other", "the server did not identify itself as Elasticsearch"
        if isinstance(exc, elasticsearch.ApiError):
            status = exc.meta.status
            kind = "auth" if status in (401, 403) else "not_found" if status == 404 else "other"
            return kind, f"HTTP {status}: {_reason(exc)}"
        if isinstance(exc, elasticsearch.ConnectionTimeout):
            return "timeout", "no answer in time"
        if isinstance(exc, elasticsearch.SSLError):
            return "tls", first_line(_cause(exc))
        text = _cause(exc)
        return kind_from_text(text), first_line(text)


def _reason(exc) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("type") or exc.message)
    return str(error or exc.message)


def _cause(exc) -> str:
    """Transport errors say 'Connection error'; the reason is in their arguments."""
    return " ".join(str(arg) for arg in exc.args) or str(exc)
