import csv
import io
import json
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import Classification, Field, Table, Tag, TagCategory
from governance.models import AccessLogEntry, ChangeLogEntry, JobRun
from governance.services import grant
from governance.testing import client_for, make_user
from lineage.models import FieldLineageEdge, LineageEdge
from sources.models import DataSource

IMPORT = "/api/v1/bulk/import"


def upload(client, content, name="catalog.json", **options):
    if isinstance(content, str):
        content = content.encode()
    data = {"file": SimpleUploadedFile(name, content), **options}
    return client.post(IMPORT, data, format="multipart")


def document(tables, lineage=()):
    return json.dumps({"tables": tables, "lineage": list(lineage)})


@pytest.fixture
def world(db):
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    hr = DataSource.objects.create(name="hr", kind="postgresql", host="db.example.com")
    pii, _ = TagCategory.objects.get_or_create(name="PII")
    Tag.objects.get_or_create(category=pii, name="Email")
    tier, _ = TagCategory.objects.get_or_create(name="Tier", mutually_exclusive=True)
    Tag.objects.get_or_create(category=tier, name="Gold")
    Tag.objects.get_or_create(category=tier, name="Bronze")
    admin = make_user("root", superuser=True)
    steward = make_user("stella", staff=True)
    grant(shop, steward, "steward")
    return {"shop": shop, "hr": hr, "admin": admin, "steward": steward}


ORDERS = {
    "source": "shop",
    "schema": "public",
    "name": "orders",
    "kind": "table",
    "description": "One row per order",
    "owner": "stella",
    "tags": ["Tier.Gold"],
    "fields": [
        {"name": "id", "data_type": "integer", "nullable": False, "is_primary_key": True},
        {
            "name": "email",
            "data_type": "string",
            "tags": ["PII.Email"],
            "classifications": [
                {"rule": "email", "tag": "PII.Email", "status": "accepted", "hit_ratio": 0.9}
            ],
        },
    ],
}
CUSTOMERS = {
    "source": "shop",
    "schema": "public",
    "name": "customers",
    "fields": [{"name": "id", "data_type": "integer"}, {"name": "email"}],
}
EDGE = {
    "source": "shop.public.customers",
    "target": "shop.public.orders",
    "origin": "inferred",
    "status": "pending",
    "confidence": 0.5,
    "fields": [{"source": "email", "target": "email", "transformation": "lower(email)"}],
}


def test_create_writes_tables_fields_tags_classifications_and_lineage(world):
    client = client_for(world["steward"])
    response = upload(client, document([ORDERS, CUSTOMERS], [EDGE]))
    assert response.status_code == 200, response.content
    counts = response.json()["counts"]
    assert counts["tables"] == {"created": 2, "updated": 0, "unchanged": 0}
    assert counts["fields"] == {"created": 4, "updated": 0, "unchanged": 0}
    assert counts["edges"] == {"created": 1, "updated": 0, "unchanged": 0}
    orders = Table.objects.get(fqn="shop.public.orders")
    assert orders.owner == world["steward"]
    assert [str(t) for t in orders.tags.all()] == ["Tier.Gold"]
    email = orders.fields.get(name="email")
    assert [str(t) for t in email.tags.all()] == ["PII.Email"]
    decision = Classification.objects.get(field=email)
    assert (decision.rule, decision.status, decision.hit_ratio) == ("email", "accepted", 0.9)
    assert orders.fields.get(name="id").is_primary_key
    edge = LineageEdge.objects.get()
    assert (edge.origin, edge.status, edge.confidence) == ("inferred", "pending", 0.5)
    assert edge.upstream.fqn == "shop.public.customers"
    field_edge = FieldLineageEdge.objects.get()
    assert field_edge.transformation == "lower(email)"
    assert field_edge.origin == "inferred"
    logged = ChangeLogEntry.objects.filter(action="create")
    assert logged.filter(object_repr="shop.public.orders").exists()
    # Fields created with their table are covered by the table's entry, as in a scan.
    assert not logged.filter(object_repr="shop.public.orders.email").exists()
    assert logged.filter(object_repr__contains="->").count() == 1


