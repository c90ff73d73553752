"""A source's cron schedule and name live on the source (sources cannot import the catalog);
the catalog keeps the beat entry that runs its scans, and its tables' names, in step."""

import json

from django.db.models import Case, CharField, Value, When
from django.db.models.functions import Concat
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from sources.models import DataSource, cron_fields

from .models import Table

# Sent inside a scan's transaction once the catalog is applied, with the new views (read
# definition or not) and the views whose definition changed; lineage infers edges from them.
# A receiver may return a dict of counts, which the scan adds to its own.
views_changed = Signal()
# Sent the same way with the tables the scan catalogued for the first time (fields included);
# lineage gives them the lineage OpenLineage recorded for them before the scan.
tables_added = Signal()


def task_name(source):
    return f"scan source #{source.pk}"


@receiver(post_save, sender=DataSource)
def _sync_schedule(sender, instance, raw=False, **kwargs):
    if raw:
        return
    if not instance.scan_schedule:
        PeriodicTask.objects.filter(name=task_name(instance)).delete()
        return
    minute, hour, day, month, weekday = cron_fields(instance.scan_schedule)
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day,
        month_of_year=month,
        day_of_week=weekday,
        timezone="UTC",
    )
    PeriodicTask.objects.update_or_create(
        name=task_name(instance),
        defaults={
            "task": "catalog.scheduled_scan",
            "crontab": crontab,
            "interval": None,
            "kwargs": json.dumps({"source_id": instance.pk}),
            "enabled": instance.is_active,
        },
    )


@receiver(post_delete, sender=DataSource)
def _drop_schedule(sender, instance, **kwargs):
    PeriodicTask.objects.filter(name=task_name(instance)).delete()


@receiver(post_save, sender=DataSource)
def _rename_tables(sender, instance, raw=False, update_fields=None, **kwargs):
    """A table's fully qualified name starts with its source's name (Table.make_fqn), so a
    renamed source renames its tables, in one statement. Otherwise a new source given the
    old name could not catalog a table of the same schema and name."""
    if raw or (update_fields is not None and "name" not in update_fields):
        return
    schema = Case(When(schema="", then=Value("")), default=Concat("schema", Value(".")))
    fqn = Concat(Value(f"{instance.name}."), schema, "name", output_field=CharField())
    Table.objects.filter(source=instance).exclude(fqn=fqn).update(fqn=fqn)
