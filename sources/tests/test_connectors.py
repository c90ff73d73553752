"""Connector tests.

Real servers: PostgreSQL and MariaDB on 127.0.0.1, SQLite files in tmp_path.
MongoDB, Elasticsearch and Oracle run against clearly labelled FAKES (see fakes.py) or, when
MONGO_URL / ELASTICSEARCH_URL / ORACLE_DSN are set, against real servers (integration tests).
"""

import ipaddress
import math
import os
import secrets
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from urllib.parse import parse_qsl, unquote, urlsplit

import oracledb
import pymongo
import pymysql
import pytest
from oracledb import errors as oracle_errors

from sources.connectors import (
    KINDS,
    ConnectionSpec,
    ConnectorError,
    NetworkPolicy,
    get_connector,
    redact,
    validate_options,
)
from sources.connectors.guard import check_sqlite_path, refusal, resolve_host
from sources.connectors.mongodb import MongoDBConnector
from sources.connectors.mysql import MySQLConnector
from sources.models import DataSource

from .fakes import (
    AuthFailingMongoClient,
    FakeElasticsearch,
    FakeOracleConnection,
    RecordingMongoClient,
    make_tls,
)

CANARY = f"canary-{secrets.token_hex(6)}/p@ss w0rd"
CANARY_USER = "steward_canary"
# Where a second DNS answer points in rebinding tests: a driver that looked again is refused.
REBOUND = "127.0.0.2"


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


needs_postgres = pytest.mark.skipif(not listening(5432), reason="no PostgreSQL on 127.0.0.1:5432")
needs_mariadb = pytest.mark.skipif(not listening(3306), reason="no MariaDB on 127.0.0.1:3306")


@pytest.fixture
def policy(tmp_path):
    return NetworkPolicy(allow=("127.0.0.1",), sqlite_dir=str(tmp_path), connect_timeout=5)


@pytest.fixture
def fake_dns(monkeypatch):
    """Answers for made-up names; each lookup takes the next answer, the last one sticks."""
    real = socket.getaddrinfo
    answers, lookups = {}, {}

    def getaddrinfo(host, port, *args, **kwargs):
        name = str(host).lower()
        if name not in answers:
            return real(host, port, *args, **kwargs)
        lookups[name] = lookups.get(name, 0) + 1
        queue = answers[name]
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port or 0, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))
            for ip in ips
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def add(name, *ips):
        answers[name.lower()] = [tuple(ip.split(",")) for ip in ips]
        return lookups

    return add


def attempt(policy, **fields):
    """Build the spec from keyword fields and run the connector's connection test."""
    return get_connector(ConnectionSpec(**fields), policy).test()


def assert_failed(result, kind):
    assert not result.ok, result
    assert result.error_kind == kind, result
    assert result.error
    assert CANARY not in result.error


# --- guard: resolve_host -------------------------------------------------------------------


def test_cloud_metadata_address_is_blocked(policy):
    with pytest.raises(ConnectorError) as caught:
        resolve_host("169.254.169.254", 80, policy)
    assert caught.value.kind == "blocked"
    assert "address 169.254.169.254 is a cloud metadata address and never allowed" in (
        caught.value.message
    )
    result = attempt(policy, kind="postgresql", host="169.254.169.254", port=5432)
    assert_failed(result, "blocked")
    assert result.latency_ms == 0.0


def test_loopback_needs_the_allowlist():
    with pytest.raises(ConnectorError, match="127.0.0.1 is loopback") as caught:
        resolve_host("127.0.0.1", 5432, NetworkPolicy())
    assert caught.value.kind == "blocked"
    assert resolve_host("127.0.0.1", 5432, NetworkPolicy(allow=("127.0.0.1",))) == "127.0.0.1"


@pytest.mark.parametrize(
    ("address", "label"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("127.5.5.5", "loopback"),
        ("::1", "loopback"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.1.1", "link-local"),
    ],
)
def test_always_blocked_addresses(address, label):
    with pytest.raises(ConnectorError, match=f"is {label} and not allowed") as caught:
        resolve_host(address, 5432, NetworkPolicy(allow=("db.example.com", "8.8.8.0/24")))
    assert caught.value.kind == "blocked"


def test_ipv4_mapped_address_is_checked_and_allowed_as_ipv4():
    policy = NetworkPolicy(allow=("127.0.0.1",))
    assert resolve_host("::ffff:127.0.0.1", 5432, policy) == "127.0.0.1"


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd00::1", "::ffff:10.0.0.1"]
)
def test_private_ranges_blocked_only_when_the_policy_says_so(address):
    with pytest.raises(ConnectorError, match="is private and not allowed") as caught:
        resolve_host(address, 5432, NetworkPolicy(block_private=True))
    assert caught.value.kind == "blocked"
    assert resolve_host(address, 5432, NetworkPolicy()) == address.removeprefix("::ffff:")


