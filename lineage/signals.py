"""Deletions reach the Neo4j projection after the commit: an edge deleted (directly or with
its tables) loses its relationships, a deleted table its node. Writes through
lineage.services schedule their own sync. A namespace newly mapped to a source brings the
external tables made under it into the source."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from catalog.models import Table

from .models import LineageEdge, LineageNamespace
from .openlineage import adopt_external_tables
from .tasks import neo4j_sync_on_commit


@receiver(post_delete, sender=LineageEdge, dispatch_uid="lineage_edge_deleted_neo4j")
def edge_deleted(sender, instance, **kwargs):
    neo4j_sync_on_commit(edge_ids=[instance.pk])


@receiver(post_delete, sender=Table, dispatch_uid="lineage_table_deleted_neo4j")
def table_deleted(sender, instance, **kwargs):
    neo4j_sync_on_commit(table_ids=[instance.pk])


@receiver(post_save, sender=LineageNamespace, dispatch_uid="lineage_namespace_adopts")
def namespace_mapped(sender, instance, raw=False, **kwargs):
    if not raw:
        adopt_external_tables(sender, source=instance.source)
