"""FAKES for connector tests: stand-ins for servers that cannot run on this machine.

Nothing here talks to a real MongoDB, Elasticsearch or Oracle server.
"""

import base64
import datetime
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mongomock
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
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
    """

    def __init__(self, username="elastic", password="", api_key=None, tls=None, product=True):
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
                fake.requests.append({"path": self.path, "headers": dict(self.headers)})
                if self.headers.get("Authorization") != fake.expected:
                    reason = "unable to authenticate user for REST request [/]"
                    error = {"type": "security_exception", "reason": reason}
                    self._answer(401, {"error": error, "status": 401})
                else:
                    self._answer(200, ES_INFO)

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


class _RefusingAdmin:
    def command(self, *args, **kwargs):
        raise OperationFailure("Authentication failed.", code=18)


class AuthFailingMongoClient(RecordingMongoClient):
    """FAKE MongoDB client whose server rejects the credentials (code 18)."""

    @property
    def admin(self):
        return _RefusingAdmin()


class FakeOracleConnection:
    """FAKE python-oracledb connection: just enough for a connection test."""

    def __init__(self, version="23.4.0.24.5"):
        self.version = version
        self.call_timeout = 0
        self.closed = False

    def close(self):
        self.closed = True