# Cloud metadata services, and every IPv6 form that carries one: refused by the default policy
# and by one whose allowlist covers them by range (or names the host pointing at them).
@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.170.2", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("168.63.129.16", "a cloud metadata address"),
        ("192.0.0.192", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("fd20:ce::254", "a cloud metadata address"),
        ("::ffff:169.254.169.254", "IPv4-mapped form of the cloud metadata address"),
        ("::ffff:100.100.100.200", "IPv4-mapped form of the cloud metadata address"),
        ("::169.254.169.254", "the IPv4-compatible form of the cloud metadata address"),
        ("::ffff:0:100.100.100.200", "the SIIT form of the cloud metadata address"),
        ("2002:a9fe:a9fe::1", "the 6to4 form of the cloud metadata address 169.254.169.254"),
        ("2002:6464:64c8::", "the 6to4 form of the cloud metadata address 100.100.100.200"),
        ("64:ff9b::169.254.169.254", "the NAT64 form of the cloud metadata address"),
        ("64:ff9b:1::100.100.100.200", "the NAT64 form of the cloud metadata address"),
        ("64:ff9b:1:a9fe:a9:fe00::", "the NAT64 form of the cloud metadata address"),
        # Teredo: server 65.54.227.120, client 169.254.169.254 XOR-ed to 86.1.86.1.
        ("2001:0:4136:e378:8000:63bf:5601:5601", "the Teredo form of the cloud metadata"),
    ],
)
def test_metadata_addresses_are_never_allowed(fake_dns, address, why):
    wide_open = NetworkPolicy(allow=("0.0.0.0/0", "::/0", "meta.steward.test"))
    for policy in (NetworkPolicy(), wide_open):
        assert refusal(address, policy).endswith("and never allowed")
        assert why in refusal(address, policy)
    fake_dns("meta.steward.test", address)
    with pytest.raises(ConnectorError, match="never allowed") as caught:
        resolve_host("meta.steward.test", 80, wide_open)
    assert caught.value.kind == "blocked"


# Each IPv6 form that carries an IPv4 address is judged by that address.
@pytest.mark.parametrize(
    ("address", "carried", "label"),
    [
        ("::ffff:0:127.0.0.1", "SIIT form of 127.0.0.1", "loopback"),
        ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1", "loopback"),
        ("2002:7f00:1::1", "6to4 form of 127.0.0.1", "loopback"),
        ("2002:a9fe:101::", "6to4 form of 169.254.1.1", "link-local"),
        ("2002:a00:1::1", "6to4 form of 10.0.0.1", "private"),
        ("64:ff9b::127.0.0.1", "NAT64 form of 127.0.0.1", "loopback"),
        ("64:ff9b::192.168.1.1", "NAT64 form of 192.168.1.1", "private"),
        ("64:ff9b:1::127.0.0.1", "NAT64 form of 127.0.0.1", "loopback"),
        ("64:ff9b:1:7f00:0:1ff::", "NAT64 form of 127.0.0.1", "loopback"),  # a /48 prefix
        ("64:ff9b:1:0:7f:0:100::", "NAT64 form of 127.0.0.1", "loopback"),  # a /64 prefix
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo form of 127.0.0.1", "loopback"),
        ("2001:0:a00:1:8000:63bf:a2a2:a2a2", "Teredo form of 10.0.0.1", "private"),
    ],
)
def test_ipv6_forms_are_judged_by_the_ipv4_address_they_carry(address, carried, label):
    policy = NetworkPolicy(block_private=True)
    why = refusal(address, policy)
    assert f"is the {carried}, which is {label} and not allowed" in why
    with pytest.raises(ConnectorError, match=f"which is {label}") as caught:
        resolve_host(address, 5432, policy)
    assert caught.value.kind == "blocked"
    ipv4 = carried.rsplit(" ", 1)[-1]
    assert refusal(address, NetworkPolicy(block_private=True, allow=(ipv4,))) == ""


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
        "64:ff9b::93.184.216.34",
        "2001:0:4136:e378:8000:63bf:a247:27dd",  # Teredo client 93.184.216.34
    ],
)
def test_public_addresses_in_any_form_pass(address):
    assert refusal(address, NetworkPolicy(block_private=True)) == ""
    policy = NetworkPolicy(block_private=True)
    assert resolve_host(address, 443, policy) == str(ipaddress.ip_address(address))


def test_allowlist_cidr_and_hostname_open_blocked_addresses(fake_dns):
    strict = NetworkPolicy(block_private=True, allow=("10.0.0.0/8", "DB.Internal.Example."))
    assert resolve_host("10.1.2.3", 5432, strict) == "10.1.2.3"
    with pytest.raises(ConnectorError, match="private"):
        resolve_host("192.168.0.9", 5432, strict)
    fake_dns("db.internal.example", "192.168.7.7")
    assert resolve_host("db.internal.example", 5432, strict) == "192.168.7.7"


