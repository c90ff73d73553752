"""Bad input is a 4xx naming the problem, never a 500, on SQLite and PostgreSQL alike:
deleting what is still used (409), text no database can store (400), and a form's `null`
for a field that may not be null (400). Nothing is written in any of these cases."""

import pytest
from django.test import Client

from catalog.models import Classification, ClassifierRule, Field, Table, Tag, TagCategory
from governance.services import grant
from governance.testing import client_for, make_user
from sources.models import DataSource

TABLES = "/api/v1/catalog/tables/"
TAGS = "/api/v1/catalog/tags/"
CATEGORIES = "/api/v1/catalog/tag-categories/"
NUL = "\x00"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    """A tag used by a rule, a visible field and a hidden field; a steward granted one source."""
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    hr = DataSource.objects.create(name="hr", kind="postgresql", host="db.example.com")
    customers = Table.objects.create(source=shop, schema="public", name="customers")
    salaries = Table.objects.create(source=hr, schema="public", name="salaries")
    email = Field.objects.create(table=customers, name="email")
    secret = Field.objects.create(table=salaries, name="private_email")
    category = TagCategory.objects.create(name="Contact")
    tag = Tag.objects.create(category=category, name="Email")
    ClassifierRule.objects.create(
        key="contact-email", label="Contact email", tag=tag, name_pattern="email"
    )
    for field in (email, secret):
        Classification.objects.create(field=field, rule="contact-email", tag=tag, method="name")
    steward = make_user("stella", roles=["Admin"])
    grant(shop, steward, "steward")
    return {
        "shop": shop,
        "customers": customers,
        "tag": tag,
        "category": category,
        "steward": steward,
    }


# --- 10: deleting what is still used ----------------------------------------------------------


def test_deleting_a_tag_still_used_is_409_naming_what_uses_it(world):
    viewer = make_user("vera", perms=["catalog.delete_tag"])
    grant(world["shop"], viewer, "viewer")
    response = client_for(viewer).delete(f"{TAGS}{world['tag'].pk}/")
    assert response.status_code == 409
    body = response.json()
    assert body["detail"] == (
        "Cannot delete this tag: 2 classifications and 1 classifier rule still use it."
    )
    used = {item["model"]: item for item in body["still_used_by"]}
    assert used["classifier rule"] == {
        "model": "classifier rule",
        "count": 1,
        "names": ["Contact email"],
    }
    # Two classifications use it; only the one on a field the user may view is named.
    assert used["classifications"]["count"] == 2
    assert used["classifications"]["names"] == [
        "shop.public.customers.email: Contact.Email (suggested)"
    ]
    assert "salaries" not in response.content.decode()
    assert Tag.objects.filter(pk=world["tag"].pk).exists()


def test_deleting_a_category_that_has_tags_is_409(world):
    client = client_for(make_user("root", superuser=True))
    response = client.delete(f"{CATEGORIES}{world['category'].pk}/")
    assert response.status_code == 409
    assert response.json()["detail"] == "Cannot delete this tag category: 1 tag still use it."
    assert response.json()["still_used_by"][0]["names"] == ["Contact.Email"]
    assert TagCategory.objects.filter(pk=world["category"].pk).exists()
    unused = TagCategory.objects.create(name="Unused")
    assert client.delete(f"{CATEGORIES}{unused.pk}/").status_code == 204


def test_deleting_a_tag_still_used_in_the_admin_is_refused_without_a_server_error(world):
    admin = make_user("root", superuser=True)
    browser = Client()
    browser.force_login(admin)
    url = f"/admin/catalog/tag/{world['tag'].pk}/delete/"
    assert browser.get(url).status_code == 200
    assert browser.post(url, {"post": "yes"}).status_code in (200, 302)
    assert Tag.objects.filter(pk=world["tag"].pk).exists()
