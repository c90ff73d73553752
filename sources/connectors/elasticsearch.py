from fnmatch import fnmatchcase

import elasticsearch

from .base import (
    COMMON_FIELDS,
    Connector,
    ConnectorError,
    first_line,
    host_literal,
    kind_from_text,
)
from .metadata import ColumnMeta, TableMeta, normalize_type, pluck, sample_text

PATTERN_CHARACTERS = frozenset("*?,")


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

    def read_catalog(self, es, rules, progress, only):
        target = self.spec.database or "*"
        if only:
            schema, name = only
            if schema or PATTERN_CHARACTERS & set(name) or not self._in_scope(name):
                return []
            target = name
        try:
            mappings = es.indices.get_mapping(index=target)
        except elasticsearch.NotFoundError:
            if only:
                return []
            raise
        if only:
            names = [name for name in mappings if name == target]
        else:
            names = [
                name
                for name in mappings
                if not name.startswith(".") and rules.allows("", name, "index")
            ]
        progress(0, len(names), f"{len(names)} indices chosen")
        if not names:
            return []
        aliases = es.indices.get_alias(index=target)
        listing = es.cat.indices(
            index=target, format="json", bytes="b", h="index,docs.count,store.size"
        )
        counts = {row["index"]: row for row in listing}
        chosen = []
        for done, name in enumerate(names, 1):
            mapping = mappings[name].get("mappings") or {}
            columns, truncated = flatten(mapping.get("properties") or {}, rules.max_fields)
            stats = counts.get(name, {})
            table = TableMeta(
                schema="",
                name=name,
                kind="index",
                columns=columns,
                comment=str((mapping.get("_meta") or {}).get("description", "")),
                row_count=_number(stats.get("docs.count")),
                size_bytes=_number(stats.get("store.size")),
                properties={"aliases": sorted(aliases.get(name, {}).get("aliases") or {})},
            )
            if truncated:
                table.properties["fields_truncated"] = True
            chosen.append(table)
            progress(done, len(names), f"read {name}")
        return chosen

    def _in_scope(self, name: str) -> bool:
        patterns = [p for p in (self.spec.database or "*").split(",") if p and p[0] != "-"]
        return any(fnmatchcase(name, pattern) for pattern in patterns)

    def read_sample(self, es, table, columns, limit):
        if PATTERN_CHARACTERS & set(table.name):
            raise ConnectorError("not_found", f"'{table.name}' is not an index name")
        paths = {column: _source_path(table, column) for column in columns}
        response = es.search(
            index=table.name,
            size=limit,
            source_includes=sorted(set(paths.values())),
            query={"match_all": {}},
        )
        found = {column: [] for column in columns}
        for hit in response["hits"]["hits"]:
            for column, bucket in found.items():
                for value in pluck(hit.get("_source") or {}, paths[column].split(".")):
                    if value is not None and len(bucket) < limit:
                        bucket.append(sample_text(value))
        return found

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


def flatten(properties: dict, max_fields: int) -> tuple[list[ColumnMeta], bool]:
    """Mapping properties as dotted paths: objects, nested objects and their children, and
    multi-fields ("name.keyword"); True when max_fields cut the list short."""
    columns: list[ColumnMeta] = []

    def add(path: str, spec: dict) -> bool:
        if len(columns) >= max_fields:
            return False
        native = spec.get("type", "object")
        data_type = normalize_type("elasticsearch", native)
        columns.append(ColumnMeta(path, len(columns) + 1, data_type, native))
        return True

    def walk(fields: dict, prefix: str) -> bool:
        for name, spec in fields.items():
            path = f"{prefix}{name}"
            if not add(path, spec):
                return False
            for sub, sub_spec in (spec.get("fields") or {}).items():
                if not add(f"{path}.{sub}", sub_spec):
                    return False
            if not walk(spec.get("properties") or {}, f"{path}."):
                return False
        return True

    return columns, not walk(properties, "")


def _source_path(table: TableMeta, column: str) -> str:
    """Where a column's values sit in _source: a multi-field's are its parent's."""
    parent = column.rpartition(".")[0]
    meta = table.column(parent) if parent else None
    return parent if meta and meta.data_type not in ("object", "array") else column


def _number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
