#!/usr/bin/env python3
"""Bulk import files at each limit and past it: wall time and peak memory of each import.

Builds, under bench/results/bulk_limits/, files that sit exactly at one of the bulk import's
limits (accepted: they must import in under 500 MB) and hostile files past them or shaped to
hurt (refused: they must be refused fast and small), then imports each in a fresh process
(governance.bulk.importer.bulk_import as a superuser, dry run unless --write) and reports its
outcome, wall time, peak RSS and the RSS after Django's setup (VmHWM and VmRSS of
/proc/self/status: a child's getrusage ru_maxrss on Linux starts from the RSS its parent had
when it was spawned, which here includes the files just built).

Cases (--cases, comma-separated; default all but the slow csv-rows and json-bytes):
  xlsx-rows       BULK_IMPORT_MAX_XLSX_ROWS rows of the six usual columns, inline text
  xlsx-cells      BULK_IMPORT_MAX_XLSX_CELLS cells: rows of every catalog column
  xlsx-expanded   the expanded-size limit filled with long unique descriptions
  xlsx-shared     BULK_IMPORT_MAX_XLSX_SHARED_STRINGS distinct short shared strings
  xlsx-shared-mb  the shared strings' size limit filled with long distinct strings
  xlsx-all        at the rows, cells, shared strings and shared strings' size limits at once
  xlsx-worst      xlsx-all, and the rest of the expanded-size limit as inline text
  csv-rows        BULK_IMPORT_MAX_ROWS rows of CSV (slow)
  json-bytes      a JSON file at BULK_IMPORT_MAX_BYTES of tables with long descriptions (slow)
  json-objects    BULK_IMPORT_MAX_ROWS tables as the smallest JSON objects (slow)
  json-too-many   one object more than that: refused before parsing
  yaml-objects    BULK_IMPORT_MAX_ROWS tables as the smallest YAML mappings (slow)
  yaml-bytes      a YAML file at BULK_IMPORT_MAX_YAML_BYTES of tables with long descriptions (slow)
  csv-bytes       a CSV file at BULK_IMPORT_MAX_BYTES of fields with long descriptions (slow)
  bomb            one entry that expands 1,000 times
  lying-size      an entry whose headers declare 1 KB and that expands to 300 MB
  wide-row        one row of 2 million cells
  dimension       a sheet that declares A1:XFD1048576 and holds 3 rows
  shared-flood    more shared strings than the limit, each short
  laughs          an XML part with a DTD of nested entities ("billion laughs")
  deep-json       5 MB of "["
  deep-yaml       5 MB of "- " (block nesting)

    .venv/bin/python bench/bulk_limits.py [--cases xlsx-rows,bomb] [--write] [--keep]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_limits"
FILES = benchlib.RESULTS_DIR / "bulk_limits"
SLOW = ("csv-rows", "json-bytes", "json-objects", "yaml-objects", "yaml-bytes", "csv-bytes")
GOAL_MB = 500


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="")
    parser.add_argument("--write", action="store_true", help="import for real, not a dry run")
    parser.add_argument("--keep", action="store_true", help="keep the built files")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "WRITE"), help=argparse.SUPPRESS)
    return parser.parse_args()


# --- files -----------------------------------------------------------------------------------


def build(case, path):
    """Build the file of `case` at `path`; returns what it is, in words."""
    from governance.bulk import formats, xlsx
    from governance.tests.xlsx_files import (
        FIELD_HEADER,
        field_rows,
        largest_accepted,
        write_xlsx,
    )

    bounds = xlsx.limits()
    room = bounds["expanded"] - 64 * 1024  # the sheet's XML; the other parts take the rest
    if case == "xlsx-rows":
        count = write_xlsx(path, FIELD_HEADER, field_rows(), bounds["rows"] - 1)
        return f"{count + 1} rows x 6 columns"
    if case == "xlsx-cells":
        # Valid rows whose field-level cells are all distinct (numbers: the smallest cells);
        # table-level cells are the same on a table's rows.
        header = ["source", "schema", "table", "table_description", "field", "position"]
        header += ["data_type", "native_type", "default", "foreign_key", "field_description"]
        header += ["field_comment", "nullable", "is_primary_key"]

        def row(i):
            table = ["shop", "public", f"t{i // 25}", str(i // 25), f"f{i % 25}", str(i % 25)]
            return table + [str(i * 10 + k) for k in range(6)] + ["true", "false"]

        rows = min(bounds["cells"] // len(header), bounds["rows"]) - 1
        count = write_xlsx(path, header, row, rows, compact=True, budget=room)
        return f"{count + 1} rows x {len(header)} columns = {(count + 1) * len(header)} cells"
    if case == "xlsx-expanded":
        text = "d" * 2000
        rows = field_rows(description=lambda i: f"{i} {text}")
        count = write_xlsx(path, FIELD_HEADER, rows, bounds["rows"], budget=room)
        return f"{count} rows with a distinct 2,000-character description"
    if case == "xlsx-shared":
        header = ["source", "schema", "table", "field", "native_type", "foreign_key"]
        header += ["field_description"]
        # Four distinct strings a row, and a table name every 25 rows.
        count = min(bounds["rows"], int(bounds["shared"] / 4.04)) - 20

        def row(i):
            values = ["shop", "public", f"t{i // 25}", f"f{i}", f"n{i}", f"k{i}", f"d{i}"]
            return values

        count = write_xlsx(path, header, row, count, shared=True)
        return f"{count} rows, {4 * count} distinct shared strings"
    if case == "xlsx-shared-mb":
        text = "s" * 4000
        count = bounds["shared_bytes"] // 4100 - 10
        rows = field_rows(description=lambda i: f"{i} {text}")
        count = write_xlsx(path, FIELD_HEADER, rows, count, shared=True)
        return f"{count} rows, each with a distinct 4,000-character shared string"
    if case == "xlsx-all":
        # At the rows, cells, shared strings and shared strings' size limits at once: four
        # distinct shared strings a row, as long as the size limit allows, the rest numbers.
        header = ["source", "schema", "table", "field", "native_type", "foreign_key"]
        header += ["field_description", "position", "default", "data_type", "nullable"]
        header += ["is_primary_key"]
        # Four distinct strings a row, and a table name every 25 rows.
        count = min(bounds["rows"], int(bounds["shared"] / 4.04), bounds["cells"] // len(header))
        count -= 20
        # Each string's XML is <si><t>, eight characters, the padding, </t></si>; the table
        # names and the like take under 1 MB.
        length = (bounds["shared_bytes"] - 1024 * 1024) // (4 * count) - 24
        pad = "a" * length

        def row(i):
            values = ["shop", "public", f"t{i // 25}", f"f{i:07d}{pad}"[:500]]
            values += [f"n{i:07d}{pad}"[:200], f"k{i:07d}{pad}", f"d{i:07d}{pad}"]
            return values + [str(i), str(i + 1), str(i + 2), "true", "false"]

        count = write_xlsx(path, header, row, count, shared=True, compact=True)
        return (
            f"{count + 1} rows x {len(header)} columns, {4 * count} distinct shared strings "
            f"of {length + 8} characters"
        )
    if case == "xlsx-worst":
        return largest_accepted(path, bounds)
    if case == "csv-rows":
        rows = formats.limit("BULK_IMPORT_MAX_ROWS")
        with open(path, "w") as handle:
            handle.write("record_type,source,schema,table,field,data_type\n")
            for i in range(rows):
                handle.write(f"field,shop,public,t{i // 25},f{i % 25},integer\n")
        return f"{rows} CSV rows"
    if case in ("json-objects", "json-too-many", "yaml-objects"):
        count = formats.limit("BULK_IMPORT_MAX_ROWS") - 1 + (case == "json-too-many")
        with open(path, "w") as handle:  # the root object (or mapping) and `count` tables
            if case == "yaml-objects":
                handle.write("tables:\n")
                handle.writelines(f"- {{name: t{i}}}\n" for i in range(count))
            else:
                handle.write('{"tables": [')
                handle.write(",".join(f'{{"name": "t{i}"}}' for i in range(count)))
                handle.write("]}")
        return f"{count} tables of one key and the root"
    if case in ("yaml-bytes", "csv-bytes"):
        cap = "BULK_IMPORT_MAX_YAML_BYTES" if case == "yaml-bytes" else "BULK_IMPORT_MAX_BYTES"
        size, text, i = formats.limit(cap) - 20_000, "y" * 10_000, 0
        with open(path, "w") as handle:
            if case == "csv-bytes":
                handle.write("record_type,source,schema,table,field,field_description\n")
            else:
                handle.write("tables:\n")
            while handle.tell() < size:
                if case == "csv-bytes":
                    handle.write(f"field,shop,public,t{i // 25},f{i % 25},{text}\n")
                else:
                    handle.write(f"- {{source: shop, schema: public, name: t{i}, ")
                    handle.write(f"description: {text}}}\n")
                i += 1
        return f"{i} records with 10,000-character descriptions"
    if case == "json-bytes":
        size = formats.max_upload_bytes()
        text = "j" * 10_000
        with open(path, "w") as handle:
            handle.write('{"tables": [')
            written, i = 12, 0
            while written < size - 20_000:
                item = json.dumps(
                    {"source": "shop", "schema": "public", "name": f"t{i}", "description": text}
                )
                handle.write(("," if i else "") + item)
                written += len(item) + 1
                i += 1
            handle.write("]}")
        return f"{i} tables with 10,000-character descriptions, {written} bytes"
    if case == "bomb":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("xl/worksheets/sheet1.xml", b" " * (100 * 1024 * 1024))
        return "100 MB of spaces compressed about 1,000 times"
    if case == "lying-size":
        write_xlsx(path, FIELD_HEADER, field_rows(), 10)
        lie_about_size(path, "xl/worksheets/sheet1.xml", 300 * 1024 * 1024)
        return "a sheet declared 1 KB in the zip headers, 300 MB when inflated"
    if case == "wide-row":
        write_xlsx(path, FIELD_HEADER, lambda i: ["x"] * 2_000_000, 1)
        return "one row of 2,000,000 cells"
    if case == "dimension":
        write_xlsx(path, FIELD_HEADER, field_rows(), 2, dimension="A1:XFD1048576")
        return "declares A1:XFD1048576, holds 3 rows"
    if case == "shared-flood":
        limit_ = bounds["shared"]
        strings = "".join(f"<si><t>{i}</t></si>" for i in range(limit_ + 1))
        write_xlsx(
            path,
            FIELD_HEADER,
            field_rows(),
            2,
            shared=True,
            extra_parts=[("xl/sharedStrings.xml", f"<sst>{strings}</sst>")],
        )
        return f"{limit_ + 1} short shared strings"
    if case == "laughs":
        entities = '<!ENTITY a "lol">' + "".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
        )
        xml = f'<?xml version="1.0"?><!DOCTYPE x [{entities}]><sst><si><t>&j;</t></si></sst>'
        write_xlsx(path, FIELD_HEADER, field_rows(), 2, extra_parts=[("xl/extra.xml", xml)])
        return "a part whose DTD expands to 10^9 'lol's"
    if case == "deep-json":
        path.write_text("[" * 5_000_000)
        return "5,000,000 nested arrays"
    if case == "deep-yaml":
        path.write_text("- " * 2_500_000 + "x\n")
        return "2,500,000 nested block sequences"
    raise ValueError(case)


def lie_about_size(path, name, real):
    """Replace entry `name` by `real` bytes of XML whose zip headers declare 1 KB: the
    central directory then promises little, and only inflating the entry tells."""
    from governance.tests.xlsx_files import declare_size

    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for filename, data in entries:
            if filename != name:
                archive.writestr(filename, data)
                continue
            with archive.open(name, "w") as handle:
                handle.write(b"<worksheet><sheetData>")
                block = b" " * (1 << 20)
                for _ in range(real >> 20):
                    handle.write(block)
    declare_size(path, name, 1024)


# --- measuring -----------------------------------------------------------------------------


def memory_mb(field):
    """VmHWM (peak) or VmRSS (now) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def child(path, write):
    benchlib.setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from governance import context
    from governance.bulk import importer

    admin = get_user_model().objects.get(username="bench-admin")
    connection.ensure_connection()
    started = time.perf_counter()
    out = {"baseline_mb": memory_mb("VmRSS")}
    with context.acting(user=admin), open(path, "rb") as handle:
        try:
            result = importer.bulk_import(data=handle, user=admin, dry_run=write != "write")
            out["outcome"] = "accepted"
            out["counts"] = result["counts"]
        except importer.ImportRejected as exc:
            out["outcome"] = "refused"
            out["detail"] = exc.detail[:200]
            out["error_count"] = len(exc.errors)
    out["seconds"] = round(time.perf_counter() - started, 2)
    out["peak_mb"] = memory_mb("VmHWM")
    return out