def test_any_blocked_address_among_several_blocks(fake_dns):
    fake_dns("mixed.steward.test", "93.184.216.34,169.254.169.254")
    with pytest.raises(ConnectorError, match="169.254.169.254 is a cloud metadata") as caught:
        resolve_host("mixed.steward.test", 443, NetworkPolicy())
    assert caught.value.kind == "blocked"


def test_public_address_passes(fake_dns):
    fake_dns("public.steward.test", "93.184.216.34")
    assert resolve_host("public.steward.test", 443, NetworkPolicy()) == "93.184.216.34"


def test_unknown_host_is_dns(policy):
    with pytest.raises(ConnectorError, match="cannot resolve host 'nonexistent.invalid'") as caught:
        resolve_host("nonexistent.invalid", 5432, policy)
    assert caught.value.kind == "dns"
    assert_failed(attempt(policy, kind="mysql", host="nonexistent.invalid"), "dns")


# --- guard: check_sqlite_path --------------------------------------------------------------


def make_sqlite(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.close()
    return path


def test_sqlite_success_read_only(tmp_path, policy):
    make_sqlite(tmp_path / "shop.db")
    result = attempt(policy, kind="sqlite", database="shop.db")
    assert result.ok, result
    assert result.server_version == sqlite3.sqlite_version
    assert result.error_kind == ""
    spec = ConnectionSpec(kind="sqlite", database=str(tmp_path / "shop.db"))
    with get_connector(spec, policy).connect() as conn:
        assert conn.execute("SELECT name FROM customers").fetchall() == [("Ada",)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("INSERT INTO customers (name) VALUES ('Eve')")


def test_sqlite_odd_file_name_is_quoted(tmp_path, policy):
    make_sqlite(tmp_path / "we?ird #name%20.db")
    assert attempt(policy, kind="sqlite", database="we?ird #name%20.db").ok


def test_sqlite_statement_timeout_interrupts(tmp_path, policy):
    make_sqlite(tmp_path / "shop.db")
    spec = ConnectionSpec(kind="sqlite", database="shop.db", options={"statement_timeout": 0.2})
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
    started = time.monotonic()
    with (
        get_connector(spec, policy).connect() as conn,
        pytest.raises(sqlite3.OperationalError, match="interrupted"),
    ):
        conn.execute(endless).fetchall()
    assert time.monotonic() - started < 5


def test_sqlite_outside_the_directory_is_blocked(tmp_path_factory, policy):
    elsewhere = make_sqlite(tmp_path_factory.mktemp("elsewhere") / "other.db")
    assert_failed(attempt(policy, kind="sqlite", database=str(elsewhere)), "blocked")


def test_sqlite_dotdot_is_blocked(tmp_path, policy):
    (tmp_path / "sub").mkdir()
    make_sqlite(tmp_path / "shop.db")
    with pytest.raises(ConnectorError, match=r"\.\.") as caught:
        check_sqlite_path("sub/../shop.db", policy)
    assert caught.value.kind == "blocked"
    assert_failed(attempt(policy, kind="sqlite", database="../outside.db"), "blocked")


def test_sqlite_symlink_out_is_blocked(tmp_path, tmp_path_factory, policy):
    target = make_sqlite(tmp_path_factory.mktemp("secret") / "secret.db")
    (tmp_path / "link.db").symlink_to(target)
    (tmp_path / "linkdir").symlink_to(target.parent, target_is_directory=True)
    assert_failed(attempt(policy, kind="sqlite", database="link.db"), "blocked")
    assert_failed(attempt(policy, kind="sqlite", database="linkdir/secret.db"), "blocked")


def test_sqlite_uri_names_are_blocked(tmp_path, policy):
    make_sqlite(tmp_path / "shop.db")
    for name in (f"file:{tmp_path}/shop.db?mode=rwc", "FILE:shop.db", ":memory:"):
        assert_failed(attempt(policy, kind="sqlite", database=name), "blocked")


def test_sqlite_disabled_without_a_directory(tmp_path):
    make_sqlite(tmp_path / "shop.db")
    with pytest.raises(ConnectorError, match="disabled") as caught:
        check_sqlite_path(str(tmp_path / "shop.db"), NetworkPolicy())
    assert caught.value.kind == "blocked"


def test_sqlite_missing_file_is_not_found(policy):
    assert_failed(attempt(policy, kind="sqlite", database="nope.db"), "not_found")


def test_sqlite_not_a_database(tmp_path, policy):
    (tmp_path / "notes.db").write_text("just some text, long enough to look like a header " * 20)
    result = attempt(policy, kind="sqlite", database="notes.db")
    assert_failed(result, "other")
    assert "not an SQLite database" in result.error


# --- PostgreSQL (real server) ---------------------------------------------------------------


@needs_postgres
def test_postgresql_success(policy):
    result = attempt(
        policy, kind="postgresql", host="127.0.0.1", database="postgres", username="postgres"
    )
    assert result.ok, result
    assert result.server_version[:1].isdigit()
    assert result.latency_ms > 0
    assert result.latency_ms == round(result.latency_ms, 1)


@needs_postgres
def test_postgresql_connect_sets_timeouts(policy):
    spec = ConnectionSpec(
        kind="postgresql",
        host="127.0.0.1",
        database="postgres",
        username="postgres",
        options={"statement_timeout": 12.5},
    )
    with get_connector(spec, policy).connect() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "12500ms"
        assert conn.execute("SHOW application_name").fetchone()[0] == "steward"
    assert conn.closed


@needs_postgres
def test_postgresql_bad_login_is_auth(policy):
    """127.0.0.1 uses trust auth here, so any password works for an existing role; the server
    still refuses a role that does not exist, which is the auth failure we can provoke."""
    result = attempt(
        policy,
        kind="postgresql",
        host="127.0.0.1",
        database="postgres",
        username="steward_no_such_role",
        password=CANARY,
    )
    assert_failed(result, "auth")
    assert 'role "steward_no_such_role" does not exist' in result.error


@needs_postgres
def test_postgresql_missing_database(policy):
    result = attempt(
        policy, kind="postgresql", host="127.0.0.1", database="steward_nope", username="postgres"
    )
    assert_failed(result, "not_found")
    assert result.error == 'database "steward_nope" does not exist'


def test_postgresql_closed_port_is_refused_fast(policy):
    started = time.monotonic()
    result = attempt(policy, kind="postgresql", host="127.0.0.1", port=1, username="postgres")
    assert_failed(result, "refused")
    assert result.error == "connection refused by 127.0.0.1:1"
    assert result.latency_ms < 1000
    assert time.monotonic() - started < 2


@needs_postgres
def test_postgresql_connects_to_the_checked_address(fake_dns, policy):
    lookups = fake_dns("pg.steward.test", "127.0.0.1", REBOUND)
    result = attempt(
        policy, kind="postgresql", host="pg.steward.test", database="postgres", username="postgres"
    )
    assert result.ok, result
    assert lookups["pg.steward.test"] == 1


def test_postgresql_connect_raises_connector_error(policy):
    spec = ConnectionSpec(kind="postgresql", host="127.0.0.1", port=1, password=CANARY)
    with pytest.raises(ConnectorError) as caught, get_connector(spec, policy).connect():
        pass
    assert caught.value.kind == "refused"
    assert CANARY not in str(caught.value) and CANARY not in repr(caught.value)


# --- MariaDB (real server) ------------------------------------------------------------------


@pytest.fixture
def canary_user():
    """A MariaDB login with a known password, removed afterwards."""
    root = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    with root.cursor() as cursor:
        cursor.execute(f"DROP USER IF EXISTS '{CANARY_USER}'@'127.0.0.1'")
        cursor.execute(f"CREATE USER '{CANARY_USER}'@'127.0.0.1' IDENTIFIED BY %s", (CANARY,))
    yield CANARY_USER
    with root.cursor() as cursor:
        cursor.execute(f"DROP USER IF EXISTS '{CANARY_USER}'@'127.0.0.1'")
    root.close()


@needs_mariadb
def test_mariadb_success(policy):
    result = attempt(policy, kind="mysql", host="127.0.0.1", username="root")
    assert result.ok, result
    assert "MariaDB" in result.server_version


@needs_mariadb
def test_mariadb_password_login(policy, canary_user):
    good = attempt(policy, kind="mysql", host="127.0.0.1", username=canary_user, password=CANARY)
    assert good.ok, good
    wrong = attempt(
        policy, kind="mysql", host="127.0.0.1", username=canary_user, password=CANARY + "x"
    )
    assert_failed(wrong, "auth")
    assert CANARY + "x" not in wrong.error
    assert "Access denied" in wrong.error


@needs_mariadb
def test_mariadb_missing_database(policy):
    result = attempt(
        policy, kind="mysql", host="127.0.0.1", username="root", database="steward_nope"
    )
    assert_failed(result, "not_found")
    assert "steward_nope" in result.error


def test_mariadb_closed_port_is_refused_fast(policy):
    result = attempt(policy, kind="mysql", host="127.0.0.1", port=1, username="root")
    assert_failed(result, "refused")
    assert result.latency_ms < 1000


@needs_mariadb
def test_mariadb_never_allows_local_infile(policy, monkeypatch):
    seen = {}
    real_connect = pymysql.connect

    def spy(**kwargs):
        seen.update(kwargs)
        return real_connect(**kwargs)

    monkeypatch.setattr(pymysql, "connect", spy)
    spec = ConnectionSpec(kind="mysql", host="127.0.0.1", username="root", database="test")
    with get_connector(spec, policy).connect() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE steward_lines (line TEXT)")
        with pytest.raises(pymysql.err.OperationalError, match="local infile"):
            cursor.execute("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE steward_lines")
    assert seen["local_infile"] is False
    assert seen["host"] == "127.0.0.1"
    assert seen["read_timeout"] == policy.statement_timeout


@needs_mariadb
def test_mariadb_connects_to_the_checked_address(fake_dns, policy):
    lookups = fake_dns("mysql.steward.test", "127.0.0.1", REBOUND)
    result = attempt(policy, kind="mysql", host="mysql.steward.test", username="root")
    assert result.ok, result
    assert lookups["mysql.steward.test"] == 1


def test_mysql_option_local_infile_is_refused(policy):
    with pytest.raises(ValueError, match="local_infile"):
        validate_options("mysql", {"local_infile": True})
    result = attempt(policy, kind="mysql", host="127.0.0.1", options={"local_infile": True})
    assert_failed(result, "other")
    assert "local_infile" in result.error


# --- Oracle (FAKE oracledb.connect, plus the real thin driver against no server) ----------


def oracle_error(message, code):
    """An error the way python-oracledb thin builds one from a server message."""
    error = oracle_errors._Error(message, code=code)
    return error.exc_type(error)


def oracle_driver_error(number, cause=None, **args):
    """An error the way python-oracledb builds its own DPY-nnnn errors."""
    return oracle_errors._create_exception(number, cause=cause, **args)


@pytest.fixture
def fake_oracle(monkeypatch):
    """FAKE: replaces oracledb.connect; returns a fake connection or raises the given error."""
    calls = []

    def install(outcome):
        def connect(**kwargs):
            calls.append(kwargs)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        monkeypatch.setattr(oracledb, "connect", connect)
        return calls

    return install


def test_oracle_success_with_fake(fake_oracle, policy):
    conn = FakeOracleConnection()
    calls = fake_oracle(conn)
    result = attempt(
        policy, kind="oracle", host="127.0.0.1", database="FREEPDB1", username="u", password="p"
    )
    assert result.ok, result
    assert result.server_version == "23.4.0.24.5"
    (kwargs,) = calls
    assert kwargs["host"] == "127.0.0.1"
    assert kwargs["port"] == 1521
    assert kwargs["service_name"] == "FREEPDB1"
    assert kwargs["tcp_connect_timeout"] == 5
    assert "protocol" not in kwargs
    assert conn.call_timeout == 30_000
    assert conn.closed


def test_oracle_tls_uses_tcps_with_fake(fake_oracle, policy):
    calls = fake_oracle(FakeOracleConnection())
    spec_options = {"tls": "require"}
    result = attempt(policy, kind="oracle", host="127.0.0.1", database="X", options=spec_options)
    assert result.ok, result
    assert calls[0]["protocol"] == "tcps"
    assert calls[0]["ssl_context"].verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (
            oracle_error("ORA-01017: invalid credential or not authorized; logon denied", 1017),
            "auth",
            "ORA-01017",
        ),
        (
            oracle_error(
                "ORA-12514: Cannot connect to database. Service NOPE is not registered with "
                "the listener at host 127.0.0.1 port 1521.",
                12514,
            ),
            "not_found",
            "NOPE",
        ),
        (
            oracle_driver_error(
                oracle_errors.ERR_CONNECTION_FAILED,
                cause=ConnectionRefusedError(111, "Connection refused"),
                connection_id="abc",
            ),
            "refused",
            "connection refused by 127.0.0.1:1521",
        ),
        (
            oracle_driver_error(
                oracle_errors.ERR_CONNECTION_FAILED,
                cause=TimeoutError("timed out"),
                connection_id="x",
            ),
            "timeout",
            "timed out",
        ),
        (
            oracle_driver_error(oracle_errors.ERR_CONNECTION_CLOSED),
            "other",
            "DPY-4011",
        ),
    ],
)
def test_oracle_error_mapping_with_fake(fake_oracle, policy, error, kind, text):
    fake_oracle(error)
    result = attempt(policy, kind="oracle", host="127.0.0.1", database="NOPE", password=CANARY)
    assert_failed(result, kind)
    assert text in result.error
    assert "CONNECTION_ID" not in result.error and "Help:" not in result.error