def test_dry_run_counts_and_writes_nothing(world):
    client = client_for(world["steward"])
    log_rows = ChangeLogEntry.objects.count()
    response = upload(client, document([ORDERS, CUSTOMERS], [EDGE]), dry_run="true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is True
    assert body["counts"]["fields"]["created"] == 4
    assert body["counts"]["edges"]["created"] == 1
    assert not Table.objects.exists() and not LineageEdge.objects.exists()
    assert ChangeLogEntry.objects.count() == log_rows


def test_upsert_twice_second_run_is_unchanged_and_logs_nothing(world):
    client = client_for(world["steward"])
    content = document([ORDERS, CUSTOMERS], [EDGE])
    assert upload(client, content, mode="upsert").status_code == 200
    log_rows = ChangeLogEntry.objects.count()
    response = upload(client, content, mode="upsert")
    assert response.status_code == 200, response.content
    counts = response.json()["counts"]
    assert counts["tables"] == {"created": 0, "updated": 0, "unchanged": 2}
    assert counts["fields"] == {"created": 0, "updated": 0, "unchanged": 4}
    assert counts["edges"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert ChangeLogEntry.objects.count() == log_rows


def test_upsert_updates_only_what_differs_with_before_and_after(world):
    client = client_for(world["steward"])
    upload(client, document([ORDERS, CUSTOMERS], [EDGE]))
    changed = json.loads(json.dumps(ORDERS))
    changed["description"] = "Orders, one per row"
    changed["tags"] = ["Tier.Bronze"]
    changed["fields"][0]["data_type"] = "bigint"
    changed["fields"].append({"name": "total", "data_type": "decimal"})
    edge = {**EDGE, "status": "approved"}
    response = upload(client, document([changed, CUSTOMERS], [edge]), mode="upsert")
    assert response.status_code == 200, response.content
    counts = response.json()["counts"]
    assert counts["tables"] == {"created": 0, "updated": 1, "unchanged": 1}
    assert counts["fields"] == {"created": 1, "updated": 1, "unchanged": 3}
    assert counts["edges"] == {"created": 0, "updated": 1, "unchanged": 0}
    orders = Table.objects.get(fqn="shop.public.orders")
    assert orders.description == "Orders, one per row"
    assert [str(t) for t in orders.tags.all()] == ["Tier.Bronze"]
    assert ChangeLogEntry.objects.filter(
        object_repr="shop.public.orders.total", action="create"
    ).exists()
    field_entry = ChangeLogEntry.objects.get(object_repr="shop.public.orders.id", action="update")
    assert field_entry.changed == ["data_type"]
    entry = ChangeLogEntry.objects.filter(object_repr=orders.fqn, action="update").get()
    assert entry.changed == ["description"]
    assert entry.before["description"] == "One row per order"
    edge_row = LineageEdge.objects.get()
    assert edge_row.status == "approved" and edge_row.decided_by == world["steward"]


def test_create_never_updates(world):
    client = client_for(world["steward"])
    upload(client, document([ORDERS]))
    changed = {**ORDERS, "description": "other"}
    response = upload(client, document([changed]))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0]["location"] == "/tables/0/name"
    assert "already exists" in errors[0]["message"]
    assert Table.objects.get().description == "One row per order"


def test_three_errors_in_different_rows_are_all_reported_and_nothing_is_written(world):
    rows = [
        "record_type,source,schema,table,field,data_type,nullable,position",
        "field,shop,public,orders,id,integer,false,1",
        "field,shop,public,orders,email,string,maybe,2",
        "field,shop,public,orders,total,decimal,true,-3",
        "field,nowhere,public,items,id,integer,true,1",
        "field,shop,public,lines,id,integer,true,1",
    ]
    client = client_for(world["steward"])
    log_rows = ChangeLogEntry.objects.count()
    response = upload(client, "\n".join(rows), name="catalog.csv")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [
        (5, "source"),
        (3, "nullable"),
        (4, "position"),
    ] or sorted((e["row"], e["field"]) for e in errors) == [
        (3, "nullable"),
        (4, "position"),
        (5, "source"),
    ]
    assert len(errors) == 3
    assert "maybe" in next(e["message"] for e in errors if e["row"] == 3)
    assert not Table.objects.exists() and not Field.objects.exists()
    assert ChangeLogEntry.objects.count() == log_rows


def test_json_errors_carry_json_pointers(world):
    bad = {**ORDERS, "kind": "spreadsheet", "fields": [{"name": "id", "nullable": "often"}]}
    edge = {"source": "shop.public.orders", "target": "shop.public.nothing"}
    response = upload(client_for(world["steward"]), document([bad], [edge]))
    assert response.status_code == 400
    locations = {e["location"] for e in response.json()["errors"]}
    assert locations == {"/tables/0/kind", "/tables/0/fields/0/nullable", "/lineage/0/target"}


def test_a_file_touching_a_table_the_user_cannot_change_is_refused_whole(world):
    hr_table = Table.objects.create(source=world["hr"], schema="public", name="salaries")
    viewer = make_user("vera")
    grant(world["hr"], world["steward"], "viewer")
    del viewer
    salaries = {"source": "hr", "schema": "public", "name": "salaries", "description": "x"}
    response = upload(client_for(world["steward"]), document([ORDERS, salaries]), mode="upsert")
    assert response.status_code == 403, response.content
    assert response.json()["objects"] == ["table hr.public.salaries"]
    assert not Table.objects.filter(fqn="shop.public.orders").exists()
    hr_table.refresh_from_db()
    assert hr_table.description == ""
    assert AccessLogEntry.objects.filter(action="permission_denied").exists()


def test_new_table_in_a_source_without_change_permission_is_refused(world):
    new = {"source": "hr", "schema": "public", "name": "bonus"}
    # A source the user may not view answers like a missing one...
    response = upload(client_for(world["steward"]), document([new]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "no data source named 'hr'"
    # ...and one they may view but not change refuses the new table, naming it.
    grant(world["hr"], world["steward"], "viewer")
    response = upload(client_for(world["steward"]), document([new]))
    assert response.status_code == 403
    assert "hr.public.bonus" in response.json()["detail"]
    assert not Table.objects.exists()


def test_lineage_into_a_table_the_user_cannot_change_is_refused(world):
    Table.objects.create(source=world["hr"], schema="public", name="salaries")
    grant(world["hr"], world["steward"], "viewer")
    edge = {"source": "shop.public.orders", "target": "hr.public.salaries"}
    response = upload(client_for(world["steward"]), document([ORDERS], [edge]))
    assert response.status_code == 403
    assert response.json()["objects"] == ["lineage into table hr.public.salaries"]
    assert not LineageEdge.objects.exists()


def test_lineage_naming_a_table_the_user_cannot_see_is_an_error_not_a_leak(world):
    Table.objects.create(source=world["hr"], schema="public", name="salaries")
    edge = {"source": "hr.public.salaries", "target": "shop.public.orders"}
    response = upload(client_for(world["steward"]), document([ORDERS], [edge]))
    assert response.status_code == 400
    assert "no table 'hr.public.salaries'" in response.json()["errors"][0]["message"]


def test_user_without_any_grant_changes_nothing(world):
    nobody = make_user("nobody")
    response = upload(client_for(nobody), document([ORDERS]))
    assert response.status_code == 400  # no source they may see is named shop
    assert response.json()["errors"][0]["message"] == "no data source named 'shop'"
    assert not Table.objects.exists()
    assert upload(client_for(None), document([ORDERS])).status_code == 401


def test_yaml_python_tags_are_refused(world):
    content = "tables:\n- name: !!python/object/apply:os.system ['echo hacked']\n"
    response = upload(client_for(world["admin"]), content, name="catalog.yaml")
    assert response.status_code == 400
    assert "python/object/apply:os.system) that is not allowed" in response.json()["detail"]
    assert not Table.objects.exists()


def test_yaml_import(world):
    content = (
        "tables:\n"
        "- source: shop\n  schema: public\n  name: orders\n"
        "  fields:\n  - name: id\n    data_type: integer\n    nullable: false\n"
    )
    response = upload(client_for(world["steward"]), content, name="c.yaml")
    assert response.status_code == 200, response.content
    assert response.json()["format"] == "yaml"
    assert Field.objects.get().nullable is False


def test_wrong_csv_header_is_a_clear_400(world):
    content = "record_type,source,schema,table,field,colour\nfield,shop,public,t,c,red\n"
    response = upload(client_for(world["admin"]), content, name="catalog.csv")
    assert response.status_code == 400
    assert "unknown column(s) colour" in response.json()["detail"]
    content = "record_type,source,table,field\nfield,shop,t,c\n"
    response = upload(client_for(world["admin"]), content, name="catalog.csv")
    assert "missing column(s) schema" in response.json()["detail"]
    assert not Table.objects.exists()


def test_wrong_encoding_is_a_clear_400(world):
    content = "record_type,source,schema,table,field,field_description\n"
    content += "field,shop,public,orders,id,Kennung für Bestellungen\n"
    response = upload(client_for(world["admin"]), content.encode("latin-1"), name="c.csv")
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["detail"]
    assert not Table.objects.exists()


def test_xlsx_zip_bomb_is_refused_before_parsing(world):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (50 * 1024 * 1024))
    response = upload(client_for(world["admin"]), buffer.getvalue(), name="bomb.xlsx")
    assert response.status_code == 400
    assert "zip bomb" in response.json()["detail"]
    assert not Table.objects.exists()


def test_xlsx_with_too_many_entries_is_refused(world, settings):
    settings.BULK_IMPORT_MAX_XLSX_ENTRIES = 5
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(6):
            archive.writestr(f"xl/{index}.xml", "<x/>")
    response = upload(client_for(world["admin"]), buffer.getvalue(), name="many.xlsx")
    assert response.status_code == 400
    assert "6 entries" in response.json()["detail"]


def test_xlsx_import(world):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "catalog"
    sheet.append(["source", "schema", "table", "field", "data_type", "position", "field_tags"])
    sheet.append(["shop", "public", "orders", "id", "integer", 1, ""])
    sheet.append(["shop", "public", "orders", "email", "string", 2, "PII.Email"])
    lineage = book.create_sheet("lineage")
    lineage.append(["source_table", "target_table", "origin", "status"])
    buffer = io.BytesIO()
    book.save(buffer)
    response = upload(client_for(world["steward"]), buffer.getvalue(), name="c.xlsx")
    assert response.status_code == 200, response.content
    assert response.json()["format"] == "xlsx"
    email = Field.objects.get(name="email")
    assert email.position == 2 and [str(t) for t in email.tags.all()] == ["PII.Email"]


def test_csv_table_columns_must_agree_across_rows(world):
    rows = [
        "record_type,source,schema,table,table_description,field",
        "field,shop,public,orders,Orders,id",
        "field,shop,public,orders,Something else,email",
    ]
    response = upload(client_for(world["steward"]), "\n".join(rows), name="c.csv")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["row"], error["field"]) == (3, "table_description")


def test_mutually_exclusive_tags_and_unknown_tags_are_errors(world):
    bad = {
        **ORDERS,
        "tags": ["Tier.Gold", "Tier.Bronze"],
        "fields": [{"name": "id", "tags": ["Nope.Nothing"]}],
    }
    response = upload(client_for(world["steward"]), document([bad]))
    assert response.status_code == 400
    messages = [e["message"] for e in response.json()["errors"]]
    assert any("mutually exclusive" in m for m in messages)
    assert any("no tag 'Nope.Nothing'" in m for m in messages)


def test_admin_may_create_missing_tags(world):
    table = {**ORDERS, "tags": ["Domain.Sales"]}
    response = upload(client_for(world["admin"]), document([table]))
    assert response.status_code == 200, response.content
    assert response.json()["counts"]["tags"] == {"created": 1}
    assert Tag.objects.filter(category__name="Domain", name="Sales").exists()


def test_large_files_run_as_a_job(world, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.BULK_IMPORT_JOB_THRESHOLD_BYTES = 10
    settings.VAR_DIR = tmp_path
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client_for(world["steward"]), document([ORDERS, CUSTOMERS], [EDGE]))
    assert response.status_code == 202, response.content
    job = JobRun.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error
    assert job.result["counts"]["tables"]["created"] == 2
    assert job.progress == 100
    assert Table.objects.count() == 2
    assert not list((tmp_path / "imports").iterdir())


def test_a_refused_job_reports_its_errors_and_writes_nothing(
    world, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.BULK_IMPORT_JOB_THRESHOLD_BYTES = 10
    settings.VAR_DIR = tmp_path
    bad = {**ORDERS, "kind": "spreadsheet"}
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client_for(world["steward"]), document([bad]))
    assert response.status_code == 202
    job = JobRun.objects.get(pk=response.json()["id"])
    assert job.status == "failed"
    assert "/tables/0/kind" in job.error
    assert not Table.objects.exists()


def test_upload_and_row_limits(world, settings):
    settings.BULK_IMPORT_MAX_BYTES = 100
    response = upload(client_for(world["admin"]), document([ORDERS, CUSTOMERS]))
    assert response.status_code == 400
    assert "limit" in response.json()["detail"]
    settings.BULK_IMPORT_MAX_BYTES = 10**6
    settings.BULK_IMPORT_MAX_ROWS = 3
    response = upload(client_for(world["admin"]), document([ORDERS, CUSTOMERS]))
    assert response.status_code == 400
    assert "more than 3 objects" in response.json()["detail"]


def test_csv_formula_cells_written_escaped_come_back_unescaped(world):
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["record_type", "source", "schema", "table", "table_description", "field"])
    writer.writerow(["field", "shop", "public", "orders", "'=1+2", "id"])
    response = upload(client_for(world["steward"]), rows.getvalue(), name="c.csv")
    assert response.status_code == 200, response.content
    assert Table.objects.get().description == "=1+2"


