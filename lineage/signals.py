"""Deletions reach the Neo4j projection after the commit: an edge deleted (directly or with
its tables) loses its relationships, a deleted table its node; a renamed source's tables
get their new names there too. Writes through lineage.services schedule their own sync. A
namespace newly mapped to a source brings the external tables made under it into the
source."""

from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from catalog.models import Table
from sources.models import DataSource

from . import projection
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


@receiver(post_save, sender=DataSource, dispatch_uid="lineage_source_renamed_neo4j")
def source_saved(sender, instance, raw=False, update_fields=None, **kwargs):
    """The projection's table nodes carry fqns, which start with the source's name: the
    edges of a saved source's tables are synced again (which rewrites their end nodes)."""
    if raw or (update_fields is not None and "name" not in update_fields):
        return
    if projection.enabled():
        touching = Q(upstream__source=instance) | Q(downstream__source=instance)
        edges = LineageEdge.objects.filter(touching).values_list("pk", flat=True)
        neo4j_sync_on_commit(edge_ids=edges)
