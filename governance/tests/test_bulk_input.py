"""Bad bulk files are 400s that name the problem, decided before any expensive work: text a
database cannot store (NUL, unpaired surrogates) and nesting too deep to parse safely."""

import json
import time

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


# --- nesting depth -------------------------------------------------------------------------

FIVE_MB = 5_000_000  # just under the job threshold (5 MiB): answered inline


def refused_quickly(client, content, name, **options):
    """The answer to an upload, which must be a 400 given within a second of this process's
    CPU time (client and server both run here; other processes' load does not count)."""
    started = time.process_time()
    response = upload(client, content, name, **options)
    seconds = time.process_time() - started
    assert response.status_code == 400, response.content[:300]
    assert seconds < 1, f"took {seconds:.2f} s to refuse"
    return response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "depth"),
    [
        ("[" * FIVE_MB, FIVE_MB),
        ('{"a": ' * (FIVE_MB // 6), FIVE_MB // 6),
        ('{"tables": [' + "[{}, " * (FIVE_MB // 5), 3 + FIVE_MB // 5),  # each {} adds one
    ],
    ids=["arrays", "objects", "mixed"],
)
def test_deep_json_is_refused_in_well_under_a_second_naming_the_depth(steward, content, depth):
    detail = refused_quickly(steward, content, "deep.json")
    assert detail == f"the file nests {depth} levels deep; the limit is 32"


@pytest.mark.parametrize(
    "content",
    [
        "[" * FIVE_MB,
        "{a: " * (FIVE_MB // 4),
        "- " * (FIVE_MB // 2) + "x\n",
        "[\n" * (FIVE_MB // 2),
        "".join(" " * level + "a:\n" for level in range(3000)),
        "tables:\n- " + "? " * (FIVE_MB // 2),
    ],
    ids=["flow-sequences", "flow-mappings", "block-sequences", "lines", "indents", "keys"],
)
def test_deep_yaml_is_refused_in_well_under_a_second_naming_the_depth(steward, content):
    detail = refused_quickly(steward, content, "deep.yaml", format="yaml")
    assert "more than 32 levels deep" in detail and "line" in detail


def test_yaml_alias_expansion_is_refused_at_the_first_anchor(steward):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 10):
        previous, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    detail = refused_quickly(steward, "\n".join(lines), "laughs.yaml", format="yaml")
    assert "anchor" in detail


def test_depth_is_counted_exactly_outside_strings(steward, settings):
    field = {"name": "id", "classifications": [{"rule": "r", "tag": "PII.Email"}]}
    table = {
        "source": "shop",
        "schema": "public",
        "name": "orders",
        "description": '[[[{{{"\\"[' * 40,  # brackets and quotes inside a string
        "fields": [field],
    }
    text = json.dumps({"tables": [table]})  # 7 levels: document to classification
    settings.BULK_IMPORT_MAX_DEPTH = 7
    response = upload(steward, text, "c.json", dry_run="true")
    assert response.status_code == 200, response.content
    settings.BULK_IMPORT_MAX_DEPTH = 6
    response = upload(steward, text, "c.json", dry_run="true")
    assert response.status_code == 400
    assert response.json()["detail"] == "the file nests 7 levels deep; the limit is 6"
    yaml_text = "tables:\n- name: orders\n  fields:\n  - name: id\n    classifications:\n"
    yaml_text += "    - {rule: r, tag: '[[[{{{'}\n"
    response = upload(steward, yaml_text, "c.yaml", dry_run="true")
    assert response.status_code == 400
    assert "more than 6 levels deep (line 6" in response.json()["detail"]
    settings.BULK_IMPORT_MAX_DEPTH = 7
    response = upload(steward, yaml_text, "c.yaml", dry_run="true")
    assert "levels deep" not in str(response.json())


# --- the work a file may ask for -----------------------------------------------------------


TEN_JSON = json.dumps(
    {"tables": [{"source": "shop", "name": f"t{n}", "description": "{not}"} for n in range(10)]}
)
TEN_YAML = "tables:\n" + "".join(f"- {{source: shop, name: t{n}}}\n" for n in range(10))


@pytest.mark.parametrize(("name", "content"), [("ten.json", TEN_JSON), ("ten.yaml", TEN_YAML)])
def test_more_objects_than_records_allowed_are_refused_before_they_are_built(
    steward, settings, name, content
):
    # Every parsed object costs memory whatever the file's size: the root and 10 tables
    # are 11 objects (braces inside a string do not count).
    settings.BULK_IMPORT_MAX_ROWS = 10
    response = upload(steward, content, name, dry_run="true")
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == (
        "the file holds more than 10 objects; the limit is BULK_IMPORT_MAX_ROWS (10)"
    )
    settings.BULK_IMPORT_MAX_ROWS = 11
    response = upload(steward, content, name, dry_run="true")
    assert response.status_code == 200, response.content
    assert not Table.objects.exists()


def test_yaml_has_a_smaller_size_limit_than_json(steward, settings):
    document = {"tables": [{"source": "shop", "schema": "public", "name": "orders"}]}
    settings.BULK_IMPORT_MAX_YAML_BYTES = 40
    as_json = upload(steward, json.dumps(document), "c.json", dry_run="true")
    assert as_json.status_code == 200, as_json.content
    as_yaml = upload(steward, "tables:\n- {source: shop, schema: public, name: orders}\n", "c.yaml")
    assert as_yaml.status_code == 400
    assert as_yaml.json()["detail"].startswith("the YAML file is larger than the limit of 40 bytes")
