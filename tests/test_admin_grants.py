"""Every admin screen, generated from the admin registry (a new app's admin is covered without
writing anything here), used by a Steward granted on source A, with a viewer grant on source
V and nothing on source B:

- every relation field of every add and change form (autocompletes included) offers A's
  object, V's only where viewing is enough, never B's; of users, only active ones;
- a forged id (B's, or V's where change is needed) is refused with exactly the error of an id
  that does not exist, and nothing is written, while the same form with a usable id saves;
- an inline row posted as an existing one that is not (B's row) is refused like a missing one;
- no list filter names what the user may not see;
- actions leave every object the user may not change as it was.

The objects come from RECIPES, one per model on each side; a model that appears in the
registry or in a relation without a recipe fails here until it gets one.
"""

import re
import sqlite3
from pathlib import Path

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import Client, RequestFactory
from django.urls import reverse

from catalog.models import (
    Classification,
    ClassifierRule,
    Field,
    SchemaVersion,
    Table,
    Tag,
    TagCategory,
)
from governance import tokens
from governance.admin import GovernedAdmin
from governance.models import AccessLogEntry, ApiToken, BaseModel, ChangeLogEntry, JobRun
from governance.permissions import is_governed
from governance.services import grant
from governance.testing import make_user
from lineage.models import LineageEdge, LineageNamespace
from sources.models import ConnectionTest, DataSource

SIDES = ("A", "V", "B")
SOURCE_NAMES = {"A": "alpha-orders-4711", "V": "victor-sales-5150", "B": "bravo-payroll-9823"}
MISSING = "999999"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Each test makes several users; PBKDF2 would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class World:
    """One object of each model on each side. An object at the top of its permission chain
    (a source, a tag category...) is granted to the acting user: steward on A, viewer on V."""

    def __init__(self, settings):
        self.settings = settings
        self.user = make_user("sam", roles=["Steward"], staff=True)
        self.made = {}
        for model in RECIPES:
            for side in SIDES:
                self.obj(model, side)

    def obj(self, model, side):
        key = (model, side)
        if key in self.made:
            return self.made[key]
        if model._meta.proxy:
            made = model._default_manager.get(pk=self.obj(model._meta.concrete_model, side).pk)
        elif model in RECIPES:
            made = RECIPES[model](self, side)
        else:
            pytest.fail(f"{model._meta.label} has no recipe in RECIPES: add one")
        top = getattr(model, "permission_parent", None) is None
        if side != "B" and top and issubclass(model, BaseModel):
            grant(made, self.user, "steward" if side == "A" else "viewer")
        self.made[key] = made
        return made

    def ids(self, model):
        return {side: str(self.obj(model, side).pk) for side in SIDES}

    def source(self, side):
        database = f"{side}.sqlite3"
        with sqlite3.connect(Path(self.settings.SOURCE_SQLITE_DIR) / database) as db:
            db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total REAL)")
        return DataSource.objects.create(name=SOURCE_NAMES[side], kind="sqlite", database=database)


def _user(world, side):
    # Anyone may name the users of A and V; nobody may name an account that cannot sign in.
    user = make_user(f"user-{side.lower()}")
    if side == "B":
        user.is_active = False
        user.save()
    return user


def _table(world, side, name="orders"):
    return Table.objects.create(source=world.obj(DataSource, side), schema="main", name=name)


def _source_type():
    return ContentType.objects.get_for_model(DataSource)


