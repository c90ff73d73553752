"""The one export of a bundle: every registered section's records that the user may view,
streamed chunk by chunk so that memory stays flat whatever the size, in JSON, YAML, CSV or
XLSX. Secrets are never part of it."""

import tempfile
from dataclasses import dataclass

from django.utils import timezone

from governance import accesslog

from . import formats
from .sections import Run


class ExportRefused(ValueError):
    pass


@dataclass
class Export:
    chunks: object  # an iterator of bytes
    content_type: str
    filename: str
    tables: int


class ExportRun(Run):
    """One export: the user, the filters (catalog: source, schema, tag, updated_since,
    selected), progress(done, total), and a summary sections fill in for the access log."""

    def __init__(self, user, filters, progress):
        self.filters, self.progress, self.summary = filters, progress, {}
        super().__init__(user)


def _encoded(chunks):
    for text in chunks:
        if text:
            yield text.encode("utf-8")


def _xlsx_chunks(tables, edges):
    with tempfile.TemporaryFile(suffix=".xlsx") as handle:
        formats.write_xlsx(tables, edges, handle)
        handle.seek(0)
        while block := handle.read(256 * 1024):
            yield block


def bulk_export(*, user, format, filters=None, request=None, progress=None):
    """What the user may view, filtered, as a stream in `format`; records an access-log
    "export" entry."""
    if format not in formats.FORMATS:
        raise ExportRefused(
            f"unknown format {format!r}; choose one of {', '.join(formats.FORMATS)}"
        )
    filters = {k: v for k, v in (filters or {}).items() if v is not None and v != ""}
    run = ExportRun(user, filters, progress)
    parts = {}
    for section in run.sections.values():
        parts.update(section.export())
    accesslog.record(
        "export",
        user=user,
        request=request,
        detail={
            "what": "catalog",
            "format": format,
            "filters": {k: str(v) for k, v in filters.items() if k != "selected"},
            **run.summary,
        },
    )
    tables, edges = parts.get("tables", ()), parts.get("lineage", ())
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    filename = f"catalog-{stamp}.{format}"
    if format == "xlsx":
        chunks = _xlsx_chunks(tables, edges)
    else:
        writer = {"json": formats.write_json, "yaml": formats.write_yaml, "csv": formats.write_csv}
        chunks = _encoded(writer[format](tables, edges))
    return Export(chunks, formats.CONTENT_TYPES[format], filename, run.summary.get("tables", 0))
