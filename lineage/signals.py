"""Deletions reach the Neo4j projection after the commit: an edge deleted (directly or with
its tables) loses its relationships, a deleted table its node. Writes through
lineage.services schedule their own sync."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from catalog.models import Table

from .models import LineageEdge
from .tasks import neo4j_sync_on_commit


@receiver(post_delete, sender=LineageEdge, dispatch_uid="lineage_edge_deleted_neo4j")
def edge_deleted(sender, instance, **kwargs):
    neo4j_sync_on_commit(edge_ids=[instance.pk])


@receiver(post_delete, sender=Table, dispatch_uid="lineage_table_deleted_neo4j")
def table_deleted(sender, instance, **kwargs):
    neo4j_sync_on_commit(table_ids=[instance.pk])
