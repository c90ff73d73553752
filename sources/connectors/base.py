"""Shared pieces of the source connectors: spec, policy, result, errors and the Connector base."""

import math
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from .metadata import ScanRules, TableMeta

ERROR_KINDS = ("dns", "refused", "timeout", "auth", "tls", "not_found", "blocked", "other")
MASK = "******"
TLS_MODES = ("disable", "require", "verify-ca", "verify-full")
TIMEOUT_LIMITS = {"connect_timeout": 120.0, "statement_timeout": 3600.0}
COMMON_FIELDS = {"connect_timeout": float, "statement_timeout": float, "tls": str, "tls_ca": str}
TYPE_NAMES = {float: "a number", str: "a string", bool: "true or false", int: "an integer"}
# The fields of a spec that say where its secrets go; each kind adds the options that do.
TARGET_FIELDS = ("kind", "host", "port", "database", "username")

Progress = Callable[[int, int, str], None]

# Checked in order: refusal text often mentions the configured timeouts too.
_TEXT_KINDS = (
    ("refused", ("connection refused", "errno 111", "actively refused")),
    ("timeout", ("timed out", "timeout expired", "timeout")),
    ("tls", ("ssl", "tls", "certificate")),
    ("auth", ("authentication failed", "access denied", "password")),
)


class ConnectorError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind if kind in ERROR_KINDS else "other"
        self.message = message

    def __str__(self):
        return self.message


@dataclass(frozen=True, repr=False)
class ConnectionSpec:
    kind: str
    host: str = ""
    port: int | None = None
    database: str = ""
    username: str = ""
    password: str = ""
    options: dict = field(default_factory=dict)

    def __repr__(self):
        from . import KINDS  # late: the kind modules import this one

        public = KINDS[self.kind].public_options if self.kind in KINDS else frozenset()
        options = {k: (v if k in public else MASK) for k, v in self.options.items()}
        return (
            f"ConnectionSpec(kind={self.kind!r}, host={self.host!r}, port={self.port!r}, "
            f"database={self.database!r}, username={self.username!r}, "
            f"password={MASK if self.password else ''!r}, options={options!r})"
        )


@dataclass(frozen=True)
class NetworkPolicy:
    allow: tuple[str, ...] = ()
    block_private: bool = False
    sqlite_dir: str = ""
    connect_timeout: float = 5.0
    statement_timeout: float = 30.0


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    ok: bool
    latency_ms: float
    server_version: str = ""
    error: str = ""
    error_kind: str = ""


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every non-empty secret, raw or URL-quoted, with the mask."""
    forms = set()
    for secret in secrets:
        if secret:
            secret = str(secret)
            forms.update({secret, quote(secret), quote(secret, safe=""), quote_plus(secret)})
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def kind_from_text(text: str) -> str:
    lowered = text.lower()
    for kind, needles in _TEXT_KINDS:
        if any(needle in lowered for needle in needles):
            return kind
    return "other"


def first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def host_literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class _PinnedNameContext(ssl.SSLContext):
    """Checks the certificate against the source's host name while the socket goes to its IP."""

    server_name = ""

    def wrap_socket(self, sock, *args, **kwargs):
        if self.server_name:
            kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


