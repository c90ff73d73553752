"""Whether the optional Neo4j projection is on (NEO4J_BOLT_URL), answered without importing
lineage.neo4j: the Neo4j driver it loads adds some 30 MB to every process, and most
installations never set the URL."""

import os

from django.conf import settings


def bolt_url():
    return getattr(settings, "NEO4J_BOLT_URL", "") or os.environ.get("NEO4J_BOLT_URL", "")


def enabled():
    return bool(bolt_url())