def test_oracle_secret_echoed_by_the_driver_is_redacted(fake_oracle, policy):
    fake_oracle(oracle_error(f"ORA-01017: denied for password {CANARY}", 1017))
    result = attempt(policy, kind="oracle", host="127.0.0.1", password=CANARY)
    assert_failed(result, "auth")
    assert "******" in result.error


def test_oracle_real_thin_driver_closed_port(policy):
    result = attempt(policy, kind="oracle", host="127.0.0.1", port=1, password=CANARY)
    assert_failed(result, "refused")
    assert oracledb.is_thin_mode()


def test_oracle_real_thin_driver_silent_server_times_out(policy):
    """The thin driver waits forever for a listener that accepts and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = attempt(
            policy, kind="oracle", host="127.0.0.1", port=port, options={"connect_timeout": 1}
        )
        assert_failed(result, "timeout")
        assert time.monotonic() - started < 3


def test_oracle_verify_full_is_not_offered():
    with pytest.raises(ValueError, match="tls"):
        validate_options("oracle", {"tls": "verify-full"})


# --- MongoDB (FAKE client: mongomock) -----------------------------------------------------


def test_mongodb_success_with_mongomock_fake(monkeypatch, policy):
    monkeypatch.setattr(MongoDBConnector, "client_class", RecordingMongoClient)
    RecordingMongoClient.calls.clear()
    result = attempt(
        policy,
        kind="mongodb",
        host="127.0.0.1",
        database="shop",
        username="reader",
        password=CANARY,
        options={"connect_timeout": 2, "replica_set": "rs0"},
    )
    assert result.ok, result
    assert result.server_version == RecordingMongoClient().server_info()["version"]
    kwargs = RecordingMongoClient.calls[0]
    assert kwargs["host"] == "127.0.0.1"
    assert kwargs["port"] == 27017
    assert kwargs["directConnection"] is True
    assert kwargs["serverSelectionTimeoutMS"] == 2000
    assert kwargs["socketTimeoutMS"] == 30_000
    assert kwargs["authSource"] == "shop"
    assert kwargs["replicaSet"] == "rs0"


def test_mongodb_dials_only_the_checked_address(monkeypatch, policy):
    """Replica-set discovery would dial the member addresses the server names, resolved by
    pymongo after the guard has looked: the client always connects directly instead."""
    monkeypatch.setattr(MongoDBConnector, "client_class", RecordingMongoClient)
    RecordingMongoClient.calls.clear()
    spec = ConnectionSpec(kind="mongodb", host="127.0.0.1", options={"replica_set": "rs0"})
    assert get_connector(spec, policy).test().ok
    kwargs = RecordingMongoClient.calls[0]
    assert (kwargs["host"], kwargs["directConnection"]) == ("127.0.0.1", True)
    # The real driver, given the same arguments, keeps to that one server (no connection made).
    client = pymongo.MongoClient(**{**kwargs, "connect": False})
    assert client.topology_description.topology_type_name == "Single"
    client.close()
    with pytest.raises(ValueError, match="unknown option 'direct_connection'"):
        validate_options("mongodb", {"direct_connection": False})


def test_mongodb_tls_ca_file_lives_only_with_the_connection(monkeypatch, policy, tmp_path):
    ca_pem, _ = make_tls(tmp_path, "mongo.steward.test")
    monkeypatch.setattr(MongoDBConnector, "client_class", RecordingMongoClient)
    RecordingMongoClient.calls.clear()
    spec = ConnectionSpec(
        kind="mongodb", host="127.0.0.1", options={"tls": "verify-ca", "tls_ca": ca_pem}
    )
    with get_connector(spec, policy).connect():
        ca_file = RecordingMongoClient.calls[0]["tlsCAFile"]
        with open(ca_file) as handle:
            assert handle.read() == ca_pem
        assert os.stat(ca_file).st_mode & 0o077 == 0
    assert not os.path.exists(ca_file)


def test_mongodb_auth_failure_with_fake(monkeypatch, policy):
    monkeypatch.setattr(MongoDBConnector, "client_class", AuthFailingMongoClient)
    result = attempt(policy, kind="mongodb", host="127.0.0.1", username="u", password=CANARY)
    assert_failed(result, "auth")
    assert "Authentication failed" in result.error


def test_mongodb_real_driver_closed_port(policy):
    result = attempt(
        policy, kind="mongodb", host="127.0.0.1", port=1, options={"connect_timeout": 1}
    )
    assert_failed(result, "refused")


def test_mongodb_verify_full_is_not_offered():
    with pytest.raises(ValueError, match="tls"):
        validate_options("mongodb", {"tls": "verify-full"})


# --- Elasticsearch (FAKE server on loopback) ----------------------------------------------


def test_elasticsearch_success_with_fake_server(policy):
    with FakeElasticsearch(username="elastic", password=CANARY) as server:
        result = attempt(
            policy,
            kind="elasticsearch",
            host="127.0.0.1",
            port=server.port,
            username="elastic",
            password=CANARY,
        )
    assert result.ok, result
    assert result.server_version == "8.13.4"
    assert server.requests[0]["path"] == "/"


def test_elasticsearch_wrong_password_with_fake_server(policy):
    with FakeElasticsearch(username="elastic", password="right") as server:
        result = attempt(
            policy,
            kind="elasticsearch",
            host="127.0.0.1",
            port=server.port,
            username="elastic",
            password=CANARY,
        )
    assert_failed(result, "auth")
    assert result.error.startswith("HTTP 401")


def test_elasticsearch_api_key_with_fake_server(policy):
    with FakeElasticsearch(api_key=CANARY) as server:
        spec = ConnectionSpec(
            kind="elasticsearch", host="127.0.0.1", port=server.port, options={"api_key": CANARY}
        )
        assert get_connector(spec, policy).test().ok
    assert CANARY not in repr(spec)


def test_elasticsearch_must_be_elasticsearch(policy):
    with FakeElasticsearch(product=False) as server:
        result = attempt(
            policy, kind="elasticsearch", host="127.0.0.1", port=server.port, username="elastic"
        )
    assert_failed(result, "other")
    assert "Elasticsearch" in result.error


def test_elasticsearch_real_client_closed_port(policy):
    assert_failed(attempt(policy, kind="elasticsearch", host="127.0.0.1", port=1), "refused")


@pytest.mark.filterwarnings("ignore:Connecting to .* verify_certs=False is insecure")
@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
@pytest.mark.parametrize(
    ("host", "tls", "with_ca", "kind"),
    [
        ("es.steward.test", "verify-full", True, ""),
        ("wrong.steward.test", "verify-full", True, "tls"),
        ("wrong.steward.test", "verify-ca", True, ""),
        ("es.steward.test", "verify-ca", False, "tls"),
        ("wrong.steward.test", "require", False, ""),
    ],
)
def test_elasticsearch_tls_modes_with_fake_server(fake_dns, tmp_path, host, tls, with_ca, kind):
    ca_pem, server_tls = make_tls(tmp_path, "es.steward.test")
    lookups = fake_dns(host, "127.0.0.1", REBOUND)
    options = {"tls": tls, **({"tls_ca": ca_pem} if with_ca else {})}
    with FakeElasticsearch(tls=server_tls) as server:
        spec = ConnectionSpec(
            kind="elasticsearch", host=host, port=server.port, username="elastic", options=options
        )
        result = get_connector(spec, NetworkPolicy(allow=("127.0.0.1",))).test()
    assert result.error_kind == kind, result
    assert lookups[host] == 1


@pytest.mark.parametrize(
    ("host", "verified"), [("es.steward.test", True), ("no.steward.test", False)]
)
def test_pinned_tls_context_checks_the_name_not_the_ip(fake_dns, tmp_path, host, verified):
    """The SSLContext MySQL and Oracle get verifies the source's name on a socket to its IP."""
    ca_pem, server_tls = make_tls(tmp_path, "es.steward.test")
    spec = ConnectionSpec(kind="mysql", host=host, options={"tls": "verify-full", "tls_ca": ca_pem})
    context = MySQLConnector(spec, NetworkPolicy()).ssl_context()
    with FakeElasticsearch(tls=server_tls) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        if verified:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_socket:
                assert tls_socket.version()
        else:
            with pytest.raises(ssl.SSLCertVerificationError), raw:
                context.wrap_socket(raw, server_hostname="127.0.0.1")


