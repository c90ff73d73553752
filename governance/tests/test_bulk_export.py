import csv
import io
import json
from datetime import timedelta

import jsonschema
import openpyxl
import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from catalog.models import Classification, Field, Table, Tag, TagCategory
from governance.bulk.schema import document_schema
from governance.models import AccessLogEntry
from governance.services import grant
from governance.testing import client_for, make_user
from lineage.models import FieldLineageEdge, LineageEdge
from sources.models import DataSource

EXPORT = "/api/v1/bulk/export"
CANARY = "canary-password-4711"
TIMESTAMPS = {"created_at", "updated_at", "decided_at"}


@pytest.fixture
def catalog(db):
    shop = DataSource.objects.create(
        name="shop", kind="postgresql", host="db.example.com", password=CANARY
    )
    hr = DataSource.objects.create(name="hr", kind="postgresql", host="db.example.com")
    pii, _ = TagCategory.objects.get_or_create(name="PII")
    email_tag, _ = Tag.objects.get_or_create(category=pii, name="Email")
    tier, _ = TagCategory.objects.get_or_create(name="Tier", mutually_exclusive=True)
    gold, _ = Tag.objects.get_or_create(category=tier, name="Gold")
    admin = make_user("root", superuser=True)
    steward = make_user("stella", staff=True)
    grant(shop, steward, "steward")

    orders = Table.objects.create(
        source=shop,
        schema="public",
        name="orders",
        description='=HYPERLINK("http://evil")',
        owner=steward,
        legal_basis="contract",
        retention_days=365,
        pci_scope=True,
    )
    orders.tags.add(gold)
    Field.objects.create(table=orders, name="id", position=1, data_type="integer", nullable=False)
    email = Field.objects.create(
        table=orders, name="email", position=2, data_type="string", description="Käufer, 📧"
    )
    email.tags.add(email_tag)
    Classification.objects.create(
        field=email,
        rule="email",
        tag=email_tag,
        method="value",
        hit_ratio=0.95,
        sample_size=100,
        status="accepted",
        decided_by=steward,
        decided_at=timezone.now(),
    )
    customers = Table.objects.create(source=shop, schema="public", name="customers")
    Field.objects.create(table=customers, name="email", position=1, default="-1")
    Table.objects.create(schema="sheets", name="budget", description="kept by hand")
    salaries = Table.objects.create(source=hr, schema="public", name="salaries")
    Field.objects.create(table=salaries, name="amount", position=1)

    edge = LineageEdge.objects.create(
        upstream=customers, downstream=orders, origin="inferred", status="pending", confidence=0.7
    )
    FieldLineageEdge.objects.create(
        edge=edge,
        upstream=customers.fields.get(),
        downstream=email,
        origin="inferred",
        transformation="lower(email)",
    )
    LineageEdge.objects.create(
        upstream=salaries, downstream=orders, origin="manual", status="approved"
    )
    return {"admin": admin, "steward": steward, "shop": shop}


def export(client, fmt, **params):
    response = client.get(EXPORT, {"format": fmt, **params})
    assert response.status_code == 200, getattr(response, "content", b"")
    return b"".join(response.streaming_content)


def strip_timestamps(value):
    if isinstance(value, dict):
        return {k: strip_timestamps(v) for k, v in value.items() if k not in TIMESTAMPS}
    if isinstance(value, list):
        return [strip_timestamps(v) for v in value]
    return value


def flat_rows(rows):
    result = []
    for row in rows:
        row = {k: v for k, v in row.items() if not k.endswith(("created_at", "updated_at"))}
        if row.get("classifications"):
            row["classifications"] = strip_timestamps(json.loads(row["classifications"]))
        result.append(row)
    return result


