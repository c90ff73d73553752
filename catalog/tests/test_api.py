import pytest
from django.db import connection

from catalog.models import Field, Table, Tag, TagCategory
from governance.services import grant
from governance.testing import GovernedAPITests, client_for, make_user
from sources.models import DataSource

TABLES = "/api/v1/catalog/tables/"


class TestManualTableAPI(GovernedAPITests):
    model = Table
    url = TABLES
    update_data = {"description": "Customer master data"}

    def make_object(self, index):
        return Table.objects.create(name=f"table_{index}", schema="crm")

    def create_data(self):
        return {"name": "new_table", "schema": "crm", "kind": "table"}


@pytest.fixture
def scanned(db):
    source = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    table = Table.objects.create(source=source, schema="public", name="customers")
    Field.objects.create(table=table, name="email", position=1, data_type="string")
    other_source = DataSource.objects.create(name="hr", kind="postgresql", host="db.example.com")
    other = Table.objects.create(source=other_source, schema="public", name="salaries")
    return source, table, other


def test_a_grant_on_a_source_covers_its_tables_and_fields(scanned):
    source, table, other = scanned
    user = make_user("vic")
    grant(source, user, "viewer")
    client = client_for(user)
    assert {t["id"] for t in client.get(TABLES).json()["results"]} == {table.pk}
    assert client.get(f"{TABLES}{other.pk}/").status_code == 404
    fields = client.get(f"{TABLES}{table.pk}/fields/").json()["results"]
    assert [f["name"] for f in fields] == ["email"]
    field_id = fields[0]["id"]
    assert (
        client.patch(f"/api/v1/catalog/fields/{field_id}/", {"description": "x"}).status_code == 403
    )
    grant(source, user, "steward")
    response = client.patch(
        f"/api/v1/catalog/fields/{field_id}/", {"description": "Login email"}, format="json"
    )
    assert response.status_code == 200
    assert client.get(f"/api/v1/catalog/fields/?source={other.source_id}").json()["count"] == 0


def test_tags_are_set_by_name_and_exclusive_categories_hold(scanned):
    _, table, _ = scanned
    tier = TagCategory.objects.create(name="Tier", mutually_exclusive=True)
    Tag.objects.create(category=tier, name="Gold")
    Tag.objects.create(category=tier, name="Bronze")
    domain = TagCategory.objects.create(name="Domain")
    Tag.objects.create(category=domain, name="Sales")
    client = client_for(make_user("root", superuser=True))
    url = f"{TABLES}{table.pk}/"
    response = client.patch(url, {"tags": ["Tier.Gold", "Domain.Sales"]}, format="json")
    assert response.status_code == 200 and response.json()["tags"] == ["Domain.Sales", "Tier.Gold"]
    response = client.patch(url, {"tags": ["Tier.Gold", "Tier.Bronze"]}, format="json")
    assert response.status_code == 400 and "mutually exclusive" in str(response.json()["tags"])
    response = client.patch(url, {"tags": ["Tier.Platinum"]}, format="json")
    assert response.status_code == 400 and "tags" in response.json()


def test_batch_fields_are_all_or_nothing_with_errors_by_index(db):
    table = Table.objects.create(name="events")
    client = client_for(make_user("root", superuser=True))
    url = f"{TABLES}{table.pk}/fields/batch"
    response = client.post(
        url,
        [
            {"name": "id", "data_type": "integer", "is_primary_key": True},
            {"name": "", "data_type": "string"},
            {"name": "payload", "nullable": "maybe"},
            {"name": "id"},
        ],
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"1", "2", "3"}
    assert "name" in errors["1"] and "nullable" in errors["2"] and "name" in errors["3"]
    assert not Field.objects.exists()
    response = client.post(
        url,
        [{"name": "id", "data_type": "integer"}, {"name": "payload", "data_type": "json"}],
        format="json",
    )
    assert response.status_code == 201
    assert [f.name for f in table.fields.all()] == ["id", "payload"]
    assert client.post(url, {"name": "x"}, format="json").status_code == 400


def test_create_never_updates_an_existing_table(db):
    Table.objects.create(name="events", schema="app", description="original")
    client = client_for(make_user("root", superuser=True))
    response = client.post(
        TABLES, {"name": "events", "schema": "app", "description": "new"}, format="json"
    )
    assert response.status_code == 400 and "name" in response.json()
    assert Table.objects.get(name="events").description == "original"


