import ast
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import Table
from governance.bulk import sections
from governance.models import AccessLogEntry
from governance.testing import client_for, make_user
from sources.models import DataSource

DOMAIN_APPS = {
    "sources",
    "catalog",
    "lineage",
    "security",
    "compliance",
    "backups",
    "notifications",
    "reports",
}


def test_catalog_and_lineage_are_registered_in_dependency_order():
    names = [section.name for section in sections.ordered()]
    assert "catalog" in names and "lineage" in names
    assert names.index("catalog") < names.index("lineage")


def test_the_core_imports_no_domain_app():
    root = Path(__file__).resolve().parents[1]
    found = []
    for path in root.rglob("*.py"):
        if "tests" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{path.name}: {m}" for m in modules if m.split(".")[0] in DOMAIN_APPS]
    assert found == []


class Notes(sections.Section):
    """A section of a test: counts the tables of the file and refuses one named 'secret'."""

    name = "notes"
    requires = ("lineage",)
    schema = {"notes": {"type": "array"}}
    counts = ("notes",)
    calls = []

    def plan(self):
        self.calls.append(("plan", sorted(self.run.section("catalog").by_fqn)))
        for rec in self.run.doc.tables:
            if rec.get("name") == "broken":
                self.run.bad(rec, "name", "refused by the notes section")

    def check_permissions(self):
        self.calls.append(("check_permissions",))
        if any(rec.get("name") == "secret" for rec in self.run.doc.tables):
            self.run.denied.append("note secret")

    def apply(self):
        self.calls.append(("apply", Table.objects.filter(name="orders").exists()))
        self.run.counts["notes"]["created"] = len(self.run.doc.tables)

    def finish(self):
        self.calls.append(("finish",))

    def export(self):
        self.run.summary["notes"] = 1
        return {}


@pytest.fixture
def notes(db):
    Notes.calls = []
    sections.register(Notes)
    yield Notes
    sections.unregister("notes")


def post(user, tables):
    content = json.dumps({"tables": tables, "lineage": []}).encode()
    return client_for(user).post(
        "/api/v1/bulk/import",
        {"file": SimpleUploadedFile("c.json", content)},
        format="multipart",
    )


def test_a_registered_section_takes_part_in_import_export_and_schema(notes):
    DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    admin = make_user("root", superuser=True)
    assert [s.name for s in sections.ordered()][-1] == "notes"

    response = post(admin, [{"source": "shop", "schema": "public", "name": "orders"}])
    assert response.status_code == 200, response.json()
    assert response.json()["counts"]["notes"] == {"created": 1, "updated": 0, "unchanged": 0}
    assert [call[0] for call in notes.calls] == ["plan", "check_permissions", "apply", "finish"]
    assert notes.calls[0][1] == ["shop.public.orders"]  # the catalog had planned before
    assert notes.calls[2][1] is True  # and written before, in the same transaction

    schema = client_for(admin).get("/api/v1/bulk/schema").json()
    assert "notes" in schema["properties"]

    export = client_for(admin).get("/api/v1/bulk/export?format=json")
    assert export.status_code == 200
    assert export["X-Exported-Tables"] == "1"
    assert json.loads(b"".join(export.streaming_content))["tables"][0]["name"] == "orders"
    entry = AccessLogEntry.objects.filter(action="export").latest("pk")
    assert entry.detail["notes"] == 1 and entry.detail["tables"] == 1


def test_a_section_error_or_refusal_rolls_back_every_section(notes):
    DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    admin = make_user("root", superuser=True)
    response = post(
        admin,
        [
            {"source": "shop", "schema": "public", "name": "orders"},
            {"source": "shop", "schema": "public", "name": "broken"},
        ],
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"location": "/tables/1/name", "field": "name", "message": "refused by the notes section"}
    ]
    assert not Table.objects.exists()

    response = post(admin, [{"source": "shop", "schema": "public", "name": "secret"}])
    assert response.status_code == 403
    assert response.json()["objects"] == ["note secret"]
    assert not Table.objects.exists()


def test_sections_that_require_each_other_or_a_missing_one_are_refused(notes):
    class Loop(sections.Section):
        name = "loop"
        requires = ("loop",)

    sections.register(Loop)
    try:
        with pytest.raises(ValueError, match="require each other"):
            sections.ordered()
    finally:
        sections.unregister("loop")

    class Orphan(sections.Section):
        name = "orphan"
        requires = ("nowhere",)

    sections.register(Orphan)
    try:
        with pytest.raises(ValueError, match="requires nowhere"):
            sections.ordered()
    finally:
        sections.unregister("orphan")
