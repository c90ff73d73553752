"""`manage.py demo`: a shop database to catalog, a source for it that answers, logins for
each role, and nothing doubled when it runs again."""

import io
import socket
import sqlite3
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import get_perms

from governance.models import AccessLogEntry, ChangeLogEntry
from sources.models import ConnectionTest, DataSource

TABLES = {"customers", "orders", "order_items", "products", "payments"}
VIEWS = {"customer_order_totals", "daily_revenue"}
LOGINS = {"admin": "Admin", "steward": "Steward", "viewer": "Viewer"}


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Users are made per test; PBKDF2 hashing would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def luhn_valid(number):
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def run_demo(*args):
    out = io.StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue()


def shop_path(settings):
    return Path(settings.SOURCE_SQLITE_DIR) / "demo_shop.sqlite3"


def state():
    """What a second run must leave as it was."""
    demo = DataSource.objects.get(name="Demo shop")
    return {
        "sources": sorted(DataSource.objects.values_list("name", flat=True)),
        "users": sorted(get_user_model().objects.values_list("username", flat=True)),
        "memberships": sorted(get_user_model().objects.values_list("username", "groups__name")),
        "user grants": UserObjectPermission.objects.count(),
        "group grants": GroupObjectPermission.objects.count(),
        "grant log": AccessLogEntry.objects.filter(action="grant").count(),
        "demo change log": list(
            ChangeLogEntry.objects.filter(object_id=demo.pk, object_repr="Demo shop")
            .order_by("version")
            .values_list("version", "action")
        ),
    }


def test_luhn_check_itself():
    assert luhn_valid("4539578763621486") and luhn_valid("79927398713")
    assert not luhn_valid("4539578763621487")


def test_demo_builds_the_shop_database(db, var_dir, settings):
    run_demo("--no-local-servers")
    assert sorted(p.name for p in Path(settings.SOURCE_SQLITE_DIR).iterdir()) == [
        "demo_shop.sqlite3"
    ]
    with sqlite3.connect(shop_path(settings)) as shop:
        objects = shop.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')"
        ).fetchall()
        assert {n for t, n in objects if t == "table"} == TABLES
        assert {n for t, n in objects if t == "view"} == VIEWS
        count = {t: shop.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608
        cards = [row[0] for row in shop.execute("SELECT card_number FROM payments")]
        totals = shop.execute("SELECT count(*), sum(order_count) FROM customer_order_totals")
        revenue = shop.execute("SELECT sum(revenue_cents) FROM daily_revenue").fetchone()[0]
        paid = shop.execute("SELECT sum(amount_cents) FROM payments").fetchone()[0]
        totals = totals.fetchone()
    assert (count["customers"], count["products"]) == (200, 8)
    assert count["orders"] > 100 and count["order_items"] >= count["orders"]
    assert count["payments"] == count["orders"]
    assert totals == (200, count["orders"])
    assert revenue == paid > 0
    assert all(len(card) == 16 and card.isdigit() for card in cards)
    assert [card for card in cards if not luhn_valid(card)] == []
    assert len(set(cards)) > len(cards) // 2


def test_demo_registers_the_shop_source_and_the_logins(db, var_dir):
    out = run_demo("--no-local-servers")
    assert list(DataSource.objects.values_list("name", flat=True)) == ["Demo shop"]
    demo = DataSource.objects.get()
    assert (demo.kind, demo.database, demo.owner.username) == (
        "sqlite",
        "demo_shop.sqlite3",
        "steward",
    )
    assert (demo.last_test_ok, demo.last_test_error) == (True, "")
    assert list(ConnectionTest.objects.values_list("source__name", "ok")) == [("Demo shop", True)]
    assert "source 'Demo shop': ok" in out

    users = {u.username: u for u in get_user_model().objects.all()}
    assert set(users) == set(LOGINS)
    for name, group in LOGINS.items():
        user = users[name]
        assert list(user.groups.values_list("name", flat=True)) == [group]
        assert (user.is_staff, user.is_superuser) == (True, name == "admin")
        password_file = Path(var_dir) / f"{name}_password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert authenticate(username=name, password=password_file.read_text().strip()) == user
    assert sorted(get_perms(users["steward"], demo)) == ["change_datasource", "view_datasource"]
    assert get_perms(users["viewer"], demo) == ["view_datasource"]


def test_demo_run_twice_changes_nothing_but_adds_a_connection_test(db, var_dir, settings):
    run_demo("--no-local-servers")
    first = state()
    built = shop_path(settings).stat().st_mtime_ns
    passwords = {p.name: p.read_text() for p in Path(var_dir).iterdir()}

    run_demo("--no-local-servers")
    assert state() == first
    assert first["demo change log"] == [(1, "create")]
    assert ConnectionTest.objects.filter(ok=True).count() == 2
    assert AccessLogEntry.objects.filter(action="connection_test").count() == 2
    assert shop_path(settings).stat().st_mtime_ns == built
    assert {p.name: p.read_text() for p in Path(var_dir).iterdir()} == passwords


@pytest.mark.skipif(
    not (listening(5432) and listening(3306)), reason="needs PostgreSQL and MariaDB on 127.0.0.1"
)
def test_demo_registers_the_local_servers_that_answer(db, var_dir):
    run_demo()
    local = {"Local PostgreSQL", "Local MariaDB"}
    assert set(DataSource.objects.values_list("name", flat=True)) == {"Demo shop", *local}
    steward = get_user_model().objects.get(username="steward")
    for source in DataSource.objects.filter(name__in=local):
        assert (source.last_test_ok, source.last_test_error) == (True, "")
        assert source.password == ""
        assert sorted(get_perms(steward, source)) == ["change_datasource", "view_datasource"]
    assert sorted(p.name for p in Path(var_dir).iterdir()) == [
        "admin_password",
        "steward_password",
        "viewer_password",
    ]

    run_demo()
    assert DataSource.objects.count() == 3
    for source in DataSource.objects.filter(name__in=local):
        assert (
            ChangeLogEntry.objects.filter(object_id=source.pk, object_repr=source.name).count() == 1
        )
