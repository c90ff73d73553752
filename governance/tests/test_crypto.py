import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from governance import crypto
from sources.models import DataSource


def raw_password(source):
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM sources_datasource WHERE id = %s", [source.pk])
        return cursor.fetchone()[0]


def test_secrets_are_encrypted_at_rest(db):
    source = DataSource.objects.create(
        name="s",
        kind="postgresql",
        host="h",
        password="canary-8d1f",
        secret_options={"api_key": "k-77"},
    )
    stored = raw_password(source)
    assert "canary-8d1f" not in stored and stored.startswith("gAAAA")
    fresh = DataSource.objects.get(pk=source.pk)
    assert fresh.password == "canary-8d1f"
    assert fresh.secret_options == {"api_key": "k-77"}


def test_key_rotation_round_trip(db, settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    sources = [
        DataSource.objects.create(name=f"s{i}", kind="postgresql", host="h", password=f"pw-{i}")
        for i in range(3)
    ]
    DataSource.objects.create(name="no secret", kind="postgresql", host="h")
    settings.ENCRYPTION_KEYS = [new, old]
    call_command("rotate_keys")
    out = capsys.readouterr().out
    assert "re-encrypted: 3" in out and "already current: 0" in out and "failed: 0" in out
    settings.ENCRYPTION_KEYS = [new]  # the old key is gone
    assert [DataSource.objects.get(pk=s.pk).password for s in sources] == ["pw-0", "pw-1", "pw-2"]
    call_command("rotate_keys")
    assert "re-encrypted: 0" in capsys.readouterr().out


def test_rotation_reports_secrets_no_key_can_read(db, settings, capsys):
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    DataSource.objects.create(name="lost", kind="postgresql", host="h", password="pw")
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(Exception, match="could not be decrypted"):
        call_command("rotate_keys")
    assert "failed: 1" in capsys.readouterr().out
    with pytest.raises(crypto.SecretUnreadable):
        DataSource.objects.get(name="lost")