def prepare_database():
    benchlib.recreate_database(os.environ["DATABASE_URL"])
    benchlib.migrate()
    code = (
        "import sys; sys.path.insert(0, 'bench'); import benchlib; benchlib.setup_django(); "
        "from django.contrib.auth import get_user_model; "
        "from sources.models import DataSource; "
        "get_user_model().objects.create_superuser('bench-admin', 'b@example.com', 'bench-pw-1'); "
        "DataSource.objects.create(name='shop', kind='postgresql', host='db.example.com')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=benchlib.ROOT)


def main():
    args = parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    benchlib.configure_env(DEBUG="0")
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    benchlib.use_project_python()
    cases = [c for c in args.cases.split(",") if c] or [c for c in CASES if c not in SLOW]
    FILES.mkdir(parents=True, exist_ok=True)
    print(f"recreating {os.environ['DATABASE_URL']} and migrating ...", flush=True)
    prepare_database()
    benchlib.setup_django()
    results, rows, failures = {}, [], []
    for number, case in enumerate(cases):
        if args.write and number:
            prepare_database()  # each import into an empty catalog, as the first one
        path = FILES / f"{case}.{CASES[case]}"
        started = time.perf_counter()
        what = build(case, path)
        built_s = round(time.perf_counter() - started, 1)
        size = path.stat().st_size
        command = [sys.executable, __file__, "--child", str(path), "write" if args.write else "dry"]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode:
            out = {"outcome": f"crashed ({done.returncode})", "seconds": None, "peak_mb": None}
        else:
            out = json.loads(done.stdout.strip().splitlines()[-1])
        expected = "accepted" if case in ACCEPTED else "refused"
        good = out["outcome"] == expected and (out["peak_mb"] or 10**9) < GOAL_MB
        if not good:
            failures.append(case)
        results[case] = {"file": what, "bytes": size, "built_s": built_s, **out}
        rows.append(
            [
                case,
                round(size / 1e6, 1),
                out["outcome"],
                out["seconds"],
                out["peak_mb"],
                out.get("baseline_mb"),
                "yes" if good else "NO",
            ]
        )
        print(f"  {case}: {what}; {out}", flush=True)
        if not args.keep:
            path.unlink(missing_ok=True)
    benchlib.print_table(
        ["case", "file MB", "outcome", "seconds", "peak MB", "baseline MB", "goal met"],
        rows,
        title=f"Bulk import at and past its limits ({'import' if args.write else 'dry run'}; "
        f"goal: the expected outcome under {GOAL_MB} MB)",
    )
    benchlib.write_json(
        "bulk_limits",
        {"benchmark": "bulk_limits", "machine": benchlib.machine_info(), "results": results},
    )
    return 1 if failures else 0


ACCEPTED = {
    "xlsx-rows",
    "xlsx-cells",
    "xlsx-expanded",
    "xlsx-shared",
    "xlsx-shared-mb",
    "xlsx-all",
    "xlsx-worst",
    "csv-rows",
    "csv-bytes",
    "json-bytes",
    "json-objects",
    "yaml-objects",
    "yaml-bytes",
    "dimension",
}
CASES = {
    "xlsx-rows": "xlsx",
    "xlsx-cells": "xlsx",
    "xlsx-expanded": "xlsx",
    "xlsx-shared": "xlsx",
    "xlsx-shared-mb": "xlsx",
    "xlsx-all": "xlsx",
    "xlsx-worst": "xlsx",
    "csv-rows": "csv",
    "json-bytes": "json",
    "json-objects": "json",
    "json-too-many": "json",
    "yaml-objects": "yaml",
    "yaml-bytes": "yaml",
    "csv-bytes": "csv",
    "bomb": "xlsx",
    "lying-size": "xlsx",
    "wide-row": "xlsx",
    "dimension": "xlsx",
    "shared-flood": "xlsx",
    "laughs": "xlsx",
    "deep-json": "json",
    "deep-yaml": "yaml",
}

if __name__ == "__main__":
    sys.exit(main())
