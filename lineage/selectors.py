"""Lineage evidence as a reader may see it.

An edge the reader may view can carry evidence whose text (a SQL statement, a view
definition) names other tables, which the reader may not be allowed to see. Each piece of
evidence records the tables its text names (LineageEvidence.tables, written by
lineage.services.record_edges); redact_evidence() replaces the names of those the reader
may not view, and drops the SQL hash that would let a guessed name be checked against it.
"""

import re

from catalog.models import Table
from governance.permissions import perm_name

from .models import LineageEvidence

HIDDEN = "[hidden table]"
# A name as SQL writes it: bare, or quoted in any dialect's way.
_QUOTED = r'"[^"]*"|`[^`]*`|\[[^\]]*\]'
_QUALIFIER = rf"(?:(?:{_QUOTED}|[\w$]+)\s*\.\s*)*"


def redact_evidence(user, evidence):
    """Rewrite the evidence rows, in memory only, for `user`: every name of a table the
    text names and the user may not view becomes [hidden table] (with its schema and
    database qualifiers, in comments and literals too), and the SQL hash goes (it is the
    key of SQL evidence, which goes too). Each row is rewritten once per reader; the
    serializers, the admin and the table page all call this before showing evidence."""
    rows = [ev for ev in evidence if getattr(ev, "read_by", None) != user.pk]
    named = {pk for ev in rows for pk, _ in ev.tables}
    if user.is_superuser or user.has_perm(perm_name(Table, "view")) or not named:
        visible = named
    else:
        visible = set(
            Table.objects.restrict(user, "view").filter(pk__in=named).values_list("pk", flat=True)
        )
    for ev in rows:
        ev.read_by = user.pk
        hidden = {name for pk, name in ev.tables if pk not in visible}
        if not hidden:
            continue
        ev.snippet = redact(ev.snippet, hidden)
        ev.sql_hash = ""
        if ev.kind == LineageEvidence.Kind.SQL:
            ev.key = ""
    return evidence


def redact(text, names):
    """`text` with every reference to a table named in `names` replaced by HIDDEN."""
    for name in sorted(names, key=len, reverse=True):
        bare = re.escape(name)
        written = rf'(?:"{bare}"|`{bare}`|\[{bare}\]|(?<![\w$]){bare}(?![\w$]))'
        text = re.sub(_QUALIFIER + written, HIDDEN, text, flags=re.IGNORECASE)
    return text
