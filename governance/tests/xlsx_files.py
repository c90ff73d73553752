"""Build XLSX files of any size quickly, for the limit tests and bench/bulk_limits.py.

The parts are written straight into the zip as the rows are generated (openpyxl's writer
takes minutes for millions of cells), so building a file costs little memory. A workbook has
a `catalog` sheet with the given header; its rows are generated from a function of the row
number; text goes inline, or into the shared strings table with `shared=True`.
"""

import zipfile
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
OFFICE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
PACKAGE = "http://schemas.openxmlformats.org/package/2006"


def override(part, kind):
    return f'<Override PartName="/{part}" ContentType="{OFFICE}.{kind}+xml"/>\n'


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<Types xmlns="{PACKAGE}/content-types">\n'
    '<Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/>\n'
    '<Default Extension="xml" ContentType="application/xml"/>\n'
    + override("xl/workbook.xml", "sheet.main")
    + override("xl/worksheets/sheet1.xml", "worksheet")
    + "{shared}</Types>"
)
SHARED_TYPE = override("xl/sharedStrings.xml", "sharedStrings")
ROOT_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{PACKAGE}/relationships">
<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>
<sheet name="catalog" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WORKBOOK_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{PACKAGE}/relationships">
<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>
{{shared}}</Relationships>"""
SHARED_REL = f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>\n'


def column_name(index):
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def write_xlsx(
    path,
    header,
    rows,
    count,
    shared=False,
    inline=(),
    compact=False,
    budget=None,
    dimension=None,
    extra_parts=(),
):
    """Write up to `count` rows (row(i) -> list of cell texts, after the header) as the
    catalog sheet; returns how many. With shared=True every distinct text goes once into the
    shared strings table (but for the column indexes in `inline`); compact=True leaves out
    cell references and writes digits as numbers (the smallest XML a cell can take);
    `budget` stops before the sheet's XML passes
    that many bytes. `dimension` overrides the sheet's declared dimension (a lying one);
    `extra_parts` are (name, text) written as they are, in place of a generated part of
    the same name."""
    extra_parts = dict(extra_parts)
    strings = {}
    letters = [column_name(i) for i in range(max(len(header), 64))]

    def cell(column, number, text):
        ref = "" if compact else f' r="{letters[column]}{number}"'
        if compact and text.isdigit():
            return f"<c{ref}><v>{text}</v></c>"
        if shared and column not in inline:
            index = strings.setdefault(text, len(strings))
            return f'<c{ref} t="s"><v>{index}</v></c>'
        return f'<c{ref} t="inlineStr"><is><t>{escape(text)}</t></is></c>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                f'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="{MAIN}">'.encode()
            )
            if dimension:
                sheet.write(f'<dimension ref="{dimension}"/>'.encode())
            sheet.write(b"<sheetData>")
            buffer, written = [], 0
            for number, values in enumerate([header, *(rows(i) for i in range(count))], 1):
                if len(letters) < len(values):
                    letters = [column_name(i) for i in range(len(values))]
                cells = "".join(cell(i, number, v) for i, v in enumerate(values))
                line = f"<row>{cells}</row>" if compact else f'<row r="{number}">{cells}</row>'
                written += len(line)
                if budget is not None and written > budget:
                    number -= 1
                    break
                buffer.append(line)
                if len(buffer) >= 1000:
                    sheet.write("".join(buffer).encode())
                    buffer = []
            sheet.write(("".join(buffer) + "</sheetData></worksheet>").encode())
        if shared and "xl/sharedStrings.xml" not in extra_parts:
            with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as table:
                table.write(
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="{MAIN}" '
                    f'count="{len(strings)}" uniqueCount="{len(strings)}">'.encode()
                )
                buffer = []
                for text in strings:
                    buffer.append(f"<si><t>{escape(text)}</t></si>")
                    if len(buffer) >= 1000:
                        table.write("".join(buffer).encode())
                        buffer = []
                table.write(("".join(buffer) + "</sst>").encode())
        archive.writestr("[Content_Types].xml", CONTENT_TYPES.format(shared=SHARED_TYPE * shared))
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr(
            "xl/_rels/workbook.xml.rels", WORKBOOK_RELS.format(shared=SHARED_REL * shared)
        )
        for name, content in extra_parts.items():
            archive.writestr(name, content)
    return number - 1


FIELD_HEADER = ["source", "schema", "table", "field", "data_type", "field_description"]


def field_rows(source="shop", fields_per_table=25, description=lambda i: f"field {i}"):
    """Rows of the catalog sheet: 25 fields per table in `source`."""

    def row(i):
        table = f"t{i // fields_per_table}"
        return [source, "public", table, f"f{i % fields_per_table}", "integer", description(i)]

    return row


def largest_accepted(path, bounds):
    """The XLSX file within `bounds` (governance.bulk.xlsx.limits()) that makes an import
    keep the most: as many rows as the shared strings, cells and rows limits allow, four
    distinct shared strings a row as long as the shared strings' size limit allows, and an
    inline comment on every row taking the rest of the expanded-size limit."""
    header = ["source", "schema", "table", "field", "native_type", "foreign_key"]
    header += ["field_description", "position", "default", "nullable", "field_comment"]
    count = min(bounds["rows"], int(bounds["shared"] / 4.04), bounds["cells"] // len(header))
    count -= 20  # a table name every 25 rows is a shared string too
    length = (bounds["shared_bytes"] - 1024 * 1024) // (4 * count) - 24  # <si><t>, 8, </t></si>
    pad = "a" * length
    shared_xml = count * 4 * (length + 24) + 1024 * 1024
    room = bounds["expanded"] - shared_xml - 64 * 1024
    comment = "c" * (room // count - 200)

    def row(i):
        values = ["shop", "public", f"t{i // 25}", f"f{i:07d}{pad}"[:500]]
        values += [f"n{i:07d}{pad}"[:200], f"k{i:07d}{pad}", f"d{i:07d}{pad}"]
        return values + [str(i), str(i + 1), "true", f"{i:07d}{comment}"]

    count = write_xlsx(
        path, header, row, count, shared=True, inline={10}, compact=True, budget=room
    )
    return (
        f"{count + 1} rows x {len(header)} columns, {4 * count} distinct shared strings of "
        f"{length + 8} characters, inline comments of {len(comment) + 7}"
    )


def declare_size(path, name, size):
    """Make the zip's headers (local and central) declare `size` expanded bytes for entry
    `name`, whatever it holds: a zip that lies about what it inflates to."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    declared = size.to_bytes(4, "little")
    raw[info.header_offset + 22 : info.header_offset + 26] = declared
    position = raw.rfind(b"PK\x05\x06")  # the end record gives the central directory
    position = int.from_bytes(raw[position + 16 : position + 20], "little")
    while raw[position : position + 4] == b"PK\x01\x02":
        lengths = [
            int.from_bytes(raw[position + at : position + at + 2], "little") for at in (28, 30, 32)
        ]
        if raw[position + 46 : position + 46 + lengths[0]] == name.encode():
            raw[position + 24 : position + 28] = declared
        position += 46 + sum(lengths)
    path.write_bytes(bytes(raw))
