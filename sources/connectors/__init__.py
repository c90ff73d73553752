"""Connectors to the databases Steward catalogs. Plain Python: no Django in here."""

from collections.abc import Mapping
from importlib import import_module

from .base import ConnectionSpec, Connector, ConnectorError, NetworkPolicy, TestResult, redact
from .metadata import ColumnMeta, ScanRules, TableMeta


class _Kinds(Mapping):
    """kind -> connector class. A connector's module, and the driver it imports, load the
    first time its kind is used: a process that never meets an Elasticsearch, MongoDB or
    Oracle source never pays for those drivers."""

    CLASSES = {
        "postgresql": "postgresql.PostgreSQLConnector",
        "mysql": "mysql.MySQLConnector",
        "oracle": "oracle.OracleConnector",
        "sqlite": "sqlite.SQLiteConnector",
        "mongodb": "mongodb.MongoDBConnector",
        "elasticsearch": "elasticsearch.ElasticsearchConnector",
    }

    def __getitem__(self, kind) -> type[Connector]:
        module, name = self.CLASSES[kind].split(".")
        return getattr(import_module(f"{__name__}.{module}"), name)

    def __contains__(self, kind):
        return kind in self.CLASSES

    def __iter__(self):
        return iter(self.CLASSES)

    def __len__(self):
        return len(self.CLASSES)


KINDS = _Kinds()

__all__ = [
    "KINDS",
    "ColumnMeta",
    "ConnectionSpec",
    "Connector",
    "ConnectorError",
    "NetworkPolicy",
    "ScanRules",
    "TableMeta",
    "TestResult",
    "connection_target",
    "get_connector",
    "redact",
    "validate_options",
]


def get_connector(spec: ConnectionSpec, policy: NetworkPolicy) -> Connector:
    cls = KINDS.get(spec.kind)
    if cls is None:
        raise ConnectorError("other", f"unknown source kind '{spec.kind}'")
    return cls(spec, policy)


def connection_target(spec: ConnectionSpec) -> dict:
    """Where and how the spec's secrets would be sent (Connector.target of its kind)."""
    return KINDS.get(spec.kind, Connector).target(spec)


def validate_options(kind: str, options: dict) -> dict:
    """Check options against what the kind accepts; return a cleaned copy or raise ValueError."""
    if kind not in KINDS:
        raise ValueError(f"unknown source kind '{kind}'")
    if not isinstance(options, dict):
        raise ValueError("options must be a mapping")
    return KINDS[kind].clean_options(options)