# --- secrets --------------------------------------------------------------------------------


def test_redact_replaces_raw_and_url_quoted_secrets():
    secret = "p@ss w/rd"
    text = f"a {secret} b p%40ss%20w%2Frd c p%40ss+w%2Frd d p%40ss%20w/rd"
    assert redact(text, [secret, "", None]) == "a ****** b ****** c ****** d ******"
    assert redact("nothing here", []) == "nothing here"


def test_spec_repr_masks_password_and_secret_options():
    spec = ConnectionSpec(
        kind="elasticsearch",
        host="es.example.com",
        username="elastic",
        password=CANARY,
        options={"api_key": CANARY, "tls": "verify-full"},
    )
    text = repr(spec)
    assert CANARY not in text and CANARY not in str(spec)
    assert "password='******'" in text
    assert "'api_key': '******'" in text
    assert "'tls': 'verify-full'" in text
    assert "password=''" in repr(ConnectionSpec(kind="sqlite", database="x.db"))
    assert "'******'" in repr(ConnectionSpec(kind="bogus", options={"token": CANARY}))


def test_connector_error_carries_kind_and_message():
    error = ConnectorError("timeout", "too slow")
    assert (error.kind, error.message, str(error)) == ("timeout", "too slow", "too slow")
    assert ConnectorError("weird", "x").kind == "other"


