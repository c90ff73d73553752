"""Secrets at rest: a MultiFernet key ring from ENCRYPTION_KEYS (newest first), kept apart
from SECRET_KEY so that rotating one never touches the other."""

import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

MASK = "******"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any key of the ring."""


@cache
def _ring(keys):
    try:
        fernets = [Fernet(key.encode()) for key in keys]
    except ValueError as exc:
        raise ImproperlyConfigured(
            "ENCRYPTION_KEYS must hold url-safe base64 32-byte Fernet keys"
        ) from exc
    return MultiFernet(fernets), fernets[0]


def ring():
    return _ring(tuple(settings.ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return ring()[0].encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return ring()[0].decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with the configured keys"
        ) from exc


def rotate(token: str) -> tuple[str, bool]:
    """Re-encrypt a token with the newest key. Returns (token, changed)."""
    multi, newest = ring()
    try:
        newest.decrypt(token.encode())
        return token, False
    except InvalidToken:
        pass
    try:
        return multi.rotate(token.encode()).decode(), True
    except InvalidToken as exc:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with the configured keys"
        ) from exc


class EncryptedTextField(models.TextField):
    """A text secret stored as a Fernet token; Python code sees the clear value."""

    def from_db_value(self, value, expression, connection):
        return self.decode(decrypt(value)) if value else self.decode("")

    def get_prep_value(self, value):
        return encrypt(self.encode(value))

    def decode(self, text):
        return text

    def encode(self, value):
        return value or ""


class EncryptedJSONField(EncryptedTextField):
    """A dict of secrets (e.g. the secret keys of a source's options), encrypted as one token."""

    def decode(self, text):
        return json.loads(text) if text else {}

    def encode(self, value):
        return json.dumps(value, sort_keys=True) if value else ""

    def to_python(self, value):
        return self.decode(value) if isinstance(value, str) else (value or {})


def encrypted_fields():
    """(model, field) for every encrypted field of every installed model."""
    from django.apps import apps

    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


def rotate_all(progress=None):
    """Re-encrypt every stored secret with the newest key, in one transaction.

    Reads and writes the raw column so that values are never decrypted into Python objects
    beyond the rotation itself. Returns counts and the rows that could not be decrypted.
    """
    from django.db import connection, transaction

    counts = {"re-encrypted": 0, "already current": 0, "failed": 0}
    failures = []
    quote = connection.ops.quote_name
    with transaction.atomic():
        for model, field in encrypted_fields():
            table, column, pk = model._meta.db_table, field.column, model._meta.pk.column
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {quote(pk)}, {quote(column)} FROM {quote(table)} "  # noqa: S608
                    f"WHERE {quote(column)} <> ''"
                )
                rows = cursor.fetchall()
            for row_id, token in rows:
                try:
                    new_token, changed = rotate(token)
                except SecretUnreadable:
                    counts["failed"] += 1
                    failures.append(f"{model._meta.label} #{row_id} {field.name}")
                    continue
                if changed:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            f"UPDATE {quote(table)} SET {quote(column)} = %s "  # noqa: S608
                            f"WHERE {quote(pk)} = %s",
                            [new_token, row_id],
                        )
                    counts["re-encrypted"] += 1
                else:
                    counts["already current"] += 1
                if progress:
                    progress()
    return counts, failures


def count_secrets():
    from django.db.models import Q

    return sum(
        model._base_manager.exclude(
            Q(**{field.name: ""}) | Q(**{f"{field.name}__isnull": True})
        ).count()
        for model, field in encrypted_fields()
    )
