from governance import changelog
from governance.models import ChangeLogEntry
from governance.testing import client_for, make_user
from sources.models import DataSource


def test_rows_read_inside_reading_are_not_remembered_but_saves_still_log_the_stored_state(db):
    source = DataSource.objects.create(
        name="shop", kind="postgresql", host="db.example.com", options={"sslmode": "require"}
    )
    with changelog.reading():
        loaded = DataSource.objects.get(pk=source.pk)
        assert not hasattr(loaded, "_changelog_values")
        loaded.options["sslmode"] = "verify-full"  # edited in place, as code may do
        loaded.host = "db2.example.com"
        loaded.save()
    entry = ChangeLogEntry.objects.filter(object_id=source.pk).order_by("-version").first()
    assert entry.action == "update"
    assert entry.before["host"] == "db.example.com"
    assert entry.before["options"] == {"sslmode": "require"}
    assert entry.after["options"] == {"sslmode": "verify-full"}
    assert set(entry.changed) == {"host", "options"}
    assert hasattr(DataSource.objects.get(pk=source.pk), "_changelog_values")  # outside


def test_a_get_request_reads_without_remembering_and_a_patch_still_logs(db):
    source = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    client = client_for(make_user("root", superuser=True))
    seen = []
    original = changelog.remember

    def spy(instance, values=None):
        seen.append(type(instance).__name__)
        return original(instance, values)

    changelog.remember = spy
    try:
        assert client.get("/api/v1/sources/").status_code == 200
        assert client.get(f"/api/v1/sources/{source.pk}/").status_code == 200
        assert "DataSource" not in seen
        response = client.patch(f"/api/v1/sources/{source.pk}/", {"description": "orders"})
        assert response.status_code == 200
    finally:
        changelog.remember = original
    assert "DataSource" in seen
    entry = ChangeLogEntry.objects.filter(object_id=source.pk).order_by("-version").first()
    assert entry.changed == ["description"]