# --- options --------------------------------------------------------------------------------


def test_validate_options_returns_a_cleaned_copy():
    given = {"connect_timeout": 3, "statement_timeout": 2.5, "tls": "require", "tls_ca": None}
    cleaned = validate_options("postgresql", given)
    assert cleaned == {"connect_timeout": 3.0, "statement_timeout": 2.5, "tls": "require"}
    assert isinstance(cleaned["connect_timeout"], float)
    assert given["connect_timeout"] == 3 and "tls_ca" in given


@pytest.mark.parametrize(
    ("kind", "options", "key"),
    [
        ("postgresql", {"sslkey": "/etc/shadow"}, "sslkey"),
        ("mysql", {"init_command": "SET x=1"}, "init_command"),
        ("mongodb", {"api_key": "k"}, "api_key"),
        ("postgresql", {"connect_timeout": "5"}, "connect_timeout"),
        ("postgresql", {"connect_timeout": True}, "connect_timeout"),
        ("mongodb", {"direct_connection": False}, "direct_connection"),
        ("elasticsearch", {"api_key": 12}, "api_key"),
        ("postgresql", {"connect_timeout": 0}, "connect_timeout"),
        ("postgresql", {"connect_timeout": -1}, "connect_timeout"),
        ("postgresql", {"connect_timeout": 121}, "connect_timeout"),
        ("postgresql", {"connect_timeout": math.nan}, "connect_timeout"),
        ("mysql", {"statement_timeout": 3601}, "statement_timeout"),
        ("mysql", {"statement_timeout": math.inf}, "statement_timeout"),
        ("postgresql", {"tls": "prefer"}, "tls"),
        ("postgresql", {"tls_ca": "not a certificate"}, "tls_ca"),
        ("sqlite", {"tls": "require"}, "tls"),
    ],
)
def test_validate_options_rejects(kind, options, key):
    with pytest.raises(ValueError, match=key):
        validate_options(kind, options)


