import datetime
import json
import re
import uuid
from collections import Counter

import pymongo
from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from .base import COMMON_FIELDS, Connector, first_line, host_literal, kind_from_text
from .metadata import ColumnMeta, TableMeta, normalize_type, pluck, sample_text

MONGO_FIELDS = {"auth_source": str, "replica_set": str}
AUTH_CODES = {13, 18}
SYSTEM_DATABASES = {"admin", "config", "local"}
# BSON type names as $type spells them, for the classes pymongo decodes values to.
BSON_TYPES = (
    (Int64, "long"),
    (float, "double"),
    (str, "string"),
    (dict, "object"),
    (list, "array"),
    (datetime.datetime, "date"),
    (ObjectId, "objectId"),
    (Decimal128, "decimal"),
    (uuid.UUID, "uuid"),
    (bytes, "binData"),
    (Timestamp, "timestamp"),
    (Regex, "regex"),
    (re.Pattern, "regex"),
    (Code, "javascript"),
    (DBRef, "dbRef"),
    (MinKey, "minKey"),
    (MaxKey, "maxKey"),
)


class MongoDBConnector(Connector):
    kind = "mongodb"
    default_port = 27017
    option_fields = {**COMMON_FIELDS, **MONGO_FIELDS}
    public_options = frozenset(option_fields)
    # Another authentication database or replica set is another account, or other servers.
    target_options = frozenset({"tls", "tls_ca", *MONGO_FIELDS})
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
            # Always: discovery would dial the member addresses the server names, resolved by
            # pymongo after the guard has looked, so only the checked address is ever dialled.
            "directConnection": True,
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

    def read_catalog(self, client, rules, progress, only):
        if only:
            in_scope = not self.spec.database or only[0] == self.spec.database
            databases = [only[0]] if in_scope else []
        elif self.spec.database:
            databases = [self.spec.database]
        else:
            databases = [d for d in client.list_database_names() if d not in SYSTEM_DATABASES]
        chosen = []
        for database in databases:
            if not only and not rules.schema_allowed(database):
                continue
            listing = client[database].list_collections(filter={"name": only[1]} if only else None)
            for info in listing:
                table = _table(database, info)
                if table.name.startswith("system."):
                    continue
                if only or rules.allows(database, table.name, table.kind):
                    chosen.append(table)
        progress(0, len(chosen), f"{len(chosen)} collections chosen")
        for done, table in enumerate(chosen, 1):
            collection = client[table.schema][table.name]
            if table.kind == "collection":
                table.row_count = collection.estimated_document_count()
            sample = collection.aggregate([{"$sample": {"size": rules.sample_size}}])
            table.columns, truncated = infer_fields(sample, rules.max_fields)
            if truncated:
                table.properties["fields_truncated"] = True
            progress(done, len(chosen), f"read {table.schema}.{table.name}")
        return chosen

    def read_sample(self, client, table, columns, limit):
        roots = {column.split(".")[0]: 1 for column in columns}
        pipeline = [{"$sample": {"size": limit}}, {"$project": roots}]
        found = {column: [] for column in columns}
        for document in client[table.schema][table.name].aggregate(pipeline):
            for column, bucket in found.items():
                for value in pluck(document, column.split(".")):
                    if value is not None and len(bucket) < limit:
                        bucket.append(sample_text(value))
        return found

    def classify(self, exc):
        detail = first_line(str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0])
        if isinstance(exc, OperationFailure) and exc.code in AUTH_CODES:
            return "auth", detail
        if isinstance(exc, ServerSelectionTimeoutError):
            kind = kind_from_text(str(exc))
            return (kind if kind in ("refused", "tls") else "timeout"), detail
        return kind_from_text(str(exc)), detail


def _table(database: str, info: dict) -> TableMeta:
    options = info.get("options") or {}
    kind = "view" if info.get("type") == "view" else "collection"
    table = TableMeta(database, info["name"], kind)
    if kind == "view":
        view = {"viewOn": options.get("viewOn"), "pipeline": options.get("pipeline", [])}
        table.view_definition = json.dumps(view, default=str)
    if info.get("type") == "timeseries":
        table.properties["timeseries"] = True
    if options.get("capped"):
        table.properties["capped"] = True
    return table


def bson_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int) and not isinstance(value, Int64):
        return "int" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, Binary) and value.subtype in (3, 4):
        return "uuid"
    return next((name for cls, name in BSON_TYPES if isinstance(value, cls)), type(value).__name__)


def _walk(document: dict, prefix: str, seen: dict[str, set]):
    for key, value in document.items():
        path = f"{prefix}{key}"
        kind = bson_type(value)
        seen.setdefault(path, set()).add(kind)
        if kind == "object":
            _walk(value, f"{path}.", seen)
        elif kind == "array":
            for item in value:
                if isinstance(item, dict):
                    _walk(item, f"{path}.", seen)


def infer_fields(documents, max_fields: int) -> tuple[list[ColumnMeta], bool]:
    """Field paths of sampled documents (through sub-documents and arrays of documents), their
    types and the share of documents that have them; True when max_fields cut the list short.

    A path whose values differ in type (nulls aside) gets data_type "other" unless the types
    normalise alike, and a native_type listing them, most frequent first ("string|int").
    Positions follow the paths' names, _id first: a random sample has no stable field order."""
    types: dict[str, Counter] = {}
    present: Counter = Counter()
    count, truncated = 0, False
    for document in documents:
        count += 1
        seen: dict[str, set] = {}
        _walk(document, "", seen)
        for path, kinds in seen.items():
            if path not in types:
                if len(types) >= max_fields:
                    truncated = True
                    continue
                types[path] = Counter()
            present[path] += 1
            types[path].update(kinds)
    columns = []
    for position, path in enumerate(sorted(types, key=lambda path: (path != "_id", path)), 1):
        counts = types[path]
        kinds = [kind for kind, _ in counts.most_common() if kind != "null"]
        normalised = {normalize_type("mongodb", kind) for kind in kinds}
        share = present[path] / count
        columns.append(
            ColumnMeta(
                name=path,
                position=position,
                data_type=normalised.pop() if len(normalised) == 1 else "other",
                native_type="|".join(kinds) or "null",
                nullable=share < 1 or "null" in counts,
                is_primary_key=path == "_id",
                presence=round(share, 4),
            )
        )
    return columns, truncated
