"""Connectors to the databases Steward catalogs. Plain Python: no Django in here."""

from .base import ConnectionSpec, Connector, ConnectorError, NetworkPolicy, TestResult, redact
from .elasticsearch import ElasticsearchConnector
from .metadata import ColumnMeta, ScanRules, TableMeta
from .mongodb import MongoDBConnector
from .mysql import MySQLConnector
from .oracle import OracleConnector
from .postgresql import PostgreSQLConnector
from .sqlite import SQLiteConnector

KINDS: dict[str, type[Connector]] = {
    cls.kind: cls
    for cls in (
        PostgreSQLConnector,
        MySQLConnector,
        OracleConnector,
        SQLiteConnector,
        MongoDBConnector,
        ElasticsearchConnector,
    )
}

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
    "get_connector",
    "redact",
    "validate_options",
]


def get_connector(spec: ConnectionSpec, policy: NetworkPolicy) -> Connector:
    cls = KINDS.get(spec.kind)
    if cls is None:
        raise ConnectorError("other", f"unknown source kind '{spec.kind}'")
    return cls(spec, policy)


def validate_options(kind: str, options: dict) -> dict:
    """Check options against what the kind accepts; return a cleaned copy or raise ValueError."""
    if kind not in KINDS:
        raise ValueError(f"unknown source kind '{kind}'")
    if not isinstance(options, dict):
        raise ValueError("options must be a mapping")
    return KINDS[kind].clean_options(options)