def test_validate_options_limits_are_inclusive():
    assert validate_options("mysql", {"connect_timeout": 120, "statement_timeout": 3600})


def test_secret_options_are_the_non_public_ones():
    assert KINDS["elasticsearch"].public_options == {
        "connect_timeout",
        "statement_timeout",
        "tls",
        "tls_ca",
    }
    assert "api_key" in KINDS["elasticsearch"].option_fields
    assert {"auth_source", "replica_set"} <= KINDS["mongodb"].public_options
    for cls in KINDS.values():
        assert cls.public_options <= set(cls.option_fields)


def test_unknown_kind():
    with pytest.raises(ConnectorError, match="unknown source kind 'x'") as caught:
        get_connector(ConnectionSpec(kind="x"), NetworkPolicy())
    assert caught.value.kind == "other"
    with pytest.raises(ValueError, match="unknown source kind"):
        validate_options("x", {})


def test_every_kind_is_registered():
    assert set(KINDS) == {"postgresql", "mysql", "oracle", "sqlite", "mongodb", "elasticsearch"}
    assert {cls.default_port for cls in KINDS.values()} == {5432, 3306, 1521, None, 27017, 9200}


# --- integration: real servers named by environment variables -----------------------------


def spec_from_url(kind, url, **options):
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if kind == "mongodb" and "authSource" in query:
        options["auth_source"] = query["authSource"]
    if kind == "elasticsearch" and parts.scheme == "https":
        options["tls"] = "require"
    return ConnectionSpec(
        kind=kind,
        host=parts.hostname or "",
        port=parts.port,
        database=parts.path.lstrip("/"),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        options=options,
    )


