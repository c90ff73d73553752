"""Limits of an XLSX upload, checked before openpyxl opens it.

An XLSX is a zip of XML parts. openpyxl's read-only mode streams the worksheets row by row,
but it reads every other part whole, keeps every shared string in memory, and builds each
row (and each shared string) whole before handing it over. So, in this order:

1. From the zip's central directory, before anything is decompressed: the number of
   entries, the declared expanded size of all of them, and each one's compression ratio.
2. From [Content_Types].xml: which parts are worksheets and shared strings (streamed). Every
   other part is read whole by openpyxl and must be small; the shared strings have their
   own size limit.
3. Every XML part streamed once through expat, keeping nothing: a DTD is refused (so no
   entity expansion); the rows, cells and shared strings of all parts are counted against
   their limits as they come, and the elements of any one row or shared string against a
   fixed bound. (zipfile never inflates an entry past its declared size: a zip that lies
   about it fails its CRC check here, before openpyxl sees it.)

The defaults are measured with bench/bulk_limits.py: the import of a file at any of these
limits stays under 500 MB (governance/tests/test_bulk_memory.py keeps that).
"""

import zipfile
from xml.parsers import expat

from .formats import FileRejected, limit

MB = 1024 * 1024  # a zip entry this small is never refused for its compression ratio
WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
SHARED_STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
CONTENT_TYPES = "[Content_Types].xml"
# Excel's own limits (16,384 columns, 32,767 characters a cell) keep a real row or shared
# string far below this; openpyxl builds one whole before handing it over.
MAX_ELEMENTS_IN_ONE = 100_000


def limits():
    return {
        "entries": limit("BULK_IMPORT_MAX_XLSX_ENTRIES"),
        "expanded": limit("BULK_IMPORT_MAX_XLSX_UNCOMPRESSED_BYTES"),
        "ratio": limit("BULK_IMPORT_MAX_XLSX_RATIO"),
        "part": limit("BULK_IMPORT_MAX_XLSX_PART_BYTES"),
        "shared_bytes": limit("BULK_IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES"),
        "shared": limit("BULK_IMPORT_MAX_XLSX_SHARED_STRINGS"),
        "cells": limit("BULK_IMPORT_MAX_XLSX_CELLS"),
        "rows": limit("BULK_IMPORT_MAX_XLSX_ROWS"),
    }


def check(stream):
    """Refuse an XLSX file past any limit, with a message naming it; the stream is left
    where it was found."""
    start = stream.tell()
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise FileRejected(f"the file is not a valid XLSX (zip) file: {exc}") from exc
    bounds = limits()
    entries = archive.infolist()
    check_directory(entries, bounds)
    types = content_types(archive, bounds)
    scan = PartScan(bounds)
    for info in entries:
        kind = types(info.filename)
        if kind == SHARED_STRINGS and info.file_size > bounds["shared_bytes"]:
            raise FileRejected(
                f"the XLSX shared strings ({info.filename!r}) expand to {info.file_size} bytes; "
                f"the limit is {bounds['shared_bytes']}"
            )
        if kind not in (WORKSHEET, SHARED_STRINGS) and info.file_size > bounds["part"]:
            raise FileRejected(
                f"the XLSX part {info.filename!r} expands to {info.file_size} bytes; parts "
                f"other than sheets and shared strings are read whole, the limit is "
                f"{bounds['part']}"
            )
        if info.filename.endswith((".xml", ".rels")):
            scan.part(archive, info)
    stream.seek(start)


def check_directory(entries, bounds):
    if len(entries) > bounds["entries"]:
        raise FileRejected(
            f"the XLSX file has {len(entries)} entries; the limit is {bounds['entries']}"
        )
    total = sum(info.file_size for info in entries)
    if total > bounds["expanded"]:
        raise FileRejected(
            f"the XLSX file would expand to {total} bytes; the limit is {bounds['expanded']}"
        )
    for info in entries:
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > MB and ratio > bounds["ratio"]:
            raise FileRejected(
                f"the XLSX entry {info.filename!r} expands {ratio} times (limit "
                f"{bounds['ratio']}): refused as a possible zip bomb"
            )


def content_types(archive, bounds):
    """A function giving a part's content type, from [Content_Types].xml."""
    try:
        info = archive.getinfo(CONTENT_TYPES)
    except KeyError:
        raise FileRejected(
            "the file is not an XLSX workbook: it has no [Content_Types].xml"
        ) from None
    if info.file_size > bounds["part"]:
        raise FileRejected(f"the XLSX {CONTENT_TYPES} is larger than {bounds['part']} bytes")
    overrides, defaults = {}, {}

    def start(name, attrs):
        local = name[name.rfind(":") + 1 :]
        if local == "Override" and "PartName" in attrs:
            overrides[attrs["PartName"].lstrip("/")] = attrs.get("ContentType", "")
        elif local == "Default" and "Extension" in attrs:
            defaults[attrs["Extension"].lower()] = attrs.get("ContentType", "")

    PartScan(bounds, start=start).part(archive, info)
    return lambda name: overrides.get(name) or defaults.get(name.rpartition(".")[2].lower(), "")


class PartScan:
    """Streams XML parts through expat, counting rows, cells and shared strings across all of
    them; nothing of the document is kept."""

    def __init__(self, bounds, start=None):
        self.bounds = bounds
        self.rows = self.cells = self.strings = self.inside = 0
        self.also = start  # another handler of each element (content types)

    def refuse(self, message):
        raise FileRejected(f"the XLSX file {message}")

    def start(self, name, attrs):
        local = name[name.rfind(":") + 1 :]
        self.inside += 1
        if local == "c":
            self.cells += 1
            if self.cells > self.bounds["cells"]:
                self.refuse(f"has more than {self.bounds['cells']} cells")
        elif local == "row":
            self.rows, self.inside = self.rows + 1, 0
            if self.rows > self.bounds["rows"]:
                self.refuse(f"has more than {self.bounds['rows']} rows")
        elif local == "si":
            self.strings, self.inside = self.strings + 1, 0
            if self.strings > self.bounds["shared"]:
                self.refuse(f"has more than {self.bounds['shared']} shared strings")
        if self.inside > MAX_ELEMENTS_IN_ONE:
            self.refuse(
                f"has more than {MAX_ELEMENTS_IN_ONE} XML elements in one row, shared string "
                "or other block that is read whole"
            )
        if self.also is not None:
            self.also(name, attrs)

    def doctype(self, *args):
        self.refuse("declares a DTD, which XLSX parts never need (refused: entity expansion)")

    def part(self, archive, info):
        self.inside = 0
        parser = expat.ParserCreate()
        parser.StartElementHandler = self.start
        parser.StartDoctypeDeclHandler = self.doctype
        parser.EntityDeclHandler = self.doctype
        try:
            with archive.open(info) as handle:
                while chunk := handle.read(1 << 16):
                    parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except expat.ExpatError as exc:
            self.refuse(f"part {info.filename!r} is not valid XML: {exc}")
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
            self.refuse(f"entry {info.filename!r} cannot be read: {exc}")
