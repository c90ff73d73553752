"""Every sources/governance endpoint × every kind of user × a source they hold a grant on
(A) and one they do not (B): deny by default, and no list leaks B."""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from governance.models import AccessLogEntry, JobRun
from governance.services import grant
from governance.testing import client_for, make_user
from sources.models import ConnectionTest, DataSource

ROLES = ("anonymous", "nobody", "viewer", "steward", "admin")

# Status codes on A and on B; for the audit and job rows, on the row about A and about B.
OBJECT_MATRIX = [
    # endpoint          anonymous   nobody      viewer      steward     admin
    ("detail",          (401, 401), (404, 404), (200, 404), (200, 404), (200, 200)),
    ("put",             (401, 401), (404, 404), (403, 404), (200, 404), (200, 200)),
    ("patch",           (401, 401), (404, 404), (403, 404), (200, 404), (200, 200)),
    ("delete",          (401, 401), (404, 404), (403, 404), (403, 404), (204, 204)),
    ("test",            (401, 401), (404, 404), (403, 404), (200, 404), (200, 200)),
    ("version-history", (401, 401), (404, 404), (200, 404), (200, 404), (200, 200)),
    ("restore",         (401, 401), (404, 404), (403, 404), (200, 404), (200, 200)),
    ("access-control",  (401, 401), (404, 404), (403, 404), (200, 404), (200, 200)),
    ("connection-test", (401, 401), (404, 404), (200, 404), (200, 404), (200, 200)),
    ("job",             (401, 401), (404, 404), (200, 404), (200, 404), (200, 200)),
]  # fmt: skip

# Status code and which of A and B show up in the list, by name or by any of their ids.
LIST_MATRIX = [
    # endpoint           anonymous  nobody     viewer      steward     admin
    ("sources",          (401, ""), (200, ""), (200, "A"), (200, "A"), (200, "AB")),
    ("connection-tests", (401, ""), (200, ""), (200, "A"), (200, "A"), (200, "AB")),
    ("jobs",             (401, ""), (200, ""), (200, "A"), (200, "A"), (200, "AB")),
]  # fmt: skip

CREATE_MATRIX = [
    # anonymous nobody viewer steward admin
    (401, 403, 403, 201, 201),
]

OBJECT_CELLS = [
    pytest.param(endpoint, role, letter, expected, id=f"{endpoint}-{role}-{letter}")
    for endpoint, *statuses in OBJECT_MATRIX
    for role, pair in zip(ROLES, statuses, strict=True)
    for letter, expected in zip("AB", pair, strict=True)
]
LIST_CELLS = [
    pytest.param(endpoint, role, expected, id=f"{endpoint}-{role}")
    for endpoint, *cells in LIST_MATRIX
    for role, expected in zip(ROLES, cells, strict=True)
]
CREATE_CELLS = [
    pytest.param(role, expected, id=f"create-{role}")
    for row in CREATE_MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]

