"""The import of the largest XLSX file the limits accept stays under 500 MB (item 15 of the
security and fault probe), measured in a fresh process as a job would run it; and XLSX
files past a limit are refused before openpyxl opens them, each naming the limit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.bulk import xlsx
from governance.services import grant
from governance.testing import client_for, make_user
from governance.tests.xlsx_files import (
    FIELD_HEADER,
    declare_size,
    field_rows,
    largest_accepted,
    write_xlsx,
)
from sources.models import DataSource

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import json, sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from governance import context
from governance.bulk import importer
from sources.models import DataSource

admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-root-1")
DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
started = time.monotonic()
with context.acting(user=admin), open(sys.argv[1], "rb") as handle:
    result = importer.bulk_import(data=handle, user=admin, dry_run=True)
# VmHWM, not getrusage: a child's ru_maxrss on Linux starts from the RSS its parent (this
# test run) had when it was spawned.
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({"counts": result["counts"], "peak_mb": int(status) / 1024,
                  "seconds": time.monotonic() - started}))
"""


def test_the_largest_accepted_xlsx_imports_in_under_500_mb(tmp_path):
    path = tmp_path / "largest.xlsx"
    what = largest_accepted(path, xlsx.limits())
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "governance.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'memory.sqlite3'}",
        "STEWARD_VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"]
    subprocess.run(manage, cwd=ROOT, env=env, check=True)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    fields = measured["counts"]["fields"]["created"]
    assert fields > 200_000, what
    assert measured["peak_mb"] < 500, f"{what}: {measured}"


@pytest.fixture
def steward(db):
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    user = make_user("stella", staff=True)
    grant(shop, user, "steward")
    return client_for(user)


def refused(client, path):
    upload = SimpleUploadedFile("c.xlsx", path.read_bytes())
    response = client.post("/api/v1/bulk/import", {"file": upload}, format="multipart")
    assert response.status_code == 400, response.content
    return response.json()["detail"]


@pytest.mark.parametrize(
    ("setting", "value", "build", "message"),
    [
        ("BULK_IMPORT_MAX_XLSX_ROWS", 50, {"count": 50}, "more than 50 rows"),
        ("BULK_IMPORT_MAX_XLSX_CELLS", 300, {"count": 50}, "more than 300 cells"),
        ("BULK_IMPORT_MAX_XLSX_SHARED_STRINGS", 20, {"count": 30, "shared": True}, "more than 20"),
        (
            "BULK_IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES",
            1000,
            {"count": 30, "shared": True},
            "the limit is 1000",
        ),
        ("BULK_IMPORT_MAX_XLSX_UNCOMPRESSED_BYTES", 5000, {"count": 50}, "the limit is 5000"),
        (
            "BULK_IMPORT_MAX_XLSX_PART_BYTES",
            2000,
            {"count": 1, "extra_parts": [("xl/notes.xml", f"<notes>{'n' * 5000}</notes>")]},
            "'xl/notes.xml' expands to 5015 bytes; parts other than sheets and shared strings "
            "are read whole, the limit is 2000",
        ),
    ],
)
def test_each_xlsx_limit_refuses_a_file_past_it(
    steward, settings, tmp_path, setting, value, build, message
):
    path = tmp_path / "c.xlsx"
    write_xlsx(path, FIELD_HEADER, field_rows(), **build)
    upload = SimpleUploadedFile("c.xlsx", path.read_bytes())
    response = steward.post(
        "/api/v1/bulk/import", {"file": upload, "dry_run": "true"}, format="multipart"
    )
    assert response.status_code == 200, response.content  # within the default limits
    setattr(settings, setting, value)
    assert message in refused(steward, path)


def test_hostile_xlsx_structures_are_refused_before_openpyxl_reads_them(steward, tmp_path):
    wide = tmp_path / "wide.xlsx"
    write_xlsx(wide, FIELD_HEADER, lambda i: ["x"] * 200_000, 1)
    assert "XML elements in one row" in refused(steward, wide)
    laughs = tmp_path / "laughs.xlsx"
    entities = '<!ENTITY a "lol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    part = f'<?xml version="1.0"?><!DOCTYPE x [{entities}]><x>&j;</x>'
    write_xlsx(laughs, FIELD_HEADER, field_rows(), 2, extra_parts=[("xl/extra.xml", part)])
    assert "DTD" in refused(steward, laughs)
    lying = tmp_path / "lying.xlsx"
    write_xlsx(lying, FIELD_HEADER, field_rows(), 2000)
    # The sheet's headers now declare 100 bytes: zipfile inflates no more than that, and the
    # entry fails its CRC check.
    declare_size(lying, "xl/worksheets/sheet1.xml", 100)
    assert "cannot be read: Bad CRC-32" in refused(steward, lying)


def test_a_lying_dimension_costs_nothing(steward, tmp_path):
    path = tmp_path / "dimension.xlsx"
    write_xlsx(path, FIELD_HEADER, field_rows(), 2, dimension="A1:XFD1048576")
    upload = SimpleUploadedFile("c.xlsx", path.read_bytes())
    response = steward.post(
        "/api/v1/bulk/import", {"file": upload, "dry_run": "true"}, format="multipart"
    )
    assert response.status_code == 200, response.content
    assert response.json()["counts"]["fields"]["created"] == 2