def test_a_table_cannot_be_created_under_a_source_without_change_permission(scanned):
    source, _, _ = scanned
    user = make_user("vic", roles=["Steward"])
    grant(source, user, "viewer")
    response = client_for(user).post(TABLES, {"name": "x", "source": source.pk}, format="json")
    assert response.status_code == 403
    assert not Table.objects.filter(name="x").exists()
    grant(source, user, "steward")
    response = client_for(user).post(TABLES, {"name": "x", "source": source.pk}, format="json")
    assert response.status_code == 201


def test_search_finds_comments_tags_and_typos(scanned):
    source, table, other = scanned
    field = Field.objects.get(table=table, name="email")
    field.comment = "where receipts go"
    field.save()
    tag = Tag.objects.create(category=TagCategory.objects.create(name="Domain"), name="Billing")
    other.tags.add(tag)
    admin = client_for(make_user("root", superuser=True))

    def found(q):
        return {
            (r["type"], r["name"])
            for r in admin.get(f"/api/v1/catalog/search?q={q}").json()["results"]
        }

    assert found("receipts") == {("field", "email")}
    assert found("billing") == {("table", "salaries")}
    assert found("nothing-like-this") == set()
    if connection.vendor == "postgresql":
        assert ("table", "customers") in found("custmers")  # a typo still finds the name


@pytest.mark.skipif(connection.vendor != "postgresql", reason="typo matching needs pg_trgm")
def test_typo_matches_fill_only_an_answer_exact_matches_leave_short(scanned):
    _, table, _ = scanned
    Field.objects.bulk_create(
        Field(table=table, name=name, position=100 + n)
        for n, name in enumerate(["order_0", "order_1", "order_2", "orders"])
    )
    admin = client_for(make_user("root", superuser=True))

    def found(q, limit):
        answer = admin.get(f"/api/v1/catalog/search?q={q}&limit={limit}").json()["results"]
        return [r["name"] for r in answer]

    assert "orders" in found("ordrs", 50)  # nothing contains "ordrs": the typo match answers
    # Three names contain "order_"; "orders" is only within a typo of it.
    assert sorted(found("order_", 3)) == ["order_0", "order_1", "order_2"]
    longer = found("order_", 50)
    assert sorted(longer[:3]) == ["order_0", "order_1", "order_2"]
    assert longer[3:] == ["orders"]


def test_search_ranks_names_and_respects_permissions(scanned):
    source, table, other = scanned
    Field.objects.create(table=other, name="salary_amount", description="gross pay")
    table.description = "Everyone who bought"
    table.save()
    Field.objects.create(table=table, name="customer_since", description="first order")
    user = make_user("vic")
    grant(source, user, "viewer")
    client = client_for(user)
    results = client.get("/api/v1/catalog/search?q=customers").json()["results"]
    assert results[0]["type"] == "table" and results[0]["id"] == table.pk
    assert client.get("/api/v1/catalog/search?q=salar").json()["count"] == 0  # not granted
    admin = client_for(make_user("root", superuser=True))
    found = admin.get("/api/v1/catalog/search?q=salar").json()["results"]
    assert {(r["type"], r["name"]) for r in found} == {
        ("field", "salary_amount"),
        ("table", "salaries"),
    }
    bought = client.get("/api/v1/catalog/search?q=bought").json()["results"]
    assert [r["id"] for r in bought] == [table.pk]
    assert client.get("/api/v1/catalog/search").status_code == 400
    filtered = admin.get(f"/api/v1/catalog/search?q=salar&source={source.pk}").json()
    assert filtered["count"] == 0


def test_renaming_a_source_renames_its_tables(db):
    old = DataSource.objects.create(name="crm", kind="sqlite", database="crm.db")
    users = Table.objects.create(source=old, schema="main", name="users")
    index = Table.objects.create(source=old, schema="", name="events")
    manual = Table.objects.create(source=None, schema="crm", name="users")
    old.name = "crm-2019"
    old.save()
    assert Table.objects.get(pk=users.pk).fqn == "crm-2019.main.users"
    assert Table.objects.get(pk=index.pk).fqn == "crm-2019.events"
    assert Table.objects.get(pk=manual.pk).fqn == "manual.crm.users"
    # The old name is free again: a new source of that name catalogs the same table.
    new = DataSource.objects.create(name="crm", kind="sqlite", database="crm2.db")
    assert Table.objects.create(source=new, schema="main", name="users").fqn == "crm.main.users"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the index is PostgreSQL's")
@pytest.mark.parametrize("model", [Table, Field])
def test_search_text_matches_through_its_trigram_index(db, model):
    """The index is on UPPER(search_text), the expression icontains compares: a change to
    either side would leave every search reading every row."""
    matching = model.objects.filter(search_text__icontains="receipts").order_by()
    sql, params = matching.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"{model._meta.db_table}_search_text_upper_trgm" in plan, plan
