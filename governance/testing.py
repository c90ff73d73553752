"""Shared test helpers, including the generic API test mixin every governed model uses.

A model's API test declares the model, its list URL, how to make an object and the data to
create and update one, and inherits the permission and change-log checks:

    class TestDataSourceAPI(GovernedAPITests):
        model = DataSource
        url = "/api/v1/sources/"
        def make_object(self, index): ...
        def create_data(self): ...
        update_data = {"description": "changed"}
"""

import shutil
import unittest

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import TestCase
from rest_framework.test import APIClient

from governance.models import ChangeLogEntry
from governance.permissions import perm_name
from governance.services import grant
from governance.tokens import token_create

PASSWORD = "correct horse battery staple"  # noqa: S105  (test users only)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NO_BROWSER = "no chromium/chromedriver: apt-get install -y chromium chromium-driver"


def headless_chromium():
    """Debian's Chromium driven through selenium, keeping the browser console's messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1200",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    return driver


def csp_violations(driver):
    """What the browser console reported refusing under the Content-Security-Policy since
    the last call."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


def make_user(username, *, roles=(), perms=(), staff=False, superuser=False):
    user = get_user_model().objects.create_user(
        username=username,
        password=PASSWORD,
        is_staff=staff or superuser,
        is_superuser=superuser,
    )
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def client_for(user=None):
    client = APIClient()
    if user is not None:
        _, key = token_create(user=user, name="test")
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


class GovernedAPITests(TestCase):
    """Generic permission and change-log tests for one governed model's API."""

    model = None
    url = ""
    update_data: dict = {}

    def make_object(self, index):
        raise NotImplementedError

    def create_data(self):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        if cls.model is None:
            raise unittest.SkipTest("abstract generic API tests")
        super().setUpClass()

    def setUp(self):
        self.a = self.make_object(1)
        self.b = self.make_object(2)
        self.user = make_user("tester", staff=True)

    def detail(self, obj):
        return f"{self.url}{obj.pk}/"

    def grant(self, obj, role):
        grant(obj, self.user, role)

    def ids(self, response):
        return {item["id"] for item in response.json()["results"]}

    def test_anonymous_is_401(self):
        client = client_for(None)
        self.assertEqual(client.get(self.url).status_code, 401)
        self.assertEqual(client.get(self.detail(self.a)).status_code, 401)
        self.assertEqual(client.post(self.url, self.create_data(), format="json").status_code, 401)
        self.assertEqual(client.delete(self.detail(self.a)).status_code, 401)

    def test_no_permission_sees_nothing_and_changes_nothing(self):
        client = client_for(self.user)
        response = client.get(self.url)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["count"], 0)
        self.assertEqual(client.get(self.detail(self.a)).status_code, 404)
        self.assertEqual(client.patch(self.detail(self.a), self.update_data).status_code, 404)
        self.assertEqual(client.delete(self.detail(self.a)).status_code, 404)
        count = self.model.objects.count()
        self.assertEqual(client.post(self.url, self.create_data(), format="json").status_code, 403)
        self.assertEqual(self.model.objects.count(), count)

    def test_grant_on_a_shows_a_and_not_b(self):
        self.grant(self.a, "viewer")
        client = client_for(self.user)
        self.assertEqual(self.ids(client.get(self.url)), {self.a.pk})
        self.assertEqual(client.get(self.detail(self.a)).status_code, 200)
        self.assertEqual(client.get(self.detail(self.b)).status_code, 404)
        # A viewer grant does not allow changing or deleting.
        self.assertEqual(client.patch(self.detail(self.a), self.update_data).status_code, 403)
        self.assertEqual(client.delete(self.detail(self.a)).status_code, 403)
        self.assertTrue(self.model.objects.filter(pk=self.a.pk).exists())

    def test_grant_to_a_group_covers_its_members_while_they_belong(self):
        team = Group.objects.create(name="team")
        grant(self.a, team, "viewer")
        client = client_for(self.user)
        self.assertEqual(self.ids(client.get(self.url)), set())
        self.user.groups.add(team)
        self.assertEqual(self.ids(client.get(self.url)), {self.a.pk})
        self.assertEqual(client.get(self.detail(self.a)).status_code, 200)
        self.assertEqual(client.get(self.detail(self.b)).status_code, 404)
        self.user.groups.remove(team)
        self.assertEqual(client.get(self.url).status_code, 401)  # its tokens went with it
        client = client_for(self.user)
        self.assertEqual(self.ids(client.get(self.url)), set())
        self.assertEqual(client.get(self.detail(self.a)).status_code, 404)

    def test_steward_grant_changes_a_and_records_before_and_after(self):
        self.grant(self.a, "steward")
        client = client_for(self.user)
        response = client.patch(self.detail(self.a), self.update_data, format="json")
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(client.patch(self.detail(self.b), self.update_data).status_code, 404)
        entry = ChangeLogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(self.model), object_id=self.a.pk
        ).first()
        self.assertEqual(entry.action, "update")
        self.assertEqual(entry.user, self.user)
        self.assertTrue(entry.request_id)
        for key in self.update_data:
            self.assertIn(key, entry.changed)
        self.assertEqual(client.delete(self.detail(self.a)).status_code, 403)

    def test_global_view_permission_sees_all(self):
        app_label, codename = perm_name(self.model, "view").split(".")
        self.user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
        client = client_for(self.user)
        self.assertTrue({self.a.pk, self.b.pk} <= self.ids(client.get(self.url)))

    def test_create_writes_change_log_and_creator_can_see_it(self):
        self.user.groups.add(Group.objects.get(name="Steward"))
        client = client_for(self.user)
        response = client.post(self.url, self.create_data(), format="json")
        self.assertEqual(response.status_code, 201, response.content)
        created = response.json()["id"]
        entry = ChangeLogEntry.objects.get(
            content_type=ContentType.objects.get_for_model(self.model), object_id=created
        )
        self.assertEqual((entry.action, entry.version, entry.user), ("create", 1, self.user))
        self.assertEqual(client.get(f"{self.url}{created}/").status_code, 200)

    def test_owner_grant_deletes_and_records_it(self):
        self.grant(self.a, "owner")
        client = client_for(self.user)
        self.assertEqual(client.delete(self.detail(self.a)).status_code, 204)
        self.assertFalse(self.model.objects.filter(pk=self.a.pk).exists())
        self.assertTrue(
            ChangeLogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(self.model),
                object_id=self.a.pk,
                action="delete",
            ).exists()
        )
