"""The read endpoints' own path: the same JSON as DRF's ModelSerializer would give, without
decrypting passwords and with a number of queries that does not grow with the page."""

import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.utils.encoders import JSONEncoder

from governance import crypto
from governance.services import grant
from governance.testing import client_for, make_user
from sources.api.serializers import DataSourceSerializer
from sources.models import DataSource

URL = "/api/v1/sources/"


class GenericDataSourceSerializer(DataSourceSerializer):
    """The representation as ModelSerializer builds it, on a fully loaded source."""

    def to_representation(self, instance):
        data = serializers.ModelSerializer.to_representation(self, instance)
        data["password"] = crypto.MASK if instance.password else ""
        data["options"] = instance.masked_options()
        return data


def generic(source_ids):
    sources = DataSource.objects.select_related("owner").filter(pk__in=source_ids)
    data = GenericDataSourceSerializer(sources, many=True).data
    return {item["id"]: item for item in json.loads(json.dumps(data, cls=JSONEncoder))}


def create(options=None, password="", **values):
    source = DataSource(**values)
    # Secret option keys go to the encrypted secret_options.
    source.set_secrets(None, password=password, options=options or {})
    source.save()
    return source


@pytest.fixture
def sources(db):
    owner = make_user("olivia")
    with_everything = create(
        name="orders",
        kind="postgresql",
        host="db.example.com",
        port=5432,
        database="app",
        username="app",
        password="orders-pw",
        options={"connect_timeout": 3},
        environment="prod",
        owner=owner,
        description="Orders",
        scan_include_schemas=["sales*"],
        scan_schedule="0 3 * * *",
        last_test_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        last_test_ok=False,
        last_test_error_kind="auth",
        last_test_error="password authentication failed",
    )
    bare = create(name="files", kind="sqlite", database="shop.sqlite3")
    search = create(
        name="search",
        kind="elasticsearch",
        host="es.example.com",
        options={"api_key": "key-123"},
        is_active=False,
    )
    return [with_everything, bare, search]


def test_list_and_detail_match_the_model_serializer(sources):
    client = client_for(make_user("root", superuser=True))
    expected = generic([s.pk for s in sources])
    results = client.get(URL).json()["results"]
    assert {item["id"]: item for item in results} == expected
    for source in sources:
        assert client.get(f"{URL}{source.pk}/").json() == expected[source.pk]
    orders = expected[sources[0].pk]
    assert (orders["password"], orders["owner"]) == ("******", "olivia")
    assert orders["options"] == {"connect_timeout": 3}
    assert expected[sources[2].pk]["options"] == {"api_key": "******"}
    assert orders["last_test_at"] == "2026-01-02T03:04:05.678901Z"
    assert (expected[sources[1].pk]["password"], expected[sources[1].pk]["owner"]) == ("", None)
    assert list(results[0]) == list(DataSourceSerializer.Meta.fields)


def test_reads_never_decrypt_a_password(sources, monkeypatch):
    decrypted = []
    real_decrypt = crypto.decrypt

    def spy(token):
        plaintext = real_decrypt(token)
        decrypted.append(plaintext)
        return plaintext

    monkeypatch.setattr(crypto, "decrypt", spy)
    client = client_for(make_user("root", superuser=True))
    body = client.get(URL).content.decode() + client.get(f"{URL}{sources[0].pk}/").content.decode()
    assert "orders-pw" not in decrypted
    assert "orders-pw" not in body and "key-123" not in body
    # An edit still works on the stored secret: the mask keeps it.
    response = client.patch(
        f"{URL}{sources[0].pk}/", {"password": "******", "description": "v2"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["password"] == "******"
    assert DataSource.objects.get(pk=sources[0].pk).password == "orders-pw"


def test_password_removed_reads_back_empty(sources):
    client = client_for(make_user("root", superuser=True))
    response = client.patch(f"{URL}{sources[0].pk}/", {"password": ""}, format="json")
    assert response.json()["password"] == ""
    assert client.get(f"{URL}{sources[0].pk}/").json()["password"] == ""
    assert client.get(URL).json()["results"][1]["password"] == ""


@pytest.mark.parametrize("superuser", [True, False])
def test_list_queries_do_not_grow_with_the_page(db, superuser):
    user = make_user("reader", superuser=superuser)
    client = client_for(user)

    def add_sources(start, count):
        for i in range(start, start + count):
            source = DataSource.objects.create(
                name=f"s{i:03d}", kind="postgresql", host="h", password="pw", owner=user
            )
            if not superuser:
                grant(source, user, "viewer")

    def queries():
        client.get(URL)  # content types and other per-process caches
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(URL)
        return len(response.json()["results"]), len(ctx.captured_queries)

    add_sources(0, 2)
    few = queries()
    add_sources(2, 20)
    many = queries()
    assert (few[0], many[0]) == (2, 22)
    assert few[1] == many[1]


def test_a_viewer_reads_only_granted_sources_through_the_read_path(sources):
    viewer = make_user("vic")
    grant(sources[0], viewer, "viewer")
    client = client_for(viewer)
    results = client.get(URL).json()["results"]
    assert [item["name"] for item in results] == ["orders"]
    assert results[0] == generic([sources[0].pk])[sources[0].pk]
    assert client.get(f"{URL}{sources[1].pk}/").status_code == 404
    assert client.get(f"{URL}{sources[0].pk}/").json()["owner"] == "olivia"
