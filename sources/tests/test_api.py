import pytest
from django.contrib.contenttypes.models import ContentType

from governance.changelog import history
from governance.models import AccessLogEntry
from governance.services import grant
from governance.testing import GovernedAPITests, client_for, make_user
from sources.models import ConnectionTest, DataSource

URL = "/api/v1/sources/"


def pg_source(name="Warehouse", **extra):
    values = {
        "kind": "postgresql",
        "host": "db.example.com",
        "port": 5432,
        "database": "app",
        "username": "app",
        "password": "s3cret-pw",
    }
    values.update(extra)
    return DataSource.objects.create(name=name, **values)


class TestDataSourceAPI(GovernedAPITests):
    model = DataSource
    url = URL
    update_data = {"description": "Orders and customers"}

    def make_object(self, index):
        return pg_source(f"source-{index}")

    def create_data(self):
        return {
            "name": "new source",
            "kind": "postgresql",
            "host": "db.example.com",
            "database": "app",
            "username": "app",
            "password": "pw",
        }


@pytest.fixture
def admin_client(db):
    return client_for(make_user("root", superuser=True))


def test_password_is_write_only_and_the_mask_keeps_it(admin_client):
    response = admin_client.post(
        URL,
        {"name": "a", "kind": "postgresql", "host": "db.example.com", "password": "first-pw"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["password"] == "******"
    source_id = response.json()["id"]
    response = admin_client.patch(
        f"{URL}{source_id}/", {"password": "******", "description": "orders"}, format="json"
    )
    assert response.status_code == 200
    assert DataSource.objects.get(pk=source_id).password == "first-pw"
    admin_client.patch(f"{URL}{source_id}/", {"password": "second-pw"}, format="json")
    assert DataSource.objects.get(pk=source_id).password == "second-pw"
    assert admin_client.get(f"{URL}{source_id}/").json()["password"] == "******"
    entry = history(DataSource.objects.get(pk=source_id)).first()
    assert entry.changed == ["password"]
    assert "second-pw" not in str(entry.before) + str(entry.after)


def test_secret_options_are_masked_and_kept(admin_client):
    response = admin_client.post(
        URL,
        {
            "name": "search",
            "kind": "elasticsearch",
            "host": "es.example.com",
            "options": {"api_key": "key-123", "connect_timeout": 3},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["options"] == {"api_key": "******", "connect_timeout": 3}
    source = DataSource.objects.get(name="search")
    assert source.options == {"connect_timeout": 3}
    assert source.secret_options == {"api_key": "key-123"}
    response = admin_client.patch(
        f"{URL}{source.pk}/",
        {"options": {"api_key": "******", "connect_timeout": 4}},
        format="json",
    )
    assert response.status_code == 200, response.content
    source.refresh_from_db()
    assert source.all_options() == {"api_key": "key-123", "connect_timeout": 4}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x", "kind": "db2", "host": "h"}, "kind"),
        ({"name": "x", "kind": "postgresql", "host": "h", "port": 70000}, "port"),
        ({"name": "x", "kind": "postgresql", "host": "h", "port": "five"}, "port"),
        ({"name": "x", "kind": "postgresql"}, "host"),
        ({"name": "n" * 201, "kind": "postgresql", "host": "h"}, "name"),
        ({"name": "x", "kind": "postgresql", "host": "h", "options": "tls=on"}, "options"),
        (
            {"name": "x", "kind": "postgresql", "host": "h", "options": {"sslkey": "/etc/x"}},
            "options",
        ),
        ({"name": "x", "kind": "mysql", "host": "h", "options": {"local_infile": True}}, "options"),
        ({"name": "x", "kind": "sqlite"}, "database"),
        ({"kind": "postgresql", "host": "h"}, "name"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_saves_nothing(admin_client, data, field):
    response = admin_client.post(URL, data, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert DataSource.objects.count() == 0


def test_malformed_json_body_is_400(admin_client):
    response = admin_client.generic("POST", URL, '{"name": "x", "kind":', "application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_create_never_updates_an_existing_source(admin_client):
    pg_source("taken")
    response = admin_client.post(
        URL, {"name": "taken", "kind": "postgresql", "host": "other"}, format="json"
    )
    assert response.status_code == 400
    assert "name" in response.json()
    assert DataSource.objects.get(name="taken").host == "db.example.com"


def test_filters_and_search(admin_client):
    owner = make_user("olivia")
    pg_source("orders", environment="prod", owner=owner)
    pg_source("stock", kind="mysql", environment="dev", description="warehouse stock")

    def names(query):
        return {s["name"] for s in admin_client.get(f"{URL}?{query}").json()["results"]}

    assert names("kind=mysql") == {"stock"}
    assert names("environment=prod") == {"orders"}
    assert names("owner=olivia") == {"orders"}
    assert names("q=warehouse") == {"stock"}
    assert admin_client.get(f"{URL}?ordering=-name").json()["results"][0]["name"] == "stock"


def test_connection_test_against_the_local_postgresql(admin_client):
    source = pg_source(
        "local pg", host="127.0.0.1", database="postgres", username="postgres", password=""
    )
    response = admin_client.post(f"{URL}{source.pk}/test")
    body = response.json()
    assert response.status_code == 200
    assert body["ok"] is True, body
    assert body["server_version"].startswith(("1", "9"))
    assert body["error_kind"] == ""
    source.refresh_from_db()
    assert source.last_test_ok is True
    log = ConnectionTest.objects.get(source=source)
    assert log.ok and log.latency_ms > 0
    assert AccessLogEntry.objects.filter(action="connection_test", object_id=source.pk).exists()
    # Recording the outcome is not an edit: no change-log entry beyond the creation.
    assert history(source).count() == 1


def test_connection_test_of_the_metadata_address_is_blocked(admin_client):
    source = pg_source("metadata", host="169.254.169.254")
    body = admin_client.post(f"{URL}{source.pk}/test").json()
    assert (body["ok"], body["error_kind"]) == (False, "blocked")


def test_connection_test_of_unsaved_settings_saves_nothing(admin_client):
    source = pg_source("local pg", host="127.0.0.1", database="postgres", username="postgres")
    body = admin_client.post(
        f"{URL}{source.pk}/test", {"port": 1, "password": "typed-pw"}, format="json"
    ).json()
    assert (body["ok"], body["error_kind"]) == (False, "refused")
    source.refresh_from_db()
    assert source.port == 5432 and source.password == "s3cret-pw"
    assert source.last_test_ok is None


def test_connection_test_needs_the_change_permission(db):
    source = pg_source()
    viewer = make_user("vera")
    grant(source, viewer, "viewer")
    response = client_for(viewer).post(f"{URL}{source.pk}/test")
    assert response.status_code == 403
    assert not ConnectionTest.objects.exists()
    denial = AccessLogEntry.objects.get(action="permission_denied")
    assert denial.user == viewer and denial.detail["path"].endswith("/test")


def test_version_history_and_restore(db):
    source = pg_source(description="v1")
    steward = make_user("sam")
    grant(source, steward, "steward")
    client = client_for(steward)
    client.patch(f"{URL}{source.pk}/", {"description": "v2"}, format="json")
    client.patch(
        f"{URL}{source.pk}/",
        {"description": "v3", "port": 5433, "password": "s3cret-pw"},
        format="json",
    )
    versions = client.get(f"{URL}{source.pk}/version-history").json()["results"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["before"]["description"] == "v2"
    assert versions[0]["changed"] == ["description", "port"]

    response = client.post(f"{URL}{source.pk}/version-history/1/restore")
    assert response.status_code == 200, response.content
    source.refresh_from_db()
    # The password was typed for port 5433: it does not go back to 5432 with the rest.
    assert (source.description, source.port, source.password) == ("v1", 5432, "")
    latest = history(source).first()
    assert (latest.version, latest.action, latest.user) == (4, "update", steward)

    assert client.post(f"{URL}{source.pk}/version-history/99/restore").status_code == 404
    viewer = make_user("vic")
    grant(source, viewer, "viewer")
    assert client_for(viewer).get(f"{URL}{source.pk}/version-history").status_code == 200
    assert client_for(viewer).post(f"{URL}{source.pk}/version-history/1/restore").status_code == 403


def test_access_control_lists_holders_and_recent_access(db):
    source = pg_source()
    steward, viewer = make_user("sam"), make_user("vic")
    grant(source, steward, "steward")
    grant(source, viewer, "viewer")
    response = client_for(steward).get(f"{URL}{source.pk}/access-control")
    assert response.status_code == 200
    users = {u["username"]: u["permissions"] for u in response.json()["users"]}
    assert users == {"sam": ["change_datasource", "view_datasource"], "vic": ["view_datasource"]}
    assert any(g["name"] == "Admin" for g in response.json()["global_groups"])
    actions = [e["action"] for e in response.json()["recent_access"]]
    assert actions.count("grant") == 3
    assert client_for(viewer).get(f"{URL}{source.pk}/access-control").status_code == 403


def test_connection_test_log_is_filtered_by_permission(db):
    mine, other = pg_source("mine", host="169.254.169.254"), pg_source("other")
    user = make_user("sam")
    grant(mine, user, "steward")
    client = client_for(user)
    client.post(f"{URL}{mine.pk}/test")
    client_for(make_user("root", superuser=True)).post(f"{URL}{other.pk}/test")
    response = client.get("/api/v1/audit/connection-tests/")
    assert [row["source"] for row in response.json()["results"]] == [mine.pk]
    response = client.get(f"/api/v1/audit/connection-tests/?source={mine.pk}")
    row = response.json()["results"][0]
    assert (row["ok"], row["error_kind"], row["user"]) == (False, "blocked", "sam")


def test_change_log_rows_name_the_model(db):
    source = pg_source()
    entry = history(source).get()
    assert entry.content_type == ContentType.objects.get_for_model(DataSource)
    assert entry.after["password"] == "******"


def test_editing_a_json_value_in_place_is_still_recorded(db):
    source = pg_source(options={"connect_timeout": 3})
    source = DataSource.objects.get(pk=source.pk)
    source.options["connect_timeout"] = 9
    source.scan_include_schemas.append("sales")
    source.save()
    entry = history(source).first()
    assert entry.changed == ["options", "scan_include_schemas"]
    assert (entry.before["options"], entry.after["options"]) == (
        {"connect_timeout": 3},
        {"connect_timeout": 9},
    )
