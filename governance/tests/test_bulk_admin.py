import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from catalog.models import Table
from governance.models import AccessLogEntry
from governance.services import grant
from governance.testing import PASSWORD, make_user
from sources.models import DataSource

IMPORT_PAGE = "/admin/catalog/catalogtransfer/import/"
CHANGELIST = "/admin/catalog/catalogtransfer/"
FILE = json.dumps(
    {
        "tables": [
            {"source": "shop", "schema": "public", "name": "orders", "fields": [{"name": "id"}]},
            {"source": "shop", "schema": "public", "name": "items", "kind": "sofa"},
        ]
    }
)


@pytest.fixture
def setup(db):
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    hr = DataSource.objects.create(name="hr", kind="postgresql", host="db.example.com")
    steward = make_user("stella", staff=True)
    grant(shop, steward, "steward")
    client = Client()
    client.login(username="stella", password=PASSWORD)
    return {"shop": shop, "hr": hr, "steward": steward, "client": client}


def post(client, content, **options):
    data = {"file": SimpleUploadedFile("c.json", content.encode()), "mode": "create", **options}
    return client.post(IMPORT_PAGE, data)


def test_import_page_previews_errors_then_counts_then_imports(setup):
    client = setup["client"]
    assert client.get(IMPORT_PAGE).status_code == 200
    page = post(client, FILE, dry_run="on").content.decode()
    assert "/tables/1/kind" in page and "sofa" in page
    good = FILE.replace('"sofa"', '"view"')
    page = post(client, good, dry_run="on").content.decode()
    assert "Dry run" in page and not Table.objects.exists()
    page = post(client, good).content.decode()
    assert "Imported" in page
    assert Table.objects.count() == 2


def test_import_page_names_objects_the_user_may_not_change(setup):
    Table.objects.create(source=setup["hr"], schema="public", name="salaries")
    grant(setup["hr"], setup["steward"], "viewer")
    content = json.dumps({"tables": [{"source": "hr", "schema": "public", "name": "salaries"}]})
    page = post(setup["client"], content, mode="upsert").content.decode()
    assert "You may not change" in page and "table hr.public.salaries" in page


def test_non_staff_cannot_reach_the_import_page(setup):
    make_user("plain")
    client = Client()
    client.login(username="plain", password=PASSWORD)
    assert client.get(IMPORT_PAGE).status_code == 302
    assert not Table.objects.exists()


def test_export_action_exports_only_selected_visible_tables(setup):
    orders = Table.objects.create(source=setup["shop"], schema="public", name="orders")
    Table.objects.create(source=setup["shop"], schema="public", name="items")
    hidden = Table.objects.create(source=setup["hr"], schema="public", name="salaries")
    client = setup["client"]
    listing = client.get(CHANGELIST).content.decode()
    assert "shop.public.orders" in listing and "hr.public.salaries" not in listing
    response = client.post(
        CHANGELIST,
        {"action": "export_json", "_selected_action": [orders.pk, hidden.pk]},
    )
    assert response.status_code == 200
    data = json.loads(b"".join(response.streaming_content))
    assert [t["name"] for t in data["tables"]] == ["orders"]
    assert AccessLogEntry.objects.filter(action="export").exists()


def test_commands_export_and_import_with_permissions(setup, tmp_path):
    Table.objects.create(source=setup["shop"], schema="public", name="orders")
    Table.objects.create(source=setup["hr"], schema="public", name="salaries")
    target = tmp_path / "catalog.csv"
    call_command(
        "export_catalog", "--user", "stella", "--format", "csv", "-o", str(target), verbosity=0
    )
    text = target.read_text(encoding="utf-8-sig")
    assert "orders" in text and "salaries" not in text
    Table.objects.filter(name="orders").delete()
    call_command("import_catalog", str(target), "--user", "stella", verbosity=0)
    assert Table.objects.filter(fqn="shop.public.orders").exists()
    with pytest.raises(CommandError, match="already exists|error"):
        call_command("import_catalog", str(target), "--user", "stella", verbosity=0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tables": [{"source": "hr", "schema": "public", "name": "x"}]}))
    with pytest.raises(CommandError, match="1 error"):  # no data source named 'hr'
        call_command("import_catalog", str(bad), "--user", "stella", verbosity=0)
    grant(setup["hr"], setup["steward"], "viewer")
    with pytest.raises(CommandError, match="may not change"):
        call_command("import_catalog", str(bad), "--user", "stella", verbosity=0)
