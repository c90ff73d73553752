"""Plain metadata that introspection hands back, the rules that choose what is read, and the one
mapping from a source's own type names to Steward's normalised data types."""

import datetime
import decimal
import json
import re
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache

DATA_TYPES = (
    "string",
    "text",
    "integer",
    "decimal",
    "float",
    "boolean",
    "date",
    "timestamp",
    "time",
    "interval",
    "binary",
    "json",
    "array",
    "object",
    "uuid",
    "geometry",
    "other",
)
VIEW_KINDS = frozenset({"view", "materialized_view"})
SAMPLE_CHARS = 200


@dataclass
class ColumnMeta:
    name: str
    position: int
    data_type: str
    native_type: str
    nullable: bool = True
    default: str | None = None
    is_primary_key: bool = False
    foreign_key: str | None = None
    comment: str = ""
    presence: float | None = None


@dataclass
class TableMeta:
    schema: str
    name: str
    kind: str
    columns: list[ColumnMeta] = field(default_factory=list)
    comment: str = ""
    row_count: int | None = None
    size_bytes: int | None = None
    view_definition: str = ""
    properties: dict = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def column(self, name: str) -> ColumnMeta | None:
        return next((c for c in self.columns if c.name == name), None)


def _matches(patterns: tuple[str, ...], candidates: tuple[str, ...]) -> bool:
    return any(fnmatchcase(c.lower(), p.lower()) for p in patterns for c in candidates)


@dataclass(frozen=True)
class ScanRules:
    """Which schemas and tables a scan reads. Patterns are fnmatch-style and case-insensitive;
    table patterns match "table" or "schema.table". Sources without schemas (Elasticsearch)
    are not subject to the schema patterns."""

    include_schemas: tuple[str, ...] = ()
    exclude_schemas: tuple[str, ...] = ()
    include_tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    include_views: bool = True
    sample_size: int = 1000
    max_fields: int = 500

    def schema_allowed(self, schema: str) -> bool:
        names = (schema,)
        if self.include_schemas and not _matches(self.include_schemas, names):
            return False
        return not _matches(self.exclude_schemas, names)

    def table_allowed(self, schema: str, name: str) -> bool:
        names = (name, f"{schema}.{name}")
        if self.include_tables and not _matches(self.include_tables, names):
            return False
        return not _matches(self.exclude_tables, names)

    def allows(self, schema: str, name: str, kind: str) -> bool:
        if kind in VIEW_KINDS and not self.include_views:
            return False
        return (not schema or self.schema_allowed(schema)) and self.table_allowed(schema, name)


# --- type normalisation --------------------------------------------------------------------

_COMMON = {
    "string": (
        "varchar", "character varying", "char", "character", "nchar", "nvarchar", "varchar2",
        "nvarchar2", "bpchar", "name", "enum", "set", "inet", "cidr", "macaddr", "macaddr8",
        "rowid", "urowid", "keyword", "constant_keyword", "wildcard", "ip", "version", "string",
    ),
    "text": (
        "text", "tinytext", "mediumtext", "longtext", "clob", "nclob", "ntext", "citext",
        "match_only_text", "search_as_you_type",
    ),
    "integer": (
        "smallint", "integer", "int", "bigint", "tinyint", "mediumint", "int2", "int4", "int8",
        "serial", "smallserial", "bigserial", "serial4", "serial8", "year", "long", "short",
        "byte", "unsigned_long", "pls_integer", "binary_integer",
    ),
    "decimal": ("numeric", "decimal", "dec", "fixed", "number", "money"),
    "float": (
        "real", "float", "double", "double precision", "float4", "float8", "binary_float",
        "binary_double", "half_float", "scaled_float",
    ),
    "boolean": ("boolean", "bool"),
    "date": ("date",),
    "timestamp": ("datetime", "datetime2", "smalldatetime", "timestamptz", "date_nanos"),
    "time": ("time", "timetz"),
    "interval": ("interval",),
    "binary": (
        "bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary", "raw",
        "long raw", "bfile", "bit varying", "varbit", "bindata",
    ),
    "json": ("json", "jsonb", "hstore", "flattened"),
    "uuid": ("uuid", "uniqueidentifier"),
    "geometry": (
        "geometry", "geography", "point", "linestring", "polygon", "multipoint",
        "multilinestring", "multipolygon", "geometrycollection", "sdo_geometry", "box",
        "circle", "path", "lseg", "line", "geo_point", "geo_shape", "shape",
    ),
    "object": ("object",),
    "array": ("array", "nested", "dense_vector"),
}  # fmt: skip
COMMON_TYPES = {name: kind for kind, names in _COMMON.items() for name in names}
# Where a family gives a shared name another meaning.
FAMILY_TYPES = {
    "oracle": {"date": "timestamp", "long": "text"},
    "elasticsearch": {"date": "timestamp"},
    "mongodb": {"date": "timestamp"},
}
_ARGS = re.compile(r"\(([^)]*)\)")
_NOISE = re.compile(r"\b(?:unsigned|signed|zerofill)\b")