class Connector:
    kind: str = ""
    default_port: int | None = None
    option_fields: dict[str, type] = COMMON_FIELDS
    public_options: frozenset[str] = frozenset(COMMON_FIELDS)
    # Options that change where or how the secrets go (the others only tune timeouts or are
    # secrets themselves).
    target_options: frozenset[str] = frozenset({"tls", "tls_ca"})
    tls_modes: tuple[str, ...] = TLS_MODES

    def __init__(self, spec: ConnectionSpec, policy: NetworkPolicy):
        self.spec = spec
        self.policy = policy
        self.port = spec.port or self.default_port
        self.address = ""
        self.started = None
        self.problem = None
        try:
            self.options = self.clean_options(spec.options)
        except ValueError as exc:
            self.options = {}
            self.problem = ConnectorError("other", self.redact(str(exc)))
        self.connect_timeout = self.options.get("connect_timeout", policy.connect_timeout)
        self.statement_timeout = self.options.get("statement_timeout", policy.statement_timeout)
        self.tls = self.options.get("tls", "disable")

    @classmethod
    def target(cls, spec: ConnectionSpec) -> dict:
        """Where and how the spec's password and secret options would be sent: a stored
        secret may be reused only while this stays the same."""
        values = {name: getattr(spec, name) for name in TARGET_FIELDS}
        values["port"] = spec.port or cls.default_port
        values.update((key, (spec.options or {}).get(key)) for key in sorted(cls.target_options))
        return values

    @classmethod
    def clean_options(cls, options: dict) -> dict:
        cleaned = {}
        for key, value in (options or {}).items():
            expected = cls.option_fields.get(key)
            if expected is None:
                raise ValueError(f"unknown option '{key}' for {cls.kind} sources")
            if value is None:
                continue
            if expected is float:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"option '{key}' must be a number")
                value = float(value)
            elif not isinstance(value, expected):
                raise ValueError(f"option '{key}' must be {TYPE_NAMES.get(expected, expected)}")
            limit = TIMEOUT_LIMITS.get(key)
            if limit and not 0 < value <= limit:
                raise ValueError(f"option '{key}' must be more than 0 and at most {limit:g}")
            if key == "tls" and value not in cls.tls_modes:
                raise ValueError(f"option 'tls' must be one of: {', '.join(cls.tls_modes)}")
            if key == "tls_ca" and "-----BEGIN CERTIFICATE-----" not in value:
                raise ValueError("option 'tls_ca' must be PEM certificate text")
            cleaned[key] = value
        return cleaned

    # --- what each kind provides -------------------------------------------------------

    def open(self, target: str, stack: ExitStack):
        """Open the driver connection to `target` (an IP address, or a path for SQLite)."""
        raise NotImplementedError

    def server_version(self, conn) -> str:
        raise NotImplementedError

    def classify(self, exc: Exception) -> tuple[str, str]:
        """Map a driver exception to (error kind, short detail)."""
        return kind_from_text(str(exc)), first_line(exc)

    # --- shared machinery --------------------------------------------------------------

    def secrets(self) -> list[str]:
        options = self.spec.options.items()
        hidden = [v for k, v in options if k not in self.public_options and isinstance(v, str)]
        return [self.spec.password, *hidden]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def resolve(self) -> str:
        """Check where the source points and return the address (or path) to connect to."""
        from .guard import resolve_host  # late: guard imports this module

        if not 0 < (self.port or 0) < 65536:
            raise ConnectorError("other", f"invalid port {self.port!r}")
        self.address = resolve_host(self.spec.host, self.port, self.policy)
        return self.address

    def where(self) -> str:
        return f"{host_literal(self.address)}:{self.port}"

    def error(self, exc: Exception) -> ConnectorError:
        kind, detail = self.classify(exc)
        where = self.where()
        if kind == "refused":
            message = f"connection refused by {where}"
        elif kind == "timeout":
            message = (
                f"timed out talking to {where} ({detail})" if detail else f"timed out: {where}"
            )
        elif kind == "tls":
            message = f"TLS problem with {where}: {detail}"
        else:
            message = detail or type(exc).__name__
        return ConnectorError(kind, self.redact(message))

    def call(self, fn, *args):
        """Run a driver call; any failure leaves as a redacted ConnectorError."""
        try:
            return fn(*args)
        except ConnectorError:
            raise
        except Exception as exc:
            raise self.error(exc) from None

    def _open(self, stack: ExitStack):
        if self.problem:
            raise self.problem
        target = self.resolve()
        self.started = time.perf_counter()
        conn = self.call(self.open, target, stack)
        stack.callback(self._close, conn)
        return conn

    @staticmethod
    def _close(conn):
        with suppress(Exception):
            conn.close()

    @contextmanager
    def connect(self):
        """Yield an open connection (or client) with timeouts set and the guard applied."""
        with ExitStack() as stack:
            yield self._open(stack)

    def test(self) -> TestResult:
        """Connect and read the server version; failures come back as a result, not raised."""
        self.started = None
        try:
            with ExitStack() as stack:
                version = self.call(self.server_version, self._open(stack))
                latency = self._latency()
        except Exception as exc:
            error = exc if isinstance(exc, ConnectorError) else self.error(exc)
            return TestResult(False, self._latency(), error=error.message, error_kind=error.kind)
        return TestResult(True, latency, server_version=str(version))

    # --- introspection -----------------------------------------------------------------------

    def introspect(
        self, rules: ScanRules | None = None, progress: Progress | None = None
    ) -> list[TableMeta]:
        """Metadata of every table the rules allow, read with a few bulk catalog queries;
        `progress(done, total, message)` hears how far it got."""
        with self.connect() as conn:
            return self.call(
                self.read_catalog, conn, rules or ScanRules(), progress or _quiet, None
            )

    def introspect_table(self, schema: str, name: str) -> TableMeta:
        with self.connect() as conn:
            found = self.call(self.read_catalog, conn, ScanRules(), _quiet, (schema, name))
        if not found:
            where = f"{schema}.{name}" if schema else name
            raise ConnectorError("not_found", f"table '{where}' does not exist in {self.kind}")
        return found[0]

    def sample_values(
        self, table: TableMeta, columns: list[str], limit: int
    ) -> dict[str, list[str]]:
        """Up to `limit` non-null values of each column, as text of at most 200 characters."""
        known = {column.name for column in table.columns}
        wanted = list(dict.fromkeys(c for c in columns if not known or c in known))
        limit = max(0, int(limit))
        if not wanted or not limit:
            return {name: [] for name in wanted}
        with self.connect() as conn:
            return self.call(self.read_sample, conn, table, wanted, limit)

    def read_catalog(self, conn, rules: ScanRules, progress: Progress, only) -> list[TableMeta]:
        """The allowed tables' metadata; with `only` = (schema, name), just that one if found."""
        raise NotImplementedError

    def read_sample(self, conn, table: TableMeta, columns: list[str], limit: int):
        raise NotImplementedError

    def _latency(self) -> float:
        if self.started is None:
            return 0.0
        return round((time.perf_counter() - self.started) * 1000, 1)

    # --- helpers for the kind modules --------------------------------------------------

    @property
    def timeout_ms(self) -> int:
        return int(self.statement_timeout * 1000)

    @property
    def connect_timeout_int(self) -> int:
        return math.ceil(self.connect_timeout)

    def ca_file(self, stack: ExitStack) -> str | None:
        """Write tls_ca to a private temp file that lives as long as the connection."""
        pem = self.options.get("tls_ca")
        if not pem:
            return None
        fd, path = tempfile.mkstemp(prefix="steward-ca-", suffix=".pem")
        stack.callback(_unlink, path)
        with os.fdopen(fd, "w") as handle:
            handle.write(pem)
        return path

    def ssl_context(self) -> ssl.SSLContext | None:
        """An SSLContext for the tls mode; verify-full checks the host name, not the IP."""
        if self.tls == "disable":
            return None
        ctx = _PinnedNameContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls == "verify-full":
            ctx.server_name = self.spec.host
        else:
            ctx.check_hostname = False
        if self.tls == "require":
            ctx.verify_mode = ssl.CERT_NONE
        elif self.options.get("tls_ca"):
            ctx.load_verify_locations(cadata=self.options["tls_ca"])
        else:
            ctx.load_default_certs()
        return ctx


def _quiet(done: int, total: int, message: str):
    pass


def _unlink(path: str):
    with suppress(FileNotFoundError):
        os.unlink(path)