def run_integration(kind, variable):
    spec = spec_from_url(kind, os.environ[variable])
    result = get_connector(spec, NetworkPolicy(allow=(spec.host,), connect_timeout=10)).test()
    assert result.ok, result
    assert result.server_version


@pytest.mark.integration
@pytest.mark.skipif(
    not os.environ.get("MONGO_URL"), reason="set MONGO_URL=mongodb://user:pass@host:27017/db"
)
def test_mongodb_integration():
    run_integration("mongodb", "MONGO_URL")


@pytest.mark.integration
@pytest.mark.skipif(
    not os.environ.get("ELASTICSEARCH_URL"),
    reason="set ELASTICSEARCH_URL=http(s)://user:pass@host:9200",
)
def test_elasticsearch_integration():
    run_integration("elasticsearch", "ELASTICSEARCH_URL")


@pytest.mark.integration
@pytest.mark.skipif(
    not os.environ.get("ORACLE_DSN"), reason="set ORACLE_DSN=oracle://user:pass@host:1521/service"
)
def test_oracle_integration():
    run_integration("oracle", "ORACLE_DSN")


def test_every_kind_names_its_own_connector():
    assert sorted(KINDS) == sorted(DataSource.Kind.values)
    for kind in KINDS:
        assert KINDS[kind].kind == kind
    assert "db2" not in KINDS and KINDS.get("db2") is None


def test_a_new_process_loads_no_driver_until_a_source_of_its_kind_needs_it():
    """Django, every app and the URLs load without the MongoDB, Elasticsearch, Oracle and
    Neo4j drivers; asking for a kind's connector loads its driver."""
    drivers = ("pymongo", "elasticsearch", "oracledb", "neo4j")
    code = (
        "import sys, django; django.setup()\n"
        "from django.urls import get_resolver; get_resolver().url_patterns\n"
        f"print(sorted(m for m in {drivers!r} if m in sys.modules))\n"
        "from sources.connectors import KINDS; KINDS['mongodb']\n"
        f"print(sorted(m for m in {drivers!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "governance.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "['pymongo']"]
