"""Data migrations of sources, run forward on a real database."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("sources", "0002_datasource_last_scan_at_and_more")
AFTER = ("sources", "0003_mongodb_sources_connect_directly")


@pytest.mark.django_db(transaction=True)
def test_mongodb_sources_lose_the_direct_connection_option():
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps.get_model("sources", "DataSource")
    mongo = old.objects.create(
        name="m",
        kind="mongodb",
        host="db.example.com",
        options={"direct_connection": False, "replica_set": "rs0"},
    )
    other = old.objects.create(name="p", kind="postgresql", host="db.example.com", options={})
    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])
    new = executor.loader.project_state([AFTER]).apps.get_model("sources", "DataSource")
    assert new.objects.get(pk=mongo.pk).options == {"replica_set": "rs0"}
    assert new.objects.get(pk=other.pk).options == {}