@lru_cache(maxsize=4096)
def normalize_type(family: str, native: str) -> str:
    """Map a source's type name (e.g. "character varying(255)", "int(11)", "NUMBER(10,2)",
    "keyword") to one of DATA_TYPES. `family` is the source kind."""
    text = (native or "").strip().lower()
    if text.endswith("[]"):
        return "array"
    args = [a.strip() for a in (_ARGS.findall(text) or [""])[0].split(",")]
    base = " ".join(_NOISE.sub(" ", _ARGS.sub(" ", text)).split()).replace('"', "")
    base = base.rsplit(".", 1)[-1] if "." in base and " " not in base else base
    if family == "oracle" and base == "number":
        whole = args[-1] == "0" if len(args) == 2 else bool(args[0])
        return "integer" if whole else "decimal"
    if base in ("bit", "tinyint") and args == ["1"] and (base == "bit" or family == "mysql"):
        return "boolean"
    for prefix in ("timestamp", "interval"):
        if base.startswith(prefix):
            return prefix
    if base.startswith("time "):
        return "time"
    kind = FAMILY_TYPES.get(family, {}).get(base) or COMMON_TYPES.get(base)
    if kind:
        return kind
    if family == "sqlite":
        return _sqlite_affinity(base)
    if base == "bit":
        return "binary"
    return "other"


def _sqlite_affinity(declared: str) -> str:
    """SQLite's own rules (https://sqlite.org/datatype3.html#affinity_name_examples)."""
    if "int" in declared:
        return "integer"
    if any(word in declared for word in ("char", "clob", "text")):
        return "text"
    if "blob" in declared:
        return "binary"
    if not declared:
        return "other"
    if any(word in declared for word in ("real", "floa", "doub")):
        return "float"
    return "decimal"


# --- sample values -------------------------------------------------------------------------


def sample_text(value) -> str:
    """A sampled value as text, cut to SAMPLE_CHARS characters."""
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value[: SAMPLE_CHARS // 2]).hex()
    elif isinstance(value, datetime.date | datetime.time):
        text = value.isoformat()
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, default=str, ensure_ascii=False)
    elif isinstance(value, decimal.Decimal | uuid.UUID):
        text = str(value)
    elif hasattr(value, "read"):
        text = str(value.read(1, SAMPLE_CHARS))
    else:
        text = str(value)
    return text[:SAMPLE_CHARS]


def collect_samples(columns: list[str], rows, limit: int) -> dict[str, list[str]]:
    """Up to `limit` non-null values per column from rows of values in `columns` order."""
    found = {name: [] for name in columns}
    buckets = [found[name] for name in columns]
    for row in rows:
        for bucket, value in zip(buckets, row, strict=False):
            if value is not None and len(bucket) < limit:
                bucket.append(sample_text(value))
    return found


def pluck(value, parts: list[str]):
    """Values at a dotted path inside a document, through sub-documents and arrays."""
    if isinstance(value, list | tuple):
        for item in value:
            yield from pluck(item, parts)
    elif not parts:
        yield value
    elif isinstance(value, dict):
        for cut in range(len(parts), 0, -1):
            key = ".".join(parts[:cut])
            if key in value:
                yield from pluck(value[key], parts[cut:])
                return