RECIPES = {
    DataSource: World.source,
    get_user_model(): _user,
    Table: _table,
    Field: lambda w, s: Field.objects.create(table=w.obj(Table, s), name="total", position=1),
    SchemaVersion: lambda w, s: SchemaVersion.objects.create(table=w.obj(Table, s), version=1),
    TagCategory: lambda w, s: TagCategory.objects.create(name=f"Category{s}"),
    Tag: lambda w, s: Tag.objects.create(category=w.obj(TagCategory, s), name=f"Tag{s}"),
    ClassifierRule: lambda w, s: ClassifierRule.objects.create(
        key=f"rule-{s.lower()}", label=f"Rule {s}", tag=w.obj(Tag, s), name_pattern="total"
    ),
    Classification: lambda w, s: Classification.objects.create(
        field=w.obj(Field, s), rule=f"rule-{s.lower()}", tag=w.obj(Tag, s), method="name"
    ),
    ConnectionTest: lambda w, s: ConnectionTest.objects.create(
        source=w.obj(DataSource, s), ok=True
    ),
    LineageEdge: lambda w, s: LineageEdge.objects.create(
        upstream=_table(w, s, "orders_raw"),
        downstream=w.obj(Table, s),
        origin="inferred",
        status="pending",
    ),
    LineageNamespace: lambda w, s: LineageNamespace.objects.create(
        namespace=f"ns://{s.lower()}", source=w.obj(DataSource, s)
    ),
    ChangeLogEntry: lambda w, s: ChangeLogEntry.objects.get(
        content_type=_source_type(), object_id=w.obj(DataSource, s).pk, action="create"
    ),
    AccessLogEntry: lambda w, s: AccessLogEntry.objects.create(
        action="connection_test", content_type=_source_type(), object_id=w.obj(DataSource, s).pk
    ),
    JobRun: lambda w, s: JobRun.objects.create(
        name="Scan", task="catalog.scan_source", target=w.obj(DataSource, s)
    ),
    # The acting user's own token on A; other people's tokens elsewhere.
    ApiToken: lambda w, s: tokens.token_create(
        user=w.user if s == "A" else w.obj(get_user_model(), s), name=f"token-{s.lower()}"
    )[0],
}

# What an add form needs besides its relation fields, which get A's objects unless a
# (side, model) here says otherwise: like GovernedAPITests.create_data.
ADD_DATA = {
    DataSource: {"name": "charlie-new-5555", "kind": "sqlite", "database": "new.sqlite3"},
    Table: {"schema": "main", "name": "added", "kind": "table"},
    Field: {"name": "added", "position": "2"},
    TagCategory: {"name": "Added"},
    Tag: {"name": "Added"},
    ClassifierRule: {"key": "added", "label": "Added", "name_pattern": "x", "min_hit_ratio": "0.8"},
    LineageNamespace: {"namespace": "ns://added"},
    # Two tables without an edge between them yet: V's (viewing is enough) into A's.
    LineageEdge: {"upstream": ("V", Table)},
}

GOVERNED = [
    pytest.param(model, id=model._meta.label)
    for model in admin.site._registry
    if hasattr(model._default_manager, "restrict")
]
EVERY = [pytest.param(model, id=model._meta.label) for model in admin.site._registry]


@pytest.fixture
def world(db, settings):
    return World(settings)


def login(user):
    client = Client()
    client.force_login(user)
    return client


def admin_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def page_forms(response):
    """The forms of an admin page: the object's, then each inline's management form and rows."""
    found = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        found += [inline.formset.management_form, *inline.formset.forms]
    return found


def page_data(response):
    """The page's forms as a browser posts them unchanged."""
    data = {"_save": "Save"}
    for form in page_forms(response):
        for name, field in form.fields.items():
            key, value = form.add_prefix(name), form[name].value()
            if isinstance(field.widget, forms.PasswordInput):
                data[key] = ""
            elif isinstance(field, forms.BooleanField):
                if value:
                    data[key] = "on"
            else:
                data[key] = "" if value is None else value
    return data


def relation_fields(form):
    model = form._meta.model
    for name, formfield in form.fields.items():
        if isinstance(formfield, forms.ModelChoiceField) and name != model._meta.pk.name:
            field = model._meta.get_field(name)
            if field.is_relation and field.concrete:
                yield name, field


def usable_sides(field):
    """The sides whose object a relation field must offer the acting user: the rule itself."""
    related = field.related_model
    if related is get_user_model():
        return {"A", "V"}  # active accounts
    if getattr(related, "readable_by_all", False):
        return set(SIDES)  # shared vocabulary
    if field.name == getattr(field.model, "permission_parent", None):
        return {"A"}  # adding or moving under it changes it
    return {"A", "V"}


def offered(client, form, name, field):
    """The ids a page offers in a field: a select's options, or what its autocomplete answers."""
    widget = form.fields[name].widget
    if isinstance(getattr(widget, "widget", widget), admin.widgets.AutocompleteSelect):
        opts = field.model._meta
        answer = client.get(
            reverse("admin:autocomplete"),
            {"app_label": opts.app_label, "model_name": opts.model_name, "field_name": name},
        )
        assert answer.status_code == 200, answer.status_code
        return {item["id"] for item in answer.json()["results"]}
    return {str(value) for value, _ in form.fields[name].choices if value != ""}


