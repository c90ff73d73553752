"""Request bodies are limited before they are read (item 17 of the security and fault probe):
an oversized Content-Length is a 413 naming the limit, a body without a length is a 411, and
neither is read, let alone spooled to disk. The last tests send to a real HTTP server."""

import json
import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.services import grant
from governance.testing import client_for, make_user
from governance.tokens import token_create
from sources.models import DataSource

IMPORT = "/api/v1/bulk/import"


@pytest.fixture
def steward(db):
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    user = make_user("stella", staff=True, roles=["Steward"])
    grant(shop, user, "steward")
    return user


def catalog_file(padding=0):
    table = {"source": "shop", "schema": "public", "name": "orders", "description": "x" * padding}
    return json.dumps({"tables": [table]}).encode()


def test_an_api_body_over_the_general_limit_is_a_413_naming_it(steward, settings):
    settings.REQUEST_MAX_BYTES = 2000
    client = client_for(steward)
    body = {"name": "orders db", "kind": "postgresql", "host": "db.example.com"}
    response = client.post("/api/v1/sources/", {**body, "description": "x" * 3000}, format="json")
    assert response.status_code == 413
    assert response.json()["detail"].endswith("the limit for this endpoint is 2000 bytes")
    assert not DataSource.objects.filter(name="orders db").exists()
    response = client.post("/api/v1/sources/", body, format="json")
    assert response.status_code == 201, response.content


def test_the_bulk_import_takes_its_own_larger_limit(steward, settings):
    settings.REQUEST_MAX_BYTES = 2000
    client = client_for(steward)
    upload = SimpleUploadedFile("c.json", catalog_file(padding=5000))
    response = client.post(IMPORT, {"file": upload, "dry_run": "true"}, format="multipart")
    assert response.status_code == 200, response.content
    settings.BULK_IMPORT_MAX_BYTES = 1000
    upload = SimpleUploadedFile("c.json", catalog_file(padding=200_000))
    response = client.post(IMPORT, {"file": upload}, format="multipart")
    assert response.status_code == 413
    assert response.json()["limit"] == 1000 + 64 * 1024


def test_the_admin_import_page_takes_the_bulk_limit_and_other_pages_the_general_one(
    steward, settings, client
):
    settings.REQUEST_MAX_BYTES = 2000
    settings.BULK_IMPORT_MAX_BYTES = 100_000
    client.force_login(steward)
    page = "/admin/catalog/catalogtransfer/import/"
    upload = SimpleUploadedFile("c.json", catalog_file(padding=5000))
    response = client.post(page, {"file": upload, "mode": "create", "dry_run": "on"})
    assert response.status_code == 200
    assert b"Dry run" in response.content
    upload = SimpleUploadedFile("c.json", catalog_file(padding=200_000))
    response = client.post(page, {"file": upload, "mode": "create"})
    assert response.status_code == 413
    response = client.post("/admin/sources/datasource/add/", {"name": "n" * 3000})
    assert response.status_code == 413


def test_openlineage_takes_its_own_limit(steward, settings):
    settings.REQUEST_MAX_BYTES = 2000
    settings.OPENLINEAGE_MAX_BYTES = 10_000
    client = client_for(steward)
    body = json.dumps({"eventType": "COMPLETE", "padding": "x" * 5000})
    response = client.post("/api/v1/lineage/openlineage", body, content_type="application/json")
    assert response.status_code == 400  # read and checked: not an event
    body = json.dumps({"eventType": "COMPLETE", "padding": "x" * 20_000})
    response = client.post("/api/v1/lineage/openlineage", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["limit"] == 10_000


def test_a_body_without_a_length_is_a_411(steward):
    client = client_for(steward)
    response = client.post(
        IMPORT, b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]


# --- against a real server ---------------------------------------------------------------


def send_and_wait(url, head, body_parts, seconds=10):
    """Send a request head and part of its body, then read the answer without sending the
    rest: a server that reads the body waits for the rest and never answers (a timeout)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=seconds) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:
                break  # the server answered and closed the connection
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer.decode("latin-1")


@pytest.fixture
def live_steward(transactional_db, settings, tmp_path):
    """A token of a user who may import, and an empty directory where Django would spool
    uploads over 2.5 MB."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    shop = DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")
    user = make_user("stella", staff=True, roles=["Steward"])
    grant(shop, user, "steward")
    return token_create(user=user)[1], tmp_path / "spool"


def test_a_600_mb_upload_is_refused_unread_and_nothing_is_spooled(live_server, live_steward):
    token, spool = live_steward
    head = (
        f"POST {IMPORT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        f"Content-Length: {600 * 1024 * 1024}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    first = b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.json"\r\n\r\n'
    answer = send_and_wait(live_server.url, head, [first] + [b" " * 65536] * 128)  # 8 MB
    assert answer.startswith("HTTP/1.1 413"), answer
    assert not list(spool.iterdir())  # nothing was spooled to disk


def test_a_chunked_body_is_refused_unread(live_server, live_steward):
    token, spool = live_steward
    head = (
        f"POST {IMPORT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Transfer-Encoding: chunked\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"  # 64 KB chunks, never a last one
    answer = send_and_wait(live_server.url, head, [chunk] * 128)
    assert answer.startswith("HTTP/1.1 411"), answer
    assert not list(spool.iterdir())