def normalized(fmt, content):
    if fmt == "json":
        return strip_timestamps(json.loads(content))
    if fmt == "yaml":
        return strip_timestamps(yaml.safe_load(content))
    if fmt == "csv":
        return flat_rows(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    sheets = {}
    for name in book.sheetnames:
        rows = list(book[name].iter_rows(values_only=True))
        sheets[name] = flat_rows(dict(zip(rows[0], row, strict=True)) for row in rows[1:])
    return sheets


@pytest.mark.parametrize("fmt", ["json", "yaml", "csv", "xlsx"])
def test_round_trip_export_import_export_is_identical(catalog, fmt):
    client = client_for(catalog["admin"])
    first = export(client, fmt)
    Table.objects.all().delete()
    assert not LineageEdge.objects.exists()
    response = client.post(
        "/api/v1/bulk/import",
        {"file": SimpleUploadedFile(f"catalog.{fmt}", first), "mode": "create"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    counts = response.json()["counts"]
    assert counts["tables"]["created"] == 4
    assert counts["fields"]["created"] == 4
    assert counts["edges"]["created"] == 2
    second = export(client, fmt)
    assert normalized(fmt, second) == normalized(fmt, first)
    assert Table.objects.get(fqn="shop.public.orders").description.startswith("=HYPERLINK")
    assert Field.objects.get(table__name="customers").default == "-1"
    # And the same file again as upsert: nothing to change.
    response = client.post(
        "/api/v1/bulk/import",
        {"file": SimpleUploadedFile(f"catalog.{fmt}", second), "mode": "upsert"},
        format="multipart",
    )
    counts = response.json()["counts"]
    assert counts["tables"]["updated"] == counts["fields"]["updated"] == 0
    assert counts["edges"]["updated"] == 0


def test_json_export_follows_the_schema_and_carries_everything(catalog):
    data = json.loads(export(client_for(catalog["admin"]), "json"))
    jsonschema.validate(data, document_schema())
    orders = next(t for t in data["tables"] if t["name"] == "orders")
    assert orders["owner"] == "stella" and orders["tags"] == ["Tier.Gold"]
    assert orders["created_at"] and orders["updated_at"]
    email = orders["fields"][1]
    assert email["classifications"][0]["status"] == "accepted"
    assert email["classifications"][0]["decided_by"] == "stella"
    edge = next(e for e in data["lineage"] if e["origin"] == "inferred")
    assert (edge["source"], edge["target"], edge["status"]) == (
        "shop.public.customers",
        "shop.public.orders",
        "pending",
    )
    assert edge["fields"] == [
        {"source": "email", "target": "email", "transformation": "lower(email)"}
    ]


@pytest.mark.parametrize("fmt", ["json", "yaml", "csv", "xlsx"])
def test_exports_never_carry_secrets(catalog, fmt):
    content = export(client_for(catalog["admin"]), fmt)
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
        content = repr([list(s.iter_rows(values_only=True)) for s in book]).encode()
    assert CANARY.encode() not in content
    assert b"db.example.com" not in content


def test_csv_and_xlsx_escape_formula_cells(catalog):
    client = client_for(catalog["admin"])
    text = export(client, "csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    orders = next(r for r in rows if r["table"] == "orders")
    assert orders["table_description"] == '\'=HYPERLINK("http://evil")'
    customers = next(r for r in rows if r["table"] == "customers")
    assert customers["default"] == "'-1"
    book = openpyxl.load_workbook(io.BytesIO(export(client, "xlsx")), read_only=True)
    cells = [c for row in book["catalog"].iter_rows(values_only=True) for c in row]
    assert '\'=HYPERLINK("http://evil")' in cells
    assert not any(isinstance(c, str) and c.startswith("=") for c in cells)


def test_export_shows_only_granted_tables_and_their_lineage(catalog):
    client = client_for(catalog["steward"])
    data = json.loads(export(client, "json"))
    assert sorted(t["name"] for t in data["tables"]) == ["customers", "orders"]
    assert [(e["source"], e["target"]) for e in data["lineage"]] == [
        ("shop.public.customers", "shop.public.orders")
    ]
    text = export(client, "csv").decode("utf-8-sig")
    assert "salaries" not in text and "budget" not in text
    nobody = make_user("nobody")
    assert json.loads(export(client_for(nobody), "json")) == {
        "kind": "steward-catalog",
        "version": 1,
        "tables": [],
        "lineage": [],
    }
    assert client_for(None).get(EXPORT).status_code == 401


def test_export_is_access_logged(catalog):
    export(client_for(catalog["steward"]), "csv", source="shop")
    entry = AccessLogEntry.objects.get(action="export")
    assert entry.user == catalog["steward"]
    assert entry.detail["format"] == "csv" and entry.detail["tables"] == 2
    assert entry.detail["filters"] == {"source": "shop"}


def test_export_filters(catalog):
    client = client_for(catalog["admin"])

    def names(**params):
        return sorted(t["name"] for t in json.loads(export(client, "json", **params))["tables"])

    assert names(source="hr") == ["salaries"]
    assert names(schema="sheets") == ["budget"]
    assert names(tag="Tier.Gold") == ["orders"]
    assert names(tag="PII.Email") == ["orders"]
    future = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert names(updated_since=future) == []
    assert names(updated_since="2000-01-01T00:00:00Z") == [
        "budget",
        "customers",
        "orders",
        "salaries",
    ]
    assert client.get(EXPORT, {"format": "pdf"}).status_code == 400
    assert client.get(EXPORT, {"tag": "Nope.Nothing"}).status_code == 400
    assert client.get(EXPORT, {"updated_since": "yesterday"}).status_code == 400
