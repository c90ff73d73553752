import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from governance import roles
from governance.services import grant
from sources.connectors import get_connector
from sources.demo import build_shop_database
from sources.models import DataSource
from sources.services import datasource_test_connection, network_policy

DEMO_FILE = "demo_shop.sqlite3"
LOCAL_SERVERS = [
    {
        "name": "Local PostgreSQL",
        "kind": "postgresql",
        "host": "127.0.0.1",
        "port": 5432,
        "database": "postgres",
        "username": "postgres",
    },
    {
        "name": "Local MariaDB",
        "kind": "mysql",
        "host": "127.0.0.1",
        "port": 3306,
        "database": "test",
        "username": "root",
    },
]


def _password_file(name):
    """A demo login's password, generated once into var/ and kept there (mode 600)."""
    path = Path(settings.VAR_DIR) / f"{name}_password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(12))
    return path.read_text().strip()


class Command(BaseCommand):
    help = "Load the demo: a shop database as a source, local servers that answer, and logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-local-servers",
            action="store_true",
            help="Do not register the local PostgreSQL and MariaDB.",
        )

    def handle(self, *args, **options):
        shop = Path(settings.SOURCE_SQLITE_DIR) / DEMO_FILE
        if not shop.exists():
            counts = build_shop_database(shop)
            self.stdout.write(f"built {shop}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        users = self._users()
        with transaction.atomic():
            demo, _ = DataSource.objects.update_or_create(
                name="Demo shop",
                defaults={
                    "kind": "sqlite",
                    "database": DEMO_FILE,
                    "environment": "dev",
                    "owner": users["steward"],
                    "scan_sample_values": True,
                    "description": "Sample webshop: customers, orders, payments.",
                },
            )
            grant(demo, users["steward"], "steward")
            grant(demo, users["viewer"], "viewer")
        self._report(demo)
        if not options["no_local_servers"]:
            for server in LOCAL_SERVERS:
                self._local_server(server, users)
        password = _password_file("admin")
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin login: admin / {password}   (also: steward / {_password_file('steward')},"
                f" viewer / {_password_file('viewer')})"
            )
        )

    def _users(self):
        User = get_user_model()
        users = {}
        for name, group, superuser in (
            ("admin", roles.ADMIN, True),
            ("steward", roles.STEWARD, False),
            ("viewer", roles.VIEWER, False),
        ):
            user, created = User.objects.get_or_create(
                username=name,
                defaults={
                    "is_staff": True,
                    "is_superuser": superuser,
                    "email": f"{name}@example.com",
                },
            )
            if created:
                user.set_password(_password_file(name))
                user.save()
            user.groups.add(Group.objects.get(name=group))
            users[name] = user
        return users

    def _local_server(self, server, users):
        """Register a local server once, and only if it answers."""
        source = DataSource.objects.filter(name=server["name"]).first()
        if source is None:
            candidate = DataSource(**server, environment="dev", owner=users["steward"])
            result = get_connector(candidate.connection_spec(), network_policy()).test()
            if not result.ok:
                self.stdout.write(f"{server['name']}: not registered ({result.error})")
                return
            with transaction.atomic():
                candidate.save()
                grant(candidate, users["steward"], "steward")
            source = candidate
        self._report(source)

    def _report(self, source):
        result = datasource_test_connection(source=source)
        state = (
            f"ok ({result.server_version})" if result.ok else f"{result.error_kind}: {result.error}"
        )
        self.stdout.write(f"source {source.name!r}: {state}")
