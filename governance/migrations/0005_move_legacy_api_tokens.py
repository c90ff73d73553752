"""Tokens of rest_framework.authtoken (kept in clear in authtoken_token) move into
ApiToken as digests, so that clients keep working with the keys they hold; each expires
API_TOKEN_EXPIRY_DAYS from now. Then the plaintext table goes."""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

LEGACY_TABLE = "authtoken_token"


def move_legacy_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("governance", "ApiToken")
    quote = schema_editor.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('key')}, {quote('user_id')}, {quote('created')} "  # noqa: S608
            f"FROM {quote(LEGACY_TABLE)}"
        )
        rows = cursor.fetchall()
    expires_at = timezone.now() + timedelta(days=settings.API_TOKEN_EXPIRY_DAYS)
    ApiToken.objects.bulk_create(
        ApiToken(
            user_id=user_id,
            name="migrated",
            prefix=key[:12],
            digest=hashlib.sha256(key.encode()).hexdigest(),
            created_at=created,
            expires_at=expires_at,
        )
        for key, user_id, created in rows
    )
    schema_editor.execute(f"DROP TABLE {quote(LEGACY_TABLE)}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):
    dependencies = [("governance", "0004_api_token")]

    operations = [migrations.RunPython(move_legacy_tokens, migrations.RunPython.noop)]
