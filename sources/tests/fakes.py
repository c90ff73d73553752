"""FAKES for connector tests: stand-ins for servers that cannot run on this machine, and
for a host someone else runs.

Nothing here talks to a real MongoDB, Elasticsearch or Oracle server.
"""

import base64
import contextlib
import datetime
import functools
import json
import socket
import ssl
import struct
import threading
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import mongomock
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from mongomock.store import ServerStore
from pymongo.errors import OperationFailure

ES_INFO = {
    "name": "fake-node",
    "cluster_name": "fake-cluster",
    "version": {"number": "8.13.4", "build_flavor": "default"},
    "tagline": "You Know, for Search",
}


class FakeElasticsearch:
    """FAKE Elasticsearch: a loopback HTTP(S) server answering `GET /` like a real node.

    It checks the Authorization header (basic auth or an API key) and answers 401 otherwise;
    it sends the X-Elastic-Product header the elasticsearch 8 client insists on.

    Given `indices` ({name: {"mappings": ..., "aliases": [...], "docs": [...], "size": bytes,
    "hidden": bool}}) it also answers `_mapping`, `_alias`, `_cat/indices` and `_search` for an
    index name or pattern; patterns skip hidden indices and a missing name is a 404.
    """

    def __init__(
        self, username="elastic", password="", api_key=None, tls=None, product=True, indices=None
    ):
        self.indices = indices or {}
        if api_key:
            self.expected = f"ApiKey {api_key}"
        else:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.expected = f"Basic {token}"
        self.tls = tls
        self.product = product
        self.requests = []

    def __enter__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.headers.get("Authorization") != fake.expected:
                    reason = "unable to authenticate user for REST request [/]"
                    error = {"type": "security_exception", "reason": reason}
                    self._answer(401, {"error": error, "status": 401})
                else:
                    self._answer(*fake.route(self.path, body))

            do_POST = do_GET

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if fake.product:
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # failed TLS handshakes are part of the tests

        self.server = Server(("127.0.0.1", 0), Handler)
        if self.tls:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def paths(self):
        return [urlsplit(request["path"]).path for request in self.requests]

    def route(self, path, body):
        parts = urlsplit(path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        segments = [unquote(segment) for segment in parts.path.split("/") if segment]
        if not segments:
            return 200, ES_INFO
        if segments[:2] == ["_cat", "indices"]:
            names = self.resolve(segments[2] if len(segments) > 2 else "*")
            if names is None:
                return self.missing(segments[2])
            return 200, [
                {
                    "index": name,
                    "docs.count": str(len(self.indices[name].get("docs", []))),
                    "store.size": str(self.indices[name].get("size", 0)),
                }
                for name in names
            ]
        action = segments[-1]
        target = segments[0] if len(segments) > 1 else "*"
        names = self.resolve(target)
        if names is None:
            return self.missing(target)
        if action == "_mapping":
            return 200, {name: {"mappings": self.indices[name]["mappings"]} for name in names}
        if action == "_alias":
            return 200, {
                name: {"aliases": {alias: {} for alias in self.indices[name].get("aliases", [])}}
                for name in names
            }
        if action == "_search":
            size = int(body.get("size", query.get("size", 10)))
            hits = [
                {"_index": name, "_id": str(number), "_source": document}
                for name in names
                for number, document in enumerate(self.indices[name].get("docs", []))
            ]
            return 200, {"hits": {"total": {"value": len(hits)}, "hits": hits[:size]}}
        return 400, {"error": {"type": "illegal_argument_exception", "reason": path}}

    def resolve(self, target):
        """Index names for a target like real Elasticsearch, or None for a missing name."""
        names = []
        for part in target.split(","):
            if "*" in part or "?" in part:
                names += [
                    name
                    for name, index in self.indices.items()
                    if fnmatchcase(name, part) and not index.get("hidden") and name not in names
                ]
            elif part in self.indices:
                names.append(part)
            else:
                return None
        return names

    @staticmethod
    def missing(target):
        error = {"type": "index_not_found_exception", "reason": f"no such index [{target}]"}
        return 404, {"error": error, "status": 404}


def make_tls(tmp_path, name):
    """A throwaway CA and a server certificate for `name`: (CA PEM text, server SSLContext)."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject, issuer, key, signing_key, ca, extensions=()):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
    ca_cert = build("Fake Steward Test CA", "Fake Steward Test CA", ca_key, ca_key, True, [usage])
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(
        name,
        "Fake Steward Test CA",
        key,
        ca_key,
        False,
        [
            x509.SubjectAlternativeName([x509.DNSName(name)]),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
        ],
    )
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return ca_cert.public_bytes(serialization.Encoding.PEM).decode(), server


class RecordingMongoClient(mongomock.MongoClient):
    """FAKE MongoDB client (mongomock) that remembers the keyword arguments it was given."""

    calls = []

    def __init__(self, *args, **kwargs):
        RecordingMongoClient.calls.append(kwargs)
        super().__init__(*args, **kwargs)


class FakeMongoClient(mongomock.MongoClient):
    """FAKE MongoDB client (mongomock). Every client shares one in-memory server (`store`), so
    data a test writes is what the connector's own client reads. It adds list_collections(),
    which mongomock lacks, and read-only views: a name in `views` ({(database, name): {"viewOn":
    ..., "pipeline": [...]}}) is listed as a view, and its documents are whatever the test put
    in the mongomock collection of that name (standing in for the pipeline's output)."""

    store = ServerStore()
    views: dict = {}

    def __init__(self, *args, **kwargs):
        kwargs["_store"] = type(self).store
        super().__init__(*args, **kwargs)

    @classmethod
    def reset(cls):
        cls.store = ServerStore()
        cls.views = {}

    def get_database(self, name=None, **kwargs):
        database = super().get_database(name, **kwargs)
        database.list_collections = functools.partial(_list_collections, database, self.views)
        return database


def _list_collections(database, views, filter=None, **kwargs):
    for name in database.list_collection_names():
        if filter and filter.get("name", name) != name:
            continue
        view = views.get((database.name, name))
        if view:
            yield {"name": name, "type": "view", "options": dict(view), "info": {"readOnly": True}}
        else:
            yield {"name": name, "type": "collection", "options": {}, "info": {"readOnly": False}}


class _RefusingAdmin:
    def command(self, *args, **kwargs):
        raise OperationFailure("Authentication failed.", code=18)


class AuthFailingMongoClient(RecordingMongoClient):
    """FAKE MongoDB client whose server rejects the credentials (code 18)."""

    @property
    def admin(self):
        return _RefusingAdmin()


class FakeOracleConnection:
    """FAKE python-oracledb connection: enough for a connection test and for catalog queries.

    `answers` is a list of (text, rows) tried in order: a statement containing `text` gets
    `rows` (a list of tuples, a callable taking (sql, params), or an exception to raise).
    Every statement and its parameters are kept in `executed`.
    """

    def __init__(self, version="23.4.0.24.5", answers=()):
        self.version = version
        self.call_timeout = 0
        self.closed = False
        self.answers = list(answers)
        self.executed = []

    def cursor(self):
        return FakeOracleCursor(self)

    def close(self):
        self.closed = True


class FakeOracleCursor:
    """FAKE python-oracledb cursor answering from its FakeOracleConnection."""

    def __init__(self, connection):
        self.connection = connection
        self.rows = []

    def execute(self, sql, parameters=None):
        self.connection.executed.append((sql, parameters))
        for text, answer in self.connection.answers:
            if text in sql:
                if isinstance(answer, Exception):
                    raise answer
                self.rows = list(answer(sql, parameters) if callable(answer) else answer)
                return
        raise AssertionError(f"the FAKE Oracle has no answer for: {sql}")

    def fetchall(self):
        return self.rows

    def close(self):
        pass


class PasswordListener:
    """FAKE PostgreSQL server standing in for a host an attacker runs: it answers each startup
    message by asking for the password in clear text (as a real server may), keeps every
    password it is sent in `passwords`, then refuses the login. `connections` counts sessions.
    """

    SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104
    REFUSAL = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.passwords = []
        self.connections = 0

    def __enter__(self):
        self.server = socket.create_server((self.host, 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        self.server.close()
        self.thread.join(5)

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(5)
                self.connections += 1
                with contextlib.suppress(OSError, struct.error):  # the client gave up
                    self._session(conn)

    def _session(self, conn):
        while True:
            body = _message(conn, _exactly(conn, 4))
            if struct.unpack("!I", body[:4])[0] not in (self.SSL_REQUEST, self.GSSENC_REQUEST):
                break  # the startup message
            conn.sendall(b"N")  # no TLS: carry on in clear text
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        if _exactly(conn, 1) == b"p":
            password = _message(conn, _exactly(conn, 4))
            self.passwords.append(password.rstrip(b"\0").decode())
        conn.sendall(b"E" + struct.pack("!I", len(self.REFUSAL) + 4) + self.REFUSAL)


def _exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("the client went away")
        data += chunk
    return data


def _message(conn, length):
    return _exactly(conn, struct.unpack("!I", length)[0] - 4)
