"""Whole scans of document stores into the catalog: MongoDB through a FAKE client
(mongomock) and Elasticsearch through a FAKE loopback server (see sources/tests/fakes.py),
plus the same scans against real servers when MONGO_URL / ELASTICSEARCH_URL are set."""

import os
from urllib.parse import urlsplit

import pytest

from catalog.models import Classification, Field, Table
from catalog.services import source_scan
from governance.models import ChangeLogEntry
from sources.connectors.mongodb import MongoDBConnector
from sources.models import DataSource
from sources.tests.fakes import FakeElasticsearch, FakeMongoClient
from sources.tests.test_introspection import ES_INDICES, MONGO_USERS


@pytest.fixture
def fake_mongo(monkeypatch, db):
    FakeMongoClient.reset()
    monkeypatch.setattr(MongoDBConnector, "client_class", FakeMongoClient)
    client = FakeMongoClient()
    client.shop.users.insert_many([dict(doc) for doc in MONGO_USERS])
    client.shop.create_collection("empty")
    return DataSource.objects.create(
        name="docs", kind="mongodb", host="127.0.0.1", database="shop", scan_sample_values=True
    )


def written_rows():
    return (
        Table.objects.count(),
        Field.objects.count(),
        Classification.objects.count(),
        ChangeLogEntry.objects.count(),
    )


def test_a_mongodb_scan_catalogs_collections_with_dotted_fields_and_rescans_quietly(fake_mongo):
    counts = source_scan(source=fake_mongo)
    assert counts["tables_added"] == 2
    users = Table.objects.get(source=fake_mongo, name="users")
    assert (users.kind, users.schema, users.row_count) == ("collection", "shop", 4)
    fields = {f.name: f for f in users.fields.all()}
    assert {"address.city", "address.zip", "items.sku", "items.qty"} <= set(fields)
    assert fields["_id"].is_primary_key and fields["address.zip"].presence == 0.25
    assert Table.objects.get(source=fake_mongo, name="empty").fields.count() == 0
    before = written_rows()
    again = source_scan(source=fake_mongo)
    assert not any(again.values())
    assert written_rows() == before


def test_an_elasticsearch_scan_catalogs_indices_and_classifies_sampled_emails(db):
    with FakeElasticsearch(username="elastic", password="pw", indices=ES_INDICES) as server:
        source = DataSource.objects.create(
            name="search",
            kind="elasticsearch",
            host="127.0.0.1",
            port=server.port,
            username="elastic",
            password="pw",
            scan_sample_values=True,
        )
        source_scan(source=source)
        customers = Table.objects.get(source=source, name="customers")
        assert customers.kind == "index"
        names = set(customers.fields.values_list("name", flat=True))
        assert {"address.city", "orders.sku", "orders.total", "email"} <= names
        email = customers.fields.get(name="email")
        assert email.classifications.filter(tag__name="Email").exists()
        assert not Table.objects.filter(source=source, name=".security").exists()
        before = written_rows()
        assert not any(source_scan(source=source).values())
        assert written_rows() == before


def _source_from_url(url, kind, **extra):
    parts = urlsplit(url)
    return DataSource.objects.create(
        name=f"{kind} integration",
        kind=kind,
        host=parts.hostname,
        port=parts.port,
        username=parts.username or "",
        password=parts.password or "",
        database=parts.path.strip("/"),
        **extra,
    )


@pytest.mark.skipif(not os.environ.get("MONGO_URL"), reason="MONGO_URL is not set")
def test_mongodb_scan_integration(db, settings):
    settings.SOURCE_HOSTS_ALLOW = [urlsplit(os.environ["MONGO_URL"]).hostname]
    source = _source_from_url(os.environ["MONGO_URL"], "mongodb")
    counts = source_scan(source=source)
    assert counts["tables_added"] == Table.objects.filter(source=source).count()
    assert not any(source_scan(source=source).values())


@pytest.mark.skipif(not os.environ.get("ELASTICSEARCH_URL"), reason="ELASTICSEARCH_URL is not set")
def test_elasticsearch_scan_integration(db, settings):
    settings.SOURCE_HOSTS_ALLOW = [urlsplit(os.environ["ELASTICSEARCH_URL"]).hostname]
    source = _source_from_url(os.environ["ELASTICSEARCH_URL"], "elasticsearch")
    counts = source_scan(source=source)
    assert counts["tables_added"] == Table.objects.filter(source=source).count()
    assert not any(source_scan(source=source).values())
