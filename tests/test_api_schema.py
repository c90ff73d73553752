"""The OpenAPI schema agrees with the answers: the disagreements schemathesis found stay
fixed here, and scripts/fuzz_api.sh checks every operation against a running server."""

import json

import pytest
from drf_spectacular.generators import SchemaGenerator

from catalog.models import Table, TagCategory
from governance.testing import client_for, make_user
from sources.models import DataSource


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def response_ref(schema, path, method, code="200"):
    return schema["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]


def test_pending_lineage_is_a_page_of_edges(schema):
    ref = response_ref(schema, "/api/v1/lineage/pending/", "get")
    assert ref == {"$ref": "#/components/schemas/PaginatedLineageEdgeList"}


def test_bulk_import_documents_both_of_its_400_shapes(schema):
    responses = schema["paths"]["/api/v1/bulk/import/"]["post"]["responses"]
    shapes = responses["400"]["content"]["application/json"]["schema"]["anyOf"]
    assert shapes[0] == {"$ref": "#/components/schemas/BulkImportRejected"}
    assert shapes[1]["type"] == "object"  # field errors: {"file": ["No file was submitted."]}
    rejected = schema["components"]["schemas"]["BulkImportRejected"]["properties"]
    assert {"detail", "errors", "error_count"} <= set(rejected)
    assert "counts" not in rejected


def test_every_operation_documents_the_errors_it_can_answer(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            where = f"{method.upper()} {path}"
            assert {"400", "414", "429"} <= codes, where
            if path != "/api/v1/auth/token/":
                assert {"401", "403"} <= codes, where
            if "{" in path:
                assert "404" in codes, where
            if method == "delete":
                assert "409" in codes, where
    tables = schema["paths"]["/api/v1/catalog/tables/"]["get"]
    assert "404" in tables["responses"]  # a page past the end
    assert all(p.get("allowEmptyValue") for p in tables["parameters"] if p["in"] == "query")


def test_nullable_and_per_action_answers_are_described(schema):
    components = schema["components"]["schemas"]
    assert components["JobRun"]["properties"]["user"]["nullable"] is True
    assert components["JobRun"]["properties"]["duration"]["nullable"] is True
    assert components["LineageEdge"]["properties"]["decided_by"]["nullable"] is True
    assert components["LineageEvidence"]["properties"]["run"]["nullable"] is True
    search = response_ref(schema, "/api/v1/catalog/search/", "get")
    assert search == {"$ref": "#/components/schemas/SearchResults"}  # one object, not a list
    tags = response_ref(schema, "/api/v1/sources/{id}/tags/", "get")
    assert tags["items"] == {"$ref": "#/components/schemas/TagUse"}
    tasks = response_ref(schema, "/api/v1/sources/{id}/scheduled-tasks/", "get")
    assert tasks["items"] == {"$ref": "#/components/schemas/ScheduledTask"}
    batch = "/api/v1/catalog/tables/{id}/fields/batch/"
    assert response_ref(schema, batch, "post", "201")["type"] == "array"
    assert "post" not in schema["paths"]["/api/v1/catalog/classifications/"]
    export = schema["paths"]["/api/v1/bulk/export/"]["get"]["responses"]["200"]["content"]
    assert export["application/json"]["schema"]["type"] == "object"
    assert {"text/csv", "application/yaml"} <= set(export)


@pytest.mark.django_db
def test_answers_match_the_schema_where_they_did_not():
    admin = make_user("root", superuser=True)
    client = client_for(admin)
    created = client.post("/api/v1/catalog/tables/", {"name": "orders"}, format="json")
    assert created.status_code == 201
    assert created.json()["field_count"] == 0
    missing = client.get("/api/v1/lineage/not-a-number/")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found."}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("get", "/api/v1/catalog/tables/?removed=1", None, "removed"),
        (
            "get",
            "/api/v1/catalog/tag-categories/?mutually_exclusive=yes",
            None,
            "mutually_exclusive",
        ),
        ("get", "/api/v1/jobs/?target_id=0.5", None, "target_id"),
        ("get", "/api/v1/sources/?page_size=null", None, "page_size"),
        ("post", "/api/v1/catalog/tag-categories/", {"name": "A", "description": 0}, "description"),
        (
            "post",
            "/api/v1/catalog/tag-categories/",
            {"name": "B", "mutually_exclusive": 0},
            "mutually_exclusive",
        ),
        ("post", "/api/v1/catalog/tags/", {"category": 0, "name": "C"}, "category"),
        ("post", "/api/v1/catalog/tables/", {"name": "d", "tags": {}}, "tags"),
        ("post", "/api/v1/sources/{source}/test", None, "non_field_errors"),
    ],
)
def test_values_of_another_type_than_the_schema_states_are_400(method, path, body, field):
    source = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    client = client_for(make_user("root", superuser=True))
    counts = (TagCategory.objects.count(), Table.objects.count())
    path = path.format(source=source.pk)
    if method == "get":
        response = client.get(path)
    else:
        response = client.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert (TagCategory.objects.count(), Table.objects.count()) == counts
