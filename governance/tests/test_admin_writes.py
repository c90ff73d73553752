"""The pieces GovernedAdmin and the API share to keep writes inside the user's grants:
may_write after every save, the owner rule, and the admin's formsets and list filters."""

import pytest
from django import forms
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory

from catalog.models import Classification, Field, Table, Tag, TagCategory
from governance.admin import GovernedAdmin
from governance.models import ChangeLogEntry
from governance.permissions import may_write
from governance.services import grant
from governance.testing import client_for, make_user
from lineage.models import LineageNamespace
from sources.models import DataSource

INVALID = ["Select a valid choice. That choice is not one of the available choices."]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    sources = {
        name: DataSource.objects.create(name=name, kind="sqlite", database=f"{name}.db")
        for name in ("alpha", "bravo", "charlie")
    }
    steward = make_user("sam", roles=["Steward"], staff=True)
    grant(sources["alpha"], steward, "steward")
    grant(sources["charlie"], steward, "viewer")
    former = make_user("former")
    former.is_active = False
    former.save()
    gone = make_user("gone")
    gone.is_active = False
    gone.save()
    return {**sources, "steward": steward, "former": former, "gone": gone}


def request_as(user, method="get", path="/admin/", data=None):
    request = getattr(RequestFactory(), method)(path, data or {})
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    request._dont_enforce_csrf_checks = True
    return request


def test_moving_needs_change_on_the_old_and_the_new_parent(world):
    steward, mapping = world["steward"], None
    grant(world["bravo"], steward, "steward")
    mapping = LineageNamespace.objects.create(namespace="ns://x", source=world["alpha"])
    moved = LineageNamespace.objects.get(pk=mapping.pk)
    moved.source = world["bravo"]
    assert may_write(steward, "change", moved, mapping)
    moved.source = world["charlie"]  # viewer only
    assert not may_write(steward, "change", moved, mapping)
    back = LineageNamespace.objects.get(pk=mapping.pk)
    stranger = LineageNamespace(namespace="ns://y", source=world["charlie"])
    assert not may_write(steward, "change", back, stranger)
    assert may_write(steward, "add", LineageNamespace(source=world["alpha"]))
    assert not may_write(steward, "add", LineageNamespace(source=world["charlie"]))


class RetargetForm(forms.ModelForm):
    """A form that sets the parent through a field of its own, which the admin's narrowing
    of relation fields does not know about: only the check after saving stands in the way."""

    target = forms.ModelChoiceField(queryset=DataSource.objects.all())

    class Meta:
        model = LineageNamespace
        fields = ["namespace"]

    def clean(self):
        cleaned = super().clean()
        self.instance.source = cleaned.get("target")
        return cleaned


class RetargetAdmin(GovernedAdmin):
    form = RetargetForm
    fields = ["namespace", "target"]


def test_a_save_the_form_let_through_is_checked_and_undone(world):
    model_admin = RetargetAdmin(LineageNamespace, admin.AdminSite(name="probe"))
    logs = ChangeLogEntry.objects.count()
    forged = {"namespace": "ns://x", "target": world["bravo"].pk}
    with pytest.raises(PermissionDenied, match="may not add this lineage namespace as written"):
        model_admin.add_view(request_as(world["steward"], "post", data=forged))
    assert (LineageNamespace.objects.count(), ChangeLogEntry.objects.count()) == (0, logs)

    allowed = {"namespace": "ns://x", "target": world["alpha"].pk}
    assert (
        model_admin.add_view(request_as(world["steward"], "post", data=allowed)).status_code == 302
    )
    assert LineageNamespace.objects.get().source == world["alpha"]


def test_an_inline_row_names_only_rows_of_its_own_object(world):
    # Global permissions on fields make the table page's field rows editable.
    editor = make_user("eddie", perms=["catalog.view_field", "catalog.change_field"], staff=True)
    grant(world["alpha"], editor, "steward")
    table = Table.objects.create(source=world["alpha"], schema="main", name="orders")
    hidden = Field.objects.create(
        table=Table.objects.create(source=world["bravo"], schema="main", name="payroll"),
        name="salary",
    )
    client = Client()
    client.force_login(editor)

    def post_row(row_id):
        data = {
            "schema": "main",
            "name": "orders",
            "kind": "table",
            "fields-TOTAL_FORMS": "1",
            "fields-INITIAL_FORMS": "1",
            "fields-MIN_NUM_FORMS": "0",
            "fields-MAX_NUM_FORMS": "1000",
            "fields-0-id": row_id,
            "fields-0-table": table.pk,
            "fields-0-name": "renamed",
            "fields-0-position": "1",
        }
        response = client.post(f"/admin/catalog/table/{table.pk}/change/", data)
        assert response.status_code == 200
        return response.context["inline_admin_formsets"][0].formset.errors[0]

    assert post_row(hidden.pk) == post_row(999999)
    assert post_row(hidden.pk)["id"] == INVALID
    hidden.refresh_from_db()
    assert (hidden.name, Field.objects.count()) == ("salary", 1)


