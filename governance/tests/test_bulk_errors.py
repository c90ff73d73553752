"""A refused import reports every error (item 19 of the security and fault probe): in the
API answer, paged when there are many, in a job's result, in the admin preview and in the
command's output."""

import io
import json
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from catalog.models import Table
from governance.bulk.models import ImportErrorPage
from governance.models import JobRun
from governance.services import grant
from governance.testing import PASSWORD, client_for, make_user
from sources.models import DataSource

IMPORT = "/api/v1/bulk/import"
BAD_TABLES = 87


def bad_file(count=BAD_TABLES):
    """`count` tables with one error each (an unknown kind)."""
    tables = [
        {"source": "shop", "schema": "public", "name": f"t{index}", "kind": "sofa"}
        for index in range(count)
    ]
    return json.dumps({"tables": tables}).encode()


EXPECTED = {f"/tables/{index}/kind" for index in range(BAD_TABLES)}


@pytest.fixture
def world(db, settings):
    settings.BULK_IMPORT_ERROR_PAGE_SIZE = 10
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    steward = make_user("stella", staff=True)
    grant(shop, steward, "steward")
    other = make_user("otto", staff=True)
    grant(shop, other, "steward")
    return {"steward": steward, "other": other, "root": make_user("root", superuser=True)}


def upload(client, content, **options):
    data = {"file": SimpleUploadedFile("c.json", content), **options}
    return client.post(IMPORT, data, format="multipart")


def follow(client, url):
    """Every error from an errors URL onwards, following `next`."""
    errors = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["count"] == BAD_TABLES
        errors += body["results"]
        url = body["next"]
    return errors


def test_the_api_answer_pages_every_error(world):
    client = client_for(world["steward"])
    response = upload(client, bad_file())
    assert response.status_code == 400
    body = response.json()
    assert body["error_count"] == BAD_TABLES
    assert len(body["errors"]) == 10
    errors = body["errors"] + follow(client, body["errors_next"])
    assert [e["location"] for e in errors] == sorted(EXPECTED, key=lambda x: int(x.split("/")[2]))
    assert follow(client, body["errors_url"]) == errors  # from the first page too
    assert not Table.objects.exists()


def test_a_few_errors_are_all_in_the_answer_and_nothing_is_kept(world):
    response = upload(client_for(world["steward"]), bad_file(10))
    body = response.json()
    assert body["error_count"] == len(body["errors"]) == 10
    assert "errors_next" not in body and "errors_url" not in body
    assert not ImportErrorPage.objects.exists()


def test_only_whoever_imported_sees_the_errors_and_others_get_a_plain_404(world):
    body = upload(client_for(world["steward"]), bad_file()).json()
    url = body["errors_url"]
    missing = f"/api/v1/bulk/imports/{uuid.uuid4()}/errors"
    for user in (world["other"], make_user("nobody")):
        client = client_for(user)
        hidden, absent = client.get(url), client.get(missing)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json() == absent.json()
    assert client_for(None).get(url).status_code == 401
    assert client_for(world["root"]).get(url).status_code == 200
    owner = client_for(world["steward"])
    for page in ("0", "99", "x"):
        response = owner.get(url, {"page": page})
        assert response.status_code == 404
        assert response.json() == client_for(world["other"]).get(missing).json()


def test_a_refused_job_leads_to_every_error(
    world, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.BULK_IMPORT_JOB_THRESHOLD_BYTES = 10
    settings.VAR_DIR = tmp_path
    client = client_for(world["steward"])
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, bad_file())
    assert response.status_code == 202
    job = JobRun.objects.get(pk=response.json()["id"])
    assert job.status == "failed"
    assert "more" not in job.error
    url = re.search(r"/api/v1/bulk/imports/[0-9a-f-]+/errors", job.error).group()
    assert {e["location"] for e in follow(client, url)} == EXPECTED
    assert client_for(world["other"]).get(url).status_code == 404


def test_the_admin_preview_pages_every_error(world):
    client = Client()
    client.login(username="stella", password=PASSWORD)
    data = {"file": SimpleUploadedFile("c.json", bad_file()), "mode": "create", "dry_run": "on"}
    page = client.post("/admin/catalog/catalogtransfer/import/", data).content.decode()
    assert f"{BAD_TABLES} error(s)" in page
    seen = set(re.findall(r"/tables/\d+/kind", page))
    assert len(seen) == 10
    link = re.search(r'href="(/admin/catalog/catalogtransfer/import/errors/[^"]+)"', page)
    url = link.group(1).replace("&amp;", "&")
    while url:
        response = client.get(url)
        assert response.status_code == 200
        text = response.content.decode()
        seen |= set(re.findall(r"/tables/\d+/kind", text))
        following = re.search(r'href="([^"]+)"[^>]*>next', text)
        url = following.group(1).replace("&amp;", "&") if following else None
    assert seen == EXPECTED
    other = Client()
    other.login(username="otto", password=PASSWORD)
    assert other.get(link.group(1)).status_code == 404


def test_the_command_prints_every_error(world, tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(bad_file())
    err = io.StringIO()
    with pytest.raises(CommandError, match=f"{BAD_TABLES} error"):
        call_command("import_catalog", str(path), "--user", "stella", stderr=err, verbosity=0)
    assert set(re.findall(r"/tables/\d+/kind", err.getvalue())) == EXPECTED