def with_value(data, name, field, value):
    return {**data, name: [value] if field.many_to_many else value}


def normalised(errors, value):
    """A field's errors with the refused id blanked out (many-to-many errors repeat it)."""
    return [re.sub(rf"\b{value}\b", "<id>", str(error)) for error in errors]


def state(model, pk):
    """An object's row and its many-to-many ids."""
    model = model._meta.concrete_model
    row = model._default_manager.filter(pk=pk).values().get()
    obj = model._default_manager.get(pk=pk)
    for m2m in model._meta.many_to_many:
        row[m2m.name] = sorted(getattr(obj, m2m.name).values_list("pk", flat=True))
    return row


def last_pk(model):
    return model._default_manager.order_by("-pk").values_list("pk", flat=True).first() or 0


@pytest.mark.parametrize("model", GOVERNED)
def test_add_form_offers_only_what_the_user_may_use(world, model):
    model_admin = admin.site._registry[model]
    client = login(world.user)
    page = client.get(url(model, "add"))
    if not model_admin.has_add_permission(admin_request(world.user)):
        assert page.status_code == 403
        return
    assert page.status_code == 200
    form = page.context["adminform"].form
    fields = dict(relation_fields(form))
    valid = {name: valid_value(world, model, name, field) for name, field in fields.items()}
    data = page_data(page)
    data.update({k: v for k, v in ADD_DATA.get(model, {}).items() if isinstance(v, str)})
    for name, field in fields.items():
        data = with_value(data, name, field, valid[name])
    for name, field in fields.items():
        check_relation(world, client, model, form, name, field, data, valid[name], obj=None)


@pytest.mark.parametrize("model", GOVERNED)
def test_change_form_offers_only_what_the_user_may_use(world, model):
    model_admin = admin.site._registry[model]
    obj = world.obj(model, "A")
    client = login(world.user)
    page = client.get(url(model, "change", obj.pk))
    assert page.status_code == 200
    form = page.context["adminform"].form
    fields = dict(relation_fields(form))
    if not model_admin.has_change_permission(admin_request(world.user), obj):
        assert not fields, "a read-only page offers no choices"
        return
    data = page_data(page)
    for name, field in fields.items():
        valid = valid_value(world, model, name, field)
        check_relation(world, client, model, form, name, field, data, valid, obj=obj)
    for inline in page.context["inline_admin_formsets"]:
        if inline.has_add_permission or inline.has_change_permission:
            check_inline_rows(world, client, page, inline, obj)


def valid_value(world, model, name, field):
    side, related = ADD_DATA.get(model, {}).get(name, ("A", field.related_model))
    return str(world.obj(related, side).pk)


def check_relation(world, client, model, form, name, field, data, valid, obj):
    target = url(model, "change", obj.pk) if obj else url(model, "add")
    related = field.related_model
    assert is_governed(related), f"{field} points to {related._meta.label}, which has no rule"
    ids, expected = world.ids(related), usable_sides(field)
    shown = offered(client, form, name, field)
    assert {side for side in SIDES if ids[side] in shown} == expected, (str(field), shown)

    count, logs = model._default_manager.count(), last_pk(ChangeLogEntry)
    before = state(model, obj.pk) if obj else None
    missing = client.post(target, with_value(data, name, field, MISSING))
    assert missing.status_code == 200, (str(field), "an id that does not exist was accepted")
    refusal = normalised(missing.context["adminform"].form.errors[name], MISSING)
    for side in set(SIDES) - expected:
        forged = client.post(target, with_value(data, name, field, ids[side]))
        assert forged.status_code == 200, (str(field), side, "a forged id was accepted")
        errors = forged.context["adminform"].form.errors.get(name, [])
        assert normalised(errors, ids[side]) == refusal, (str(field), side)
    assert model._default_manager.count() == count, (str(field), "a refused form added")
    assert last_pk(ChangeLogEntry) == logs, (str(field), "a refused form wrote")
    if obj:
        assert state(model, obj.pk) == before, (str(field), "a refused form changed it")

    newest = last_pk(model)
    saved = client.post(target, with_value(data, name, field, valid))
    assert saved.status_code == 302, (str(field), saved.context and saved.context["errors"])
    if obj is None:  # the next field adds the same object again
        model._default_manager.filter(pk__gt=newest).delete()