class TableByRelations(GovernedAdmin):
    list_filter = ["source", "owner"]


def test_a_relation_filter_lists_what_the_user_may_view(world):
    steward = world["steward"]
    world["alpha"].tables.create(schema="main", name="orders", owner=world["former"])
    model_admin = TableByRelations(Table, admin.AdminSite(name="probe"))
    changelist = model_admin.get_changelist_instance(request_as(steward))
    choices = {
        spec.title: {label for _, label in spec.lookup_choices} for spec in changelist.filter_specs
    }
    assert choices["source"] == {"alpha", "charlie"}
    assert "former" not in choices["owner"] and "sam" in choices["owner"]


def test_an_inactive_owner_stays_but_no_other_can_be_named(world):
    table = Table.objects.create(
        source=world["alpha"], schema="main", name="orders", owner=world["former"]
    )
    client = Client()
    client.force_login(world["steward"])
    page = f"/admin/catalog/table/{table.pk}/change/"
    owners = client.get(page).context["adminform"].form.fields["owner"].queryset
    assert "former" in {u.username for u in owners} and "gone" not in {u.username for u in owners}
    data = {"schema": "main", "name": "orders", "kind": "table", "owner": world["former"].pk}
    data.update({f"fields-{k}": v for k, v in {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0}.items()})
    assert client.post(page, {**data, "description": "kept"}).status_code == 302
    forged = client.post(page, {**data, "owner": world["gone"].pk})
    missing = client.post(page, {**data, "owner": 999999})
    assert forged.context["adminform"].form.errors["owner"] == INVALID
    assert forged.context["adminform"].form.errors == missing.context["adminform"].form.errors
    table.refresh_from_db()
    assert (table.owner, table.description) == (world["former"], "kept")


@pytest.mark.parametrize("url", ["/api/v1/catalog/tables/", "/api/v1/sources/"])
def test_the_api_names_owners_by_the_same_rule(world, url):
    if "sources" in url:
        obj = world["alpha"]
        DataSource.objects.filter(pk=obj.pk).update(owner=world["former"])
    else:
        obj = Table.objects.create(
            source=world["alpha"], schema="main", name="orders", owner=world["former"]
        )
    api = client_for(world["steward"])
    detail = f"{url}{obj.pk}/"
    gone = api.patch(detail, {"owner": "gone"}, format="json")
    missing = api.patch(detail, {"owner": "nobody-here"}, format="json")
    assert gone.status_code == missing.status_code == 400
    assert gone.json() == {"owner": ["Object with username=gone does not exist."]}
    assert missing.json() == {"owner": ["Object with username=nobody-here does not exist."]}
    kept = api.patch(detail, {"owner": "former", "description": "kept"}, format="json")
    assert kept.status_code == 200, kept.content
    assert (kept.json()["owner"], kept.json()["description"]) == ("former", "kept")
    assert api.patch(detail, {"owner": "sam"}, format="json").json()["owner"] == "sam"


def test_delete_pages_name_only_what_the_user_may_view(world):
    steward = world["steward"]
    tag = Tag.objects.create(category=TagCategory.objects.create(name="Probe"), name="Email")
    grant(tag, steward, "owner")
    for source, name in ((world["alpha"], "email"), (world["bravo"], "salary_secret")):
        table = Table.objects.create(source=source, schema="main", name="people")
        field = Field.objects.create(table=table, name=name)
        Classification.objects.create(field=field, rule="email", tag=tag, method="name")
    client = Client()
    client.force_login(steward)
    page = client.get(f"/admin/catalog/tag/{tag.pk}/delete/")
    action = client.post(
        "/admin/catalog/tag/", {"action": "delete_selected", "_selected_action": [tag.pk]}
    )
    for response in (page, action):
        assert response.status_code == 200
        protected = response.context["protected"]
        assert len(protected) == 2
        assert "Classification: one you may not view" in protected
        assert any("alpha.main.people.email" in item for item in protected)
        assert "salary_secret" not in response.content.decode()
    assert Tag.objects.filter(pk=tag.pk).exists()
