"""Reading and writing catalog files: JSON and YAML (one nested document), CSV (one row per
field with a `record_type` column) and XLSX (a `catalog` sheet and a `lineage` sheet).

Readers turn a file into a Document of plain dicts, each carrying its location in the file
(`_loc`) for error messages; they check size, rows and (XLSX) the zip's entries before
parsing. Writers take rows from the export and yield text; every CSV and XLSX cell goes
through governance.cells.safe_cell.
"""

import csv
import io
import json
import re
import tempfile
from array import array
from dataclasses import dataclass, field
from itertools import accumulate, islice

import yaml
from django.conf import settings

from governance.cells import FORMULA_PREFIXES, safe_cell

FORMATS = ("json", "yaml", "csv", "xlsx")
CONTENT_TYPES = {
    "json": "application/json",
    "yaml": "application/yaml",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
DOCUMENT_KIND = "steward-catalog"
DOCUMENT_VERSION = 1

# Flat columns: (column, level, key). Level "table" columns repeat on every row of a table;
# timestamps are written on export and ignored on import.
CATALOG_COLUMNS = [
    ("source", "table", "source"),
    ("schema", "table", "schema"),
    ("table", "table", "name"),
    ("kind", "table", "kind"),
    ("table_description", "table", "description"),
    ("table_comment", "table", "comment"),
    ("owner", "table", "owner"),
    ("table_tags", "table", "tags"),
    ("data_domain", "table", "data_domain"),
    ("purpose", "table", "purpose"),
    ("legal_basis", "table", "legal_basis"),
    ("retention_days", "table", "retention_days"),
    ("residency_region", "table", "residency_region"),
    ("criticality", "table", "criticality"),
    ("pci_scope", "table", "pci_scope"),
    ("view_definition", "table", "view_definition"),
    ("table_created_at", "table", "created_at"),
    ("table_updated_at", "table", "updated_at"),
    ("field", "field", "name"),
    ("position", "field", "position"),
    ("data_type", "field", "data_type"),
    ("native_type", "field", "native_type"),
    ("nullable", "field", "nullable"),
    ("default", "field", "default"),
    ("is_primary_key", "field", "is_primary_key"),
    ("foreign_key", "field", "foreign_key"),
    ("field_description", "field", "description"),
    ("field_comment", "field", "comment"),
    ("field_tags", "field", "tags"),
    ("classifications", "field", "classifications"),
    ("field_created_at", "field", "created_at"),
    ("field_updated_at", "field", "updated_at"),
]
LINEAGE_COLUMNS = [
    ("source_table", "edge", "source"),
    ("target_table", "edge", "target"),
    ("origin", "edge", "origin"),
    ("status", "edge", "status"),
    ("confidence", "edge", "confidence"),
    ("edge_created_at", "edge", "created_at"),
    ("edge_updated_at", "edge", "updated_at"),
    ("source_field", "field", "source"),
    ("target_field", "field", "target"),
    ("transformation", "field", "transformation"),
]
CSV_COLUMNS = ["record_type"] + [c for c, _, _ in CATALOG_COLUMNS + LINEAGE_COLUMNS]
RECORD_TYPES = ("table", "field", "lineage")
REQUIRED_CATALOG = ("source", "schema", "table", "field")
REQUIRED_LINEAGE = ("source_table", "target_table")
READ_ONLY_KEYS = {"created_at", "updated_at"}
LIST_SEPARATOR = ";"
# Text no database can hold: PostgreSQL refuses NUL in text, and an unpaired surrogate (a
# lone "\ud83d" escape in JSON) cannot be encoded as UTF-8 by any driver.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_JSON_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f])", re.IGNORECASE)


def limit(name):
    """A bulk import limit: settings.py declares each, with its default."""
    return getattr(settings, name)


def max_upload_bytes():
    return limit("BULK_IMPORT_MAX_BYTES")


def max_depth():
    return limit("BULK_IMPORT_MAX_DEPTH")


class FileRejected(Exception):
    """The file as a whole cannot be read: a 400 with one clear message."""

    def __init__(self, detail, errors=()):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class ErrorLog:
    """Every error of an import, in order. The first ones (a page of the answer) stay in
    memory; the rest go to a temporary file as JSON lines, so that a file with millions of
    errors costs no more memory than one with a thousand. Appended to and counted like a
    list; read by iterating (or first(n))."""

    def __init__(self, items=()):
        self.head, self.count, self.spill = [], 0, None
        self.memory = limit("BULK_IMPORT_ERROR_PAGE_SIZE")
        for item in items:
            self.append(item)

    def append(self, item):
        self.count += 1
        if len(self.head) < self.memory:
            self.head.append(item)
            return
        if self.spill is None:
            self.spill = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.spill.write(json.dumps(item) + "\n")

    def __len__(self):
        return self.count

    def __iter__(self):
        yield from self.head
        if self.spill is not None:
            self.spill.flush()
            self.spill.seek(0)
            for line in self.spill:
                yield json.loads(line)
            self.spill.seek(0, io.SEEK_END)

    def first(self, count):
        return list(islice(self, count))


@dataclass
class Document:
    format: str
    tables: list = field(default_factory=list)
    lineage: list = field(default_factory=list)
    errors: ErrorLog = field(default_factory=ErrorLog)  # problems found while reading


def unstorable(value):
    """What is wrong with a text a database cannot store, or None."""
    found = UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (U+0000), which text cannot hold; remove it"
    return (
        f"contains an unpaired surrogate (U+{ord(found.group()):04X}), which is not a "
        "character; fix the file's encoding"
    )


def error(location, field_name, message, row=None):
    item = {"location": location, "field": field_name, "message": message}
    if row is not None:
        item["row"] = row
    return item


# --- reading -----------------------------------------------------------------------------


def detect(head):
    """The format of a file from its first bytes."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith((b"{", b"[")):
        return "json"
    first_line = text.split(b"\n", 1)[0]
    if first_line.lstrip(b'"').lower().startswith(b"record_type"):
        return "csv"
    return "yaml"


def not_utf8(exc, where=""):
    return FileRejected(
        f"the file is not UTF-8 text{where}: byte 0x{exc.object[exc.start]:02x} cannot be "
        "decoded; save the file as UTF-8"
    )


def binary_stream(source):
    """A seekable binary stream over bytes or a file (an upload, an open file): files are
    read as they are parsed rather than copied into memory first."""
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source)
    if isinstance(source, io.IOBase):
        return source
    inner = getattr(source, "file", None)
    if inner is not None and inner is not source:
        return binary_stream(inner)
    return io.BytesIO(source.read())


EMPTY = []  # shared by every record with no tags or classifications: never mutated
SHARED_KEYS = ("data_type", "native_type", "kind", "origin", "status")


class _Compact:
    """A json object_hook that keeps a large document small: timestamps (export-only) are
    dropped, empty lists and repeated short values (types, kinds) shared."""

    def __init__(self):
        self.values = {}

    def __call__(self, item):
        for key in READ_ONLY_KEYS.intersection(item):
            del item[key]
        for key in ("tags", "classifications"):
            if item.get(key) == []:
                item[key] = EMPTY
        for key in SHARED_KEYS:
            value = item.get(key)
            if value.__class__ is str:
                item[key] = self.values.setdefault(value, value)
        return item


def read(source, fmt=None):
    """Parse bytes or a binary file into a Document; FileRejected when the file cannot be
    read at all."""
    stream = binary_stream(source)
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if size > max_upload_bytes():
        raise FileRejected(f"the file is larger than the limit of {max_upload_bytes()} bytes")
    head = stream.read(4096)
    stream.seek(0)
    if not head.strip():
        raise FileRejected("the file is empty")
    fmt = fmt or detect(head)
    if fmt not in FORMATS:
        raise FileRejected(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "yaml" and size > limit("BULK_IMPORT_MAX_YAML_BYTES"):
        raise FileRejected(
            f"the YAML file is larger than the limit of {limit('BULK_IMPORT_MAX_YAML_BYTES')} "
            "bytes for YAML (the same catalog as JSON may be larger)"
        )
    if fmt == "xlsx":
        return read_xlsx(stream)
    text_stream = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        if fmt == "csv":
            return read_csv(text_stream)
        if fmt == "yaml":
            loaded = load_yaml(text_stream)
        else:
            try:
                text = text_stream.read()
            except UnicodeDecodeError as exc:
                raise not_utf8(exc) from exc
            check_json_shape(text)
            try:
                # Timestamps are export-only: dropped as they are parsed, to save memory.
                loaded = json.loads(text, object_hook=_Compact())
            except ValueError as exc:
                raise FileRejected(f"the file is not valid JSON: {exc}") from exc
            # Unstorable text can only come from an escape: most files skip the walk.
            check_text = UNSTORABLE_JSON_ESCAPE.search(text) is not None
            del text
    finally:
        text_stream.detach()  # the caller's file stays open
    return read_nested(loaded, fmt, check_text=fmt == "yaml" or check_text)


# A JSON string, a run of characters that are neither brackets nor quotes, or a stray quote:
# what is left after removing them is the document's brackets.
_JSON_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+|"')
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes


def check_json_shape(text):
    """Refuse JSON nested deeper than the limit, or holding more objects than the records
    limit, before parsing it: the parser recurses once per level (RecursionError past about
    a thousand), and every object costs a few hundred bytes once parsed, whatever the file's
    size. One pass of a regular expression and a running sum over the brackets: a 5 MB file
    of brackets takes about 0.3 s."""
    brackets = _JSON_NOT_BRACKETS.sub("", text)
    steps = brackets.encode("ascii").translate(_BRACKET_STEP)
    depth = max(accumulate(array("b", steps), initial=0))
    if depth > max_depth():
        raise FileRejected(f"the file nests {depth} levels deep; the limit is {max_depth()}")
    check_objects(brackets.count("{"))


def check_objects(count):
    """Every record of a JSON or YAML file is an object (a mapping); so are a field's
    classifications and a lineage edge's field pairs, which few records carry."""
    cap = limit("BULK_IMPORT_MAX_ROWS")
    if count > cap:
        raise FileRejected(
            f"the file holds more than {cap} objects; the limit is BULK_IMPORT_MAX_ROWS ({cap})"
        )


def load_yaml(stream):
    """Plain data from a YAML stream, built from the parser's events: only the standard
    scalar, mapping and sequence tags (a `!!python/object` tag is refused), no anchors or
    aliases (so no alias expansion), one document; nothing of the node tree is kept, so
    memory follows the data.

    Nesting deeper than the limit (flow brackets, block indentation or "- - -") is refused
    at the first container past it, from the parser's events: the parser's own work per
    token grows with the flow depth (the quadratic time of deeply nested YAML), so stopping
    there bounds it, and unlike a scan of the raw text it cannot mistake a bracket in a
    plain scalar or a comment for nesting."""
    from yaml.events import (
        AliasEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
    )
    from yaml.nodes import ScalarNode

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(stream)
    scalars = yaml.constructor.SafeConstructor.yaml_constructors
    resolver = yaml.resolver.Resolver()
    compact = _Compact()
    stack, root, documents, mappings = [], None, 0, 0
    missing = object()
    deepest = max_depth()

    def refuse(problem):
        return FileRejected(f"the YAML file uses {problem} that is not allowed (plain data only)")

    def add(value):
        nonlocal root
        if not stack:
            root = value
            return
        top = stack[-1]
        if isinstance(top[0], list):
            top[0].append(value)
        elif top[1] is missing:
            try:
                hash(value)
            except TypeError:
                raise FileRejected("the YAML file has a key that is not a plain value") from None
            top[1] = value
        else:
            top[0][top[1]] = value
            top[1] = missing

    try:
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind is ScalarEvent:
                if event.anchor:
                    raise refuse("an anchor")
                tag = event.tag
                if tag in (None, "!"):
                    tag = resolver.resolve(ScalarNode, event.value, event.implicit)
                constructor = scalars.get(tag)
                if constructor is None or tag.endswith(CONTAINER_TAGS):
                    raise refuse(f"a tag ({tag})")
                add(constructor(_SAFE, ScalarNode(tag, event.value, style=event.style)))
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if len(stack) >= deepest:
                    mark = event.start_mark
                    raise FileRejected(
                        f"the file nests more than {deepest} levels deep (line {mark.line + 1}, "
                        f"column {mark.column + 1}); the limit is {deepest}"
                    )
                if event.anchor:
                    raise refuse("an anchor")
                if event.tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
                    raise refuse(f"a tag ({event.tag})")
                if kind is MappingStartEvent:
                    mappings += 1
                    check_objects(mappings)
                stack.append([{} if kind is MappingStartEvent else [], missing])
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                value = stack.pop()[0]
                add(compact(value) if kind is MappingEndEvent else value)
            elif kind is AliasEvent:
                raise refuse("an alias")
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise FileRejected("the YAML file holds more than one document")
            elif kind is StreamEndEvent:
                break
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from exc
    except yaml.YAMLError as exc:
        raise FileRejected(f"the file is not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return root


_SAFE = yaml.constructor.SafeConstructor()
CONTAINER_TAGS = (":seq", ":map", ":omap", ":pairs", ":set")


def check_rows(count):
    cap = limit("BULK_IMPORT_MAX_ROWS")
    if count > cap:
        raise FileRejected(f"the file has more than {cap} records (tables, fields and edges)")


def _check_text(value, pointer, field_name, doc):
    """Strings (keys included) of a parsed JSON or YAML document that a database cannot
    store become errors at their JSON pointer, and are cleaned, so that the rest of the
    import, lookups included, works on plain text."""
    if isinstance(value, str):
        problem = unstorable(value)
        if problem is None:
            return value
        doc.errors.append(error(pointer, field_name, problem))
        return UNSTORABLE.sub("", value)
    if isinstance(value, list):
        for index, item in enumerate(value):
            checked = _check_text(item, f"{pointer}/{index}", field_name, doc)
            if checked is not item:
                value[index] = checked
    elif isinstance(value, dict):
        for key in list(value):
            name = key
            if isinstance(key, str) and unstorable(key):
                name = UNSTORABLE.sub("", key)
                doc.errors.append(error(f"{pointer}/{name}", name, unstorable(key)))
                value[name] = value.pop(key)
            item = value[name]
            checked = _check_text(item, f"{pointer}/{name}", name, doc)
            if checked is not item:
                value[name] = checked
    return value


def read_nested(loaded, fmt, check_text=True):
    doc = Document(fmt)
    if check_text:
        loaded = _check_text(loaded, "", None, doc)
    if not isinstance(loaded, dict):
        raise FileRejected('the document must be an object with "tables" and "lineage" lists')
    unknown = set(loaded) - {"kind", "version", "tables", "lineage", "exported_at"}
    if unknown:
        raise FileRejected(f"unknown top-level keys: {', '.join(sorted(map(str, unknown)))}")
    tables = loaded.get("tables") or []
    lineage = loaded.get("lineage") or []
    for key, value in (("tables", tables), ("lineage", lineage)):
        if not isinstance(value, list):
            raise FileRejected(f'"{key}" must be a list')
    count = len(tables) + len(lineage)
    for table in tables:
        if isinstance(table, dict) and isinstance(table.get("fields"), list):
            count += len(table["fields"])
    check_rows(count)
    for index, table in enumerate(tables):
        loc = f"/tables/{index}"
        if not isinstance(table, dict):
            doc.errors.append(error(loc, None, "a table must be an object"))
            continue
        fields = table.get("fields") or []
        if not isinstance(fields, list):
            doc.errors.append(error(f"{loc}/fields", "fields", "must be a list"))
            fields = []
        # Records are the parsed dicts themselves, marked with their location: no copies.
        _drop_private(table, loc, doc)
        table["_loc"], table["fields"] = loc, []
        for position, item in enumerate(fields):
            floc = f"{loc}/fields/{position}"
            if not isinstance(item, dict):
                doc.errors.append(error(floc, None, "a field must be an object"))
                continue
            _drop_private(item, floc, doc)
            item["_loc"] = floc
            table["fields"].append(item)
        doc.tables.append(table)
    for index, edge in enumerate(lineage):
        loc = f"/lineage/{index}"
        if not isinstance(edge, dict):
            doc.errors.append(error(loc, None, "a lineage edge must be an object"))
            continue
        fields = edge.get("fields") or []
        if not isinstance(fields, list):
            doc.errors.append(error(f"{loc}/fields", "fields", "must be a list"))
            fields = []
        _drop_private(edge, loc, doc)
        edge["_loc"], edge["fields"] = loc, []
        for position, item in enumerate(fields):
            floc = f"{loc}/fields/{position}"
            if not isinstance(item, dict):
                doc.errors.append(error(floc, None, "a field edge must be an object"))
                continue
            _drop_private(item, floc, doc)
            item["_loc"] = floc
            edge["fields"].append(item)
        doc.lineage.append(edge)
    return doc


def _drop_private(record, loc, doc):
    """Keys starting with "_" are the reader's own markers: never taken from a file."""
    for key in [k for k in record if not isinstance(k, str) or k.startswith("_")]:
        record.pop(key)
        doc.errors.append(error(f"{loc}/{key}", str(key), "unknown key"))


def unescape(value):
    """Undo the export's formula escaping: a quote before a formula prefix."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


def split_list(value):
    return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]


SHARED_CELLS = 65_536


class FlatReader:
    """Groups flat rows (one per field, or per field edge) into nested records. Rows are
    lists of cells in header order; the header's layout is worked out once."""

    def __init__(self, doc):
        self.doc = doc
        self.tables = {}  # (source, schema, table) -> (record, first row's table cells, row)
        self.edges = {}
        self.layouts = {}
        self.shared = {}  # repeated short cells (types, flags, positions) kept once, up to
        # SHARED_CELLS of them: distinct values gain nothing from it
        self.names = []

    def set_header(self, names):
        self.names = names
        index = {name: i for i, name in enumerate(names) if name}
        for kind, columns in (("catalog", CATALOG_COLUMNS), ("lineage", LINEAGE_COLUMNS)):
            parts = {}
            for level in ("table", "field", "edge"):
                layout = [
                    (index[c], c, k)
                    for c, lv, k in columns
                    if lv == level and c in index and k not in READ_ONLY_KEYS
                ]
                # One key -> column dict per level, shared by every record for error messages.
                parts[level] = (layout, {k: c for _, c, k in layout})
            self.layouts[kind] = parts

    def check_text(self, row, loc, number):
        """Cells (text, in header order) a database cannot store become errors naming the
        row and column, and are cleaned."""
        if UNSTORABLE.search("".join(row)) is None:
            return
        for index, value in enumerate(row):
            problem = unstorable(value)
            if problem is not None:
                self.doc.errors.append(error(loc, self.names[index] or None, problem, number))
                row[index] = UNSTORABLE.sub("", value)

    def _clean(self, column, value):
        if value is None:
            return ""
        if not isinstance(value, str):
            return value
        if column != "default":
            value = value.strip()
        if value[:1] == "'":
            return unescape(value)
        if len(value) <= 24:
            if len(self.shared) < SHARED_CELLS:
                return self.shared.setdefault(value, value)
            return self.shared.get(value, value)
        return value

    def _value(self, column, key, value, loc, row):
        if key == "tags":
            if value == "":
                return EMPTY
            return split_list(value) if isinstance(value, str) else value
        if key == "classifications":
            if value in ("", None):
                return EMPTY
            try:
                return json.loads(value)
            except ValueError as exc:
                self.doc.errors.append(
                    error(loc, column, f"not a JSON list of classifications: {exc}", row)
                )
                return []
        if key == "default" and value == "":
            return None
        return value

    def _group(self, groups, target, ident, values, layout, names, loc, number, what):
        """The record for `ident`, made from this row if it is the first; else the row's
        group columns are checked against the first row's."""
        known = groups.get(ident)
        if known is None:
            record = {"_loc": loc, "_row": number, "_names": names, "fields": []}
            for (_, column, key), value in zip(layout, values, strict=True):
                record[key] = self._value(column, key, value, loc, number)
            groups[ident] = (record, values, number)
            target.append(record)
            return record, True
        record, first, first_row = known
        if values != first:
            for (_, column, _), value, before in zip(layout, values, first, strict=True):
                if str(value) != str(before):
                    self.doc.errors.append(
                        error(
                            loc,
                            column,
                            f"differs from row {first_row} of the same {what} ({before!r} "
                            f"there); a {what}'s columns must be the same on each of its rows",
                            number,
                        )
                    )
        return record, False

    def add_catalog_row(self, row, loc, number):
        clean = self._clean
        (t_layout, t_names), (f_layout, f_names) = (
            self.layouts["catalog"]["table"],
            self.layouts["catalog"]["field"],
        )
        t_values = tuple(clean(c, row[i]) for i, c, _ in t_layout)
        ident = tuple(
            str(v)
            for (_, c, _), v in zip(t_layout, t_values, strict=True)
            if c in ("source", "schema", "table")
        )
        record, _ = self._group(
            self.tables, self.doc.tables, ident, t_values, t_layout, t_names, loc, number, "table"
        )
        f_values = [clean(c, row[i]) for i, c, _ in f_layout]
        item = {"_loc": loc, "_row": number, "_names": f_names}
        for (_, column, key), value in zip(f_layout, f_values, strict=True):
            item[key] = self._value(column, key, value, loc, number)
        if item.get("name") in ("", None):
            if any(v not in ("", None) for v in f_values):
                self.doc.errors.append(
                    error(loc, "field", "a row with field columns needs a field name", number)
                )
            return
        record["fields"].append(item)

    def add_lineage_row(self, row, loc, number):
        clean = self._clean
        (e_layout, e_names), (f_layout, f_names) = (
            self.layouts["lineage"]["edge"],
            self.layouts["lineage"]["field"],
        )
        e_values = tuple(clean(c, row[i]) for i, c, _ in e_layout)
        ident = tuple(
            str(v) for (_, c, _), v in zip(e_layout, e_values, strict=True) if c in REQUIRED_LINEAGE
        )
        record, first = self._group(
            self.edges, self.doc.lineage, ident, e_values, e_layout, e_names, loc, number, "edge"
        )
        if first:
            for key in ("tags", "classifications"):
                record.pop(key, None)
        f_values = [clean(c, row[i]) for i, c, _ in f_layout]
        if any(v not in ("", None) for v in f_values):
            item = {"_loc": loc, "_row": number, "_names": f_names}
            for (_, _, key), value in zip(f_layout, f_values, strict=True):
                item[key] = value
            record["fields"].append(item)


def _check_header(header, allowed, required, where):
    names = [str(h).strip() if h is not None else "" for h in header]
    unknown = [n for n in names if n and n not in allowed]
    missing = [n for n in required if n not in names]
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if duplicated:
        problems.append(f"repeated column(s) {', '.join(duplicated)}")
    if problems:
        raise FileRejected(
            f"wrong header in {where}: {'; '.join(problems)}. "
            f"Expected columns: {', '.join(allowed)}",
            [error(f"{where} row 1", None, "; ".join(problems), 1)],
        )
    return names


def read_csv(text_stream):
    doc = Document("csv")
    reader = csv.reader(text_stream)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("the CSV file is empty") from None
    except UnicodeDecodeError as exc:
        raise not_utf8(exc, " (in the header)") from exc
    except csv.Error as exc:
        raise FileRejected(f"the file is not valid CSV: {exc}") from exc
    names = _check_header(header, CSV_COLUMNS, ("record_type", *REQUIRED_CATALOG), "the CSV file")
    flat = FlatReader(doc)
    flat.set_header(names)
    kind_at = names.index("record_type")
    cap = limit("BULK_IMPORT_MAX_ROWS")
    try:
        for number, values in enumerate(reader, start=2):
            if number - 1 > cap:
                raise FileRejected(f"the file has more than {cap} rows")
            if not any(v.strip() for v in values):
                continue
            loc = f"row {number}"
            if len(values) != len(names):
                doc.errors.append(
                    error(
                        loc, None, f"{len(values)} cells where the header has {len(names)}", number
                    )
                )
                continue
            flat.check_text(values, loc, number)
            kind = values[kind_at].strip()
            if kind in ("table", "field"):
                flat.add_catalog_row(values, loc, number)
            elif kind == "lineage":
                flat.add_lineage_row(values, loc, number)
            else:
                doc.errors.append(
                    error(
                        loc,
                        "record_type",
                        f"{kind!r} is not one of {', '.join(RECORD_TYPES)}",
                        number,
                    )
                )
    except csv.Error as exc:
        raise FileRejected(f"the file is not valid CSV near row {reader.line_num}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise not_utf8(exc, f" (near row {reader.line_num + 1})") from exc
    return doc


def read_xlsx(stream):
    """The workbook's catalog and lineage sheets, after governance.bulk.xlsx has checked the
    file's limits; rows are read as a stream (openpyxl's read-only mode)."""
    import openpyxl

    from . import xlsx

    xlsx.check(stream)
    try:
        book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise FileRejected(f"the file is not a readable XLSX workbook: {exc}") from exc
    doc = Document("xlsx")
    if "catalog" not in book.sheetnames:
        raise FileRejected(
            f"the workbook has no sheet named 'catalog' (sheets: {', '.join(book.sheetnames)})"
        )
    flat = FlatReader(doc)
    cap = min(limit("BULK_IMPORT_MAX_ROWS"), xlsx.limits()["rows"])
    seen = 0
    sheets = [("catalog", CATALOG_COLUMNS, REQUIRED_CATALOG, flat.add_catalog_row)]
    if "lineage" in book.sheetnames:
        sheets.append(("lineage", LINEAGE_COLUMNS, REQUIRED_LINEAGE, flat.add_lineage_row))
    try:
        for sheet_name, columns, required, add in sheets:
            sheet = book[sheet_name]
            sheet.reset_dimensions()  # rows as long as their cells, whatever the file declares
            rows = sheet.iter_rows(values_only=True)
            header = next(rows, None)
            if header is None:
                continue
            allowed = [c for c, _, _ in columns]
            names = _check_header(header, allowed, required, f"sheet {sheet_name!r}")
            flat.set_header(names)
            width = len(names)
            for number, values in enumerate(rows, start=2):
                seen += 1  # empty rows too: a gap of a million rows is a million rows of work
                if seen > cap:
                    raise FileRejected(f"the file has more than {cap} rows")
                if not any(v not in (None, "") for v in values):
                    continue
                row = [_xlsx_cell(v) for v in values[:width]]
                row += [""] * (width - len(row))
                loc = f"{sheet_name}!row {number}"
                flat.check_text(row, loc, number)
                add(row, loc, number)
    finally:
        book.close()
    return doc


def _xlsx_cell(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --- writing -----------------------------------------------------------------------------


def flat_cell(column, value):
    """A value as a CSV or XLSX cell: lists and booleans as text, every text made safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if column == "classifications":
            value = json.dumps(value, separators=(",", ":")) if value else ""
        else:
            value = f"{LIST_SEPARATOR} ".join(value)
    return safe_cell(value)


def table_rows(table):
    """Flat catalog rows of one exported table: one per field, or one for a bare table."""
    base = {c: flat_cell(c, table.get(k)) for c, level, k in CATALOG_COLUMNS if level == "table"}
    if not table["fields"]:
        yield "table", base
        return
    for item in table["fields"]:
        row = dict(base)
        for column, level, key in CATALOG_COLUMNS:
            if level == "field":
                row[column] = flat_cell(column, item.get(key))
        yield "field", row


def edge_rows(edge):
    base = {c: flat_cell(c, edge.get(k)) for c, level, k in LINEAGE_COLUMNS if level == "edge"}
    if not edge["fields"]:
        yield base
        return
    for item in edge["fields"]:
        row = dict(base)
        for column, level, key in LINEAGE_COLUMNS:
            if level == "field":
                row[column] = flat_cell(column, item.get(key))
        yield row


class _Line:
    def __init__(self):
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def __call__(self, values):
        self.writer.writerow(values)
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


def write_csv(tables, edges):
    line = _Line()
    yield "\ufeff" + line(CSV_COLUMNS)  # the BOM lets Excel read UTF-8
    chunk = []
    for table in tables:
        for record_type, row in table_rows(table):
            chunk.append(line([record_type, *(row.get(c, "") for c in CSV_COLUMNS[1:])]))
        if len(chunk) > 500:
            yield "".join(chunk)
            chunk = []
    for edge in edges:
        for row in edge_rows(edge):
            chunk.append(line(["lineage", *(row.get(c, "") for c in CSV_COLUMNS[1:])]))
        if len(chunk) > 500:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk)


def _json_header():
    return {"kind": DOCUMENT_KIND, "version": DOCUMENT_VERSION}


def write_json(tables, edges):
    head = json.dumps(_json_header())[:-1]
    yield head + ', "tables": ['
    yield from _json_items(tables)
    yield '], "lineage": ['
    yield from _json_items(edges)
    yield "]}\n"


def _json_items(items):
    chunk, first = [], True
    for item in items:
        chunk.append(("\n" if first else ",\n") + json.dumps(item, ensure_ascii=False))
        first = False
        if len(chunk) >= 200:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk)


def _yaml_dump(data):
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(
        data, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def write_yaml(tables, edges):
    yield _yaml_dump(_json_header())
    for key, items in (("tables", tables), ("lineage", edges)):
        chunk, empty = [f"{key}:\n"], True
        for item in items:
            chunk.append(_yaml_dump([item]))
            empty = False
            if len(chunk) >= 200:
                yield "".join(chunk)
                chunk = []
        if empty:
            chunk = [f"{key}: []\n"]
        yield "".join(chunk)


def write_xlsx(tables, edges, target):
    """Write the workbook to the binary file `target` (openpyxl's write-only mode keeps rows
    out of memory)."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    catalog = book.create_sheet("catalog")
    catalog_columns = [c for c, _, _ in CATALOG_COLUMNS]
    catalog.append(catalog_columns)
    for table in tables:
        for _, row in table_rows(table):
            catalog.append([row.get(c, "") for c in catalog_columns])
    lineage = book.create_sheet("lineage")
    lineage_columns = [c for c, _, _ in LINEAGE_COLUMNS]
    lineage.append(lineage_columns)
    for edge in edges:
        for row in edge_rows(edge):
            lineage.append([row.get(c, "") for c in lineage_columns])
    book.save(target)
