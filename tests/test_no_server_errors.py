"""Bad input is a 4xx naming the problem, never a 500, on SQLite and PostgreSQL alike:
deleting what is still used (409), text no database can store (400), and a form's `null`
for a field that may not be null (400). Nothing is written in any of these cases."""

import io
import json
import uuid

import pytest
from django.test import Client

from catalog.models import Classification, ClassifierRule, Field, Table, Tag, TagCategory
from governance.services import grant
from governance.testing import PASSWORD, client_for, make_user
from sources.models import DataSource

TABLES = "/api/v1/catalog/tables/"
TAGS = "/api/v1/catalog/tags/"
CATEGORIES = "/api/v1/catalog/tag-categories/"
NUL = "\x00"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    """A tag used by a rule, a visible field and a hidden field; a steward granted one source."""
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    hr = DataSource.objects.create(name="hr", kind="postgresql", host="db.example.com")
    customers = Table.objects.create(source=shop, schema="public", name="customers")
    salaries = Table.objects.create(source=hr, schema="public", name="salaries")
    email = Field.objects.create(table=customers, name="email")
    secret = Field.objects.create(table=salaries, name="private_email")
    category = TagCategory.objects.create(name="Contact")
    tag = Tag.objects.create(category=category, name="Email")
    ClassifierRule.objects.create(
        key="contact-email", label="Contact email", tag=tag, name_pattern="email"
    )
    for field in (email, secret):
        Classification.objects.create(field=field, rule="contact-email", tag=tag, method="name")
    steward = make_user("stella", roles=["Admin"])
    grant(shop, steward, "steward")
    return {
        "shop": shop,
        "customers": customers,
        "tag": tag,
        "category": category,
        "steward": steward,
    }


# --- 10: deleting what is still used ----------------------------------------------------------


def test_deleting_a_tag_still_used_is_409_naming_what_uses_it(world):
    viewer = make_user("vera", perms=["catalog.delete_tag"])
    grant(world["shop"], viewer, "viewer")
    response = client_for(viewer).delete(f"{TAGS}{world['tag'].pk}/")
    assert response.status_code == 409
    body = response.json()
    assert body["detail"] == (
        "Cannot delete this tag: 2 classifications and 1 classifier rule still use it."
    )
    used = {item["model"]: item for item in body["still_used_by"]}
    assert used["classifier rule"] == {
        "model": "classifier rule",
        "count": 1,
        "names": ["Contact email"],
    }
    # Two classifications use it; only the one on a field the user may view is named.
    assert used["classifications"]["count"] == 2
    assert used["classifications"]["names"] == [
        "shop.public.customers.email: Contact.Email (suggested)"
    ]
    assert "salaries" not in response.content.decode()
    assert Tag.objects.filter(pk=world["tag"].pk).exists()


def test_deleting_a_category_that_has_tags_is_409(world):
    client = client_for(make_user("root", superuser=True))
    response = client.delete(f"{CATEGORIES}{world['category'].pk}/")
    assert response.status_code == 409
    assert response.json()["detail"] == "Cannot delete this tag category: 1 tag still use it."
    assert response.json()["still_used_by"][0]["names"] == ["Contact.Email"]
    assert TagCategory.objects.filter(pk=world["category"].pk).exists()
    unused = TagCategory.objects.create(name="Unused")
    assert client.delete(f"{CATEGORIES}{unused.pk}/").status_code == 204


def test_deleting_a_tag_still_used_in_the_admin_is_refused_without_a_server_error(world):
    admin = make_user("root", superuser=True)
    browser = Client()
    browser.force_login(admin)
    url = f"/admin/catalog/tag/{world['tag'].pk}/delete/"
    assert browser.get(url).status_code == 200
    assert browser.post(url, {"post": "yes"}).status_code in (200, 302)
    assert Tag.objects.filter(pk=world["tag"].pk).exists()


# --- 11: text that no database can store ------------------------------------------------------