def test_schema_endpoint_serves_the_json_schema(world):
    response = client_for(world["steward"]).get("/api/v1/bulk/schema")
    assert response.status_code == 200
    assert response.json()["properties"]["tables"]["items"]["required"] == ["name"]
    assert client_for(None).get("/api/v1/bulk/schema").status_code == 401


def test_private_marker_keys_in_a_file_are_unknown_keys(world):
    table = {**ORDERS, "_row": 3, "_names": "x", "fields": [{"name": "id", "_loc": "/x"}]}
    response = upload(client_for(world["steward"]), document([table]))
    assert response.status_code == 400
    locations = {e["location"] for e in response.json()["errors"]}
    assert locations == {"/tables/0/_row", "/tables/0/_names", "/tables/0/fields/0/_loc"}
    assert not Table.objects.exists()


def test_json_from_a_file_object_and_wrong_encoding_in_json(world):
    content = document([{**ORDERS, "description": "Bestellung für Kunden"}])
    response = upload(client_for(world["steward"]), content.encode("utf-16"), name="c.json")
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tables: &t []\nlineage: *t\n", "anchor"),
        ("tables:\n- {name: !!python/name:os.system x}\n", "tag"),
        ("tables: []\n---\ntables: []\n", "more than one document"),
        ("tables: [\n", "not valid YAML"),
    ],
)
def test_yaml_anchors_tags_and_broken_files_are_refused(world, content, message):
    response = upload(client_for(world["admin"]), content, name="c.yaml", format="yaml")
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_yaml_values_are_typed_like_safe_load(world):
    from governance.bulk import formats

    text = "a: 1\nb: true\nc: null\nd: '1'\ne: [x, {f: 2.5}]\n"
    assert formats.load_yaml(io.StringIO(text)) == {
        "a": 1,
        "b": True,
        "c": None,
        "d": "1",
        "e": ["x", {"f": 2.5}],
    }
