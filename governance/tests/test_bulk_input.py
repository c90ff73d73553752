"""Bad bulk files are 400s that name the problem, decided before any expensive work: text a
database cannot store (NUL, unpaired surrogates) and nesting too deep to parse safely."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import Table
from governance.services import grant
from governance.testing import client_for, make_user
from sources.models import DataSource

IMPORT = "/api/v1/bulk/import"


@pytest.fixture
def steward(db):
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    user = make_user("stella", staff=True)
    grant(shop, user, "steward")
    return client_for(user)


def upload(client, content, name, **options):
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    return client.post(
        IMPORT, {"file": SimpleUploadedFile(name, content), **options}, format="multipart"
    )


# --- text a database cannot store ----------------------------------------------------------


def test_nul_in_csv_cells_is_a_400_naming_each_row_and_column(steward):
    rows = [
        "record_type,source,schema,table,table_description,field,field_tags",
        "field,shop,public,orders,One row\x00 per order,id,",
        "field,shop,public,orders,One row\x00 per order,email,PII\x00.Email",
        "lineage,,,,,,",
    ]
    response = upload(steward, "\n".join(rows), "c.csv")
    assert response.status_code == 400, response.content
    body = response.json()
    found = {(e["row"], e["field"]) for e in body["errors"] if "NUL" in e["message"]}
    assert found == {(2, "table_description"), (3, "table_description"), (3, "field_tags")}
    assert "row 3" in {e["location"] for e in body["errors"]}
    assert not Table.objects.exists()


@pytest.mark.parametrize(
    ("table", "pointer", "what"),
    [
        ({"description": "a\u0000b"}, "/tables/0/description", "NUL"),
        ({"tags": ["PII.E\u0000mail"]}, "/tables/0/tags/0", "NUL"),
        ({"fields": [{"name": "i\u0000d"}]}, "/tables/0/fields/0/name", "NUL"),
        ({"fields": [{"name": "id", "x\u0000": 1}]}, "/tables/0/fields/0/x", "NUL"),
        ({"comment": "\ud83d"}, "/tables/0/comment", "surrogate"),
        (
            {"fields": [{"name": "e", "classifications": [{"rule": "r\u0000", "tag": "P.E"}]}]},
            "/tables/0/fields/0/classifications/0/rule",
            "NUL",
        ),
    ],
)
def test_nul_and_unpaired_surrogates_in_json_are_a_400_with_the_pointer(
    steward, table, pointer, what
):
    record = {"source": "shop", "schema": "public", "name": "orders", **table}
    edge = {"source": "shop.public.a\u0000", "target": "shop.public.orders"}
    text = json.dumps({"tables": [record], "lineage": [edge]})
    response = upload(steward, text, "c.json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(what in e["message"] for e in errors if e["location"] == pointer)
    assert any("NUL" in e["message"] for e in errors if e["location"] == "/lineage/0/source")
    assert not Table.objects.exists()


def test_nul_in_yaml_is_a_400_with_the_pointer(steward):
    text = 'tables:\n- {source: shop, schema: public, name: "ord\\0ers"}\n'
    response = upload(steward, text, "c.yaml")
    assert response.status_code == 400, response.content
    assert [e["location"] for e in response.json()["errors"]] == ["/tables/0/name"]