def unchanged(world):
    return (
        Tag.objects.count(),
        Table.objects.count(),
        Table.objects.get(pk=world["customers"].pk).properties,
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "name"),
    [
        # JSON: a top-level field, a related object's name, nested values and keys, a list.
        ("post", TAGS, {"category": "Contact", "name": f"Ph{NUL}one"}, "name"),
        ("post", TAGS, {"category": f"Con{NUL}tact", "name": "Phone"}, "category"),
        ("patch", "{table}", {"properties": {"notes": ["ok", f"a{NUL}b"]}}, "/properties/notes/1"),
        ("patch", "{table}", {"properties": {f"k{NUL}": 1}}, "/properties/k\x00"),
        ("patch", "{table}", {"owner": f"stella{NUL}"}, "owner"),
        ("post", "{table}fields/batch", [{"name": "ok"}, {"name": f"b{NUL}"}], "/1/name"),
        ("post", TAGS, {"category": "Contact", "name": "\udc00"}, "name"),
    ],
)
def test_json_bodies_are_checked_at_any_depth(world, method, path, body, name):
    before = unchanged(world)
    path = path.format(table=f"{TABLES}{world['customers'].pk}/")
    client = client_for(world["steward"])
    raw = json.dumps(body)  # "\udc00" is written as an unpaired escape, as a client may send it
    response = getattr(client, method)(path, raw, content_type="application/json")
    assert response.status_code == 400, response.content
    expected = "Unpaired" if "\\udc00" in raw else "Null characters"
    assert list(response.json()) == [name]
    assert response.json()[name][0].startswith(expected)
    assert unchanged(world) == before


def test_form_and_multipart_fields_are_checked(world):
    client = client_for(world["steward"])
    before = unchanged(world)
    form = client.post(
        TAGS, "category=Contact&name=a%00", content_type="application/x-www-form-urlencoded"
    )
    assert form.status_code == 400
    assert form.json() == {"name": ["Null characters are not allowed."]}
    multipart = client.post(TAGS, {"category": f"Contact{NUL}", "name": "b"}, format="multipart")
    assert multipart.json() == {"category": ["Null characters are not allowed."]}
    upload = io.BytesIO(b'{"kind": "steward-catalog", "version": 1, "tables": []}')
    upload.name = "catalog.json"
    bulk = client.post(
        "/api/v1/bulk/import", {"file": upload, "mode": f"create{NUL}"}, format="multipart"
    )
    assert bulk.status_code == 400
    assert bulk.json() == {"mode": ["Null characters are not allowed."]}
    assert unchanged(world) == before


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (f"{TABLES}?q=a%00", "q"),
        (f"{TABLES}?owner=%00", "owner"),
        (f"{TAGS}?category=%00", "category"),
        ("/api/v1/catalog/search?q=%00", "q"),
        (f"{TABLES}%00/", "path"),
        ("/admin/catalog/table/?q=%00", "q"),
    ],
)
def test_query_parameters_and_paths_are_checked(world, url, name):
    client = client_for(world["steward"])
    client.force_login(world["steward"])
    response = client.get(url)
    assert response.status_code == 400
    assert response.json() == {name: ["Null characters are not allowed."]}


def test_openlineage_events_are_checked_and_name_the_pointer(world):
    steward = make_user("pipeline", roles=["Steward"])
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-22T03:00:00Z",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "etl", "name": f"daily{NUL}", "facets": {}},
        "inputs": [],
        "outputs": [],
        "producer": "https://example.com/pipeline",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    response = client_for(steward).post(
        "/api/v1/lineage/openlineage", json.dumps(event), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Null characters are not allowed.", "pointer": "/job/name"}


def test_token_login_with_a_null_character_is_400(world):
    response = Client().post(
        "/api/v1/auth/token/", {"username": f"stella{NUL}", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.json() == {"username": ["Null characters are not allowed."]}


# --- 12: a form's null for a field that may not be null ---------------------------------------


def test_form_null_for_table_properties_is_400_as_in_json(world):
    client = client_for(world["steward"])
    for kind, body in (
        ("json", {"name": "orders", "properties": None}),
        ("multipart", {"name": "orders", "properties": "null"}),
    ):
        response = client.post(TABLES, body, format=kind)
        assert response.status_code == 400, (kind, response.content)
        assert response.json() == {"properties": ["This field may not be null."]}
    form = client.post(
        TABLES, "name=orders&properties=null", content_type="application/x-www-form-urlencoded"
    )
    assert form.json() == {"properties": ["This field may not be null."]}
    url = f"{TABLES}{world['customers'].pk}/"
    assert client.patch(url, {"properties": "null"}, format="multipart").status_code == 400
    assert client.patch(url, {"properties": '{"a": 1}'}, format="multipart").status_code == 200
    assert Table.objects.get(pk=world["customers"].pk).properties == {"a": 1}
    assert not Table.objects.filter(name="orders").exists()


def test_form_null_for_source_scan_rules_is_400(world):
    client = client_for(world["steward"])
    url = f"/api/v1/sources/{world['shop'].pk}/"
    response = client.patch(url, {"scan_include_schemas": "null"}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"scan_include_schemas": ["This field may not be null."]}