def check_inline_rows(world, client, page, inline, obj):
    """A row posted as an existing one that is B's (not one of this object's) is answered
    exactly as a row that does not exist, and B's row stays as it was."""
    formset = inline.formset
    rows, prefix, position = formset.model, formset.prefix, formset.initial_form_count()
    hidden = world.obj(rows, "B")

    def post_row(row_id):
        data = page_data(page)
        data[f"{prefix}-TOTAL_FORMS"] = str(formset.total_form_count() + 1)
        data[f"{prefix}-INITIAL_FORMS"] = str(position + 1)
        data[f"{prefix}-{position}-{rows._meta.pk.name}"] = row_id
        data[f"{prefix}-{position}-{formset.fk.name}"] = str(obj.pk)
        response = client.post(url(type(obj), "change", obj.pk), data)
        if response.status_code != 200:
            return response.status_code, None
        shown = [i.formset for i in response.context["inline_admin_formsets"]]
        return 200, next(f for f in shown if f.prefix == prefix).errors[position]

    before, count = state(rows, hidden.pk), rows._default_manager.count()
    assert post_row(str(hidden.pk)) == post_row(MISSING), prefix
    assert state(rows, hidden.pk) == before
    assert rows._default_manager.count() == count


@pytest.mark.parametrize("model", EVERY)
def test_list_filters_name_nothing_hidden(world, model):
    if not admin.site._registry[model].has_view_or_change_permission(admin_request(world.user)):
        return
    response = login(world.user).get(url(model, "changelist"))
    assert response.status_code == 200
    seen = {str(o) for (m, side), o in world.made.items() if side != "B"}
    hidden = {
        str(o)
        for (m, side), o in world.made.items()
        if side == "B" and not getattr(m, "readable_by_all", False)
    } - seen
    changelist = response.context["cl"]
    for spec in changelist.filter_specs:
        labels = {str(choice["display"]) for choice in spec.choices(changelist)}
        assert not labels & hidden, (spec.title, labels & hidden)


@pytest.mark.parametrize("model", GOVERNED)
def test_actions_leave_what_the_user_may_not_change(world, model):
    model_admin = admin.site._registry[model]
    actions = model_admin.get_actions(admin_request(world.user))
    objs = {side: world.obj(model, side) for side in SIDES}
    others = [objs["B"]] if getattr(model, "readable_by_all", False) else [objs["V"], objs["B"]]
    for action in set(actions) - {"delete_selected"}:
        before = [state(model, o.pk) for o in others]
        logs, jobs = last_pk(ChangeLogEntry), last_pk(JobRun)
        response = login(world.user).post(
            url(model, "changelist"),
            {"action": action, "_selected_action": [o.pk for o in objs.values()], "index": 0},
        )
        assert response.status_code in (200, 302), (action, response.status_code)
        assert [state(model, o.pk) for o in others] == before, action
        content_type = ContentType.objects.get_for_model(model._meta.concrete_model)
        pks = {o.pk for o in others}
        new_logs = ChangeLogEntry.objects.filter(pk__gt=logs, content_type=content_type)
        assert not set(new_logs.values_list("object_id", flat=True)) & pks, action
        for job in JobRun.objects.filter(pk__gt=jobs):
            assert not (job.target_type == content_type and job.target_id in pks), action
            assert not ids_in(job.arguments) & pks, (action, job.arguments)
        if response.streaming:  # an export: it holds what the user may view, nothing else
            body = b"".join(response.streaming_content).decode(errors="replace")
            assert str(objs["B"]) not in body, action


def ids_in(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return set().union(set(), *(ids_in(v) for v in value))
    return {value} if isinstance(value, int) else set()


def test_every_governed_model_has_a_governed_admin_or_none_that_writes(db):
    request = admin_request(make_user("root", superuser=True))
    for model, model_admin in admin.site._registry.items():
        if hasattr(model._default_manager, "restrict") and not isinstance(
            model_admin, GovernedAdmin
        ):
            assert not model_admin.has_add_permission(request), model
            assert not model_admin.has_change_permission(request), model