NAMES = {"A": "alpha-orders-4711", "B": "bravo-payroll-9823"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Every cell creates a user; PBKDF2 would make the matrix take minutes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    sources: dict
    tests: dict
    jobs: dict

    def refs(self, letter):
        return {
            ("source", self.sources[letter].pk),
            ("connectiontest", self.tests[letter].pk),
            ("job", self.jobs[letter].pk),
        }


@pytest.fixture
def world(db, settings):
    sources, tests, jobs = {}, {}, {}
    for letter, name in NAMES.items():
        database = f"{name}.sqlite3"
        with sqlite3.connect(Path(settings.SOURCE_SQLITE_DIR) / database) as shop:
            shop.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
        sources[letter] = DataSource.objects.create(name=name, kind="sqlite", database=database)
        tests[letter] = ConnectionTest.objects.create(source=sources[letter], ok=True)
        jobs[letter] = JobRun.objects.create(
            name="Test connections", task="sources.check_connections", target=sources[letter]
        )
    return World(sources, tests, jobs)


def acting_client(role, world):
    if role == "anonymous":
        return client_for(None)
    user = {
        "nobody": lambda: make_user("nobody"),
        "viewer": lambda: make_user("vera", roles=["Viewer"]),
        "steward": lambda: make_user("sam", roles=["Steward"]),
        "admin": lambda: make_user("ada", roles=["Admin"]),
    }[role]()
    if role in ("viewer", "steward"):
        grant(world.sources["A"], user, role)
    return client_for(user)


def call(client, endpoint, world, letter):
    source = world.sources[letter]
    url = f"/api/v1/sources/{source.pk}/"
    put_data = {
        "name": source.name,
        "kind": "sqlite",
        "database": source.database,
        "description": "put",
    }
    requests = {
        "detail": lambda: client.get(url),
        "put": lambda: client.put(url, put_data, format="json"),
        "patch": lambda: client.patch(url, {"description": "patched"}, format="json"),
        "delete": lambda: client.delete(url),
        "test": lambda: client.post(f"{url}test"),
        "version-history": lambda: client.get(f"{url}version-history"),
        "restore": lambda: client.post(f"{url}version-history/1/restore"),
        "access-control": lambda: client.get(f"{url}access-control"),
        "connection-test": lambda: client.get(
            f"/api/v1/audit/connection-tests/{world.tests[letter].pk}/"
        ),
        "job": lambda: client.get(f"/api/v1/jobs/{world.jobs[letter].pk}/"),
    }
    return requests[endpoint]()


LIST_URLS = {
    "sources": "/api/v1/sources/",
    "connection-tests": "/api/v1/audit/connection-tests/",
    "jobs": "/api/v1/jobs/",
}


def item_refs(endpoint, item):
    if endpoint == "sources":
        return {("source", item["id"])}
    if endpoint == "connection-tests":
        return {("connectiontest", item["id"]), ("source", item["source"])}
    refs = {("job", item["id"])}
    if item["target_type"] == "datasource":
        refs.add(("source", item["target_id"]))
    return refs


def seen(endpoint, response, world):
    """Which of A and B the list shows: by name anywhere in the body, or by any id."""
    if response.status_code != 200:
        return ""
    text = response.content.decode()
    refs = set().union(*(item_refs(endpoint, item) for item in response.json()["results"]))
    return "".join(letter for letter in "AB" if NAMES[letter] in text or refs & world.refs(letter))


@pytest.mark.parametrize(("endpoint", "role", "letter", "expected"), OBJECT_CELLS)
def test_object_endpoint(world, endpoint, role, letter, expected):
    response = call(acting_client(role, world), endpoint, world, letter)
    assert response.status_code == expected, response.content[:300]


@pytest.mark.parametrize(("endpoint", "role", "expected"), LIST_CELLS)
def test_list_endpoint(world, endpoint, role, expected):
    response = acting_client(role, world).get(f"{LIST_URLS[endpoint]}?page_size=1000")
    assert (response.status_code, seen(endpoint, response, world)) == expected


@pytest.mark.parametrize(("role", "expected"), CREATE_CELLS)
def test_create(world, role, expected):
    data = {"name": "charlie-new-5555", "kind": "sqlite", "database": "new.sqlite3"}
    response = acting_client(role, world).post("/api/v1/sources/", data, format="json")
    assert response.status_code == expected, response.content[:300]


def test_a_denial_is_written_to_the_access_log_once(world):
    viewer = make_user("vera", roles=["Viewer"])
    grant(world.sources["A"], viewer, "viewer")
    client = client_for(viewer)
    url = f"/api/v1/sources/{world.sources['A'].pk}/"
    before = AccessLogEntry.objects.filter(action="permission_denied").count()
    assert client.patch(url, {"description": "x"}, format="json").status_code == 403
    denials = AccessLogEntry.objects.filter(action="permission_denied")
    assert before == 0
    assert [(d.user, d.detail["method"], d.detail["path"]) for d in denials] == [
        (viewer, "PATCH", url)
    ]


def test_hidden_objects_and_anonymous_calls_write_no_denial(world):
    viewer = make_user("vera", roles=["Viewer"])
    grant(world.sources["A"], viewer, "viewer")
    assert (
        client_for(viewer)
        .patch(f"/api/v1/sources/{world.sources['B'].pk}/", {"description": "x"}, format="json")
        .status_code
        == 404
    )
    assert client_for(None).delete(f"/api/v1/sources/{world.sources['A'].pk}/").status_code == 401
    assert not AccessLogEntry.objects.filter(action="permission_denied").exists()


def test_filtering_by_a_hidden_source_answers_like_a_missing_one(world):
    client = acting_client("viewer", world)
    url = "/api/v1/audit/connection-tests/?source="
    hidden = client.get(f"{url}{world.sources['B'].pk}")
    missing = client.get(f"{url}999999")
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
