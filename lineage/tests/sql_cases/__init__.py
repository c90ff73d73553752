"""A lineage test set: SQL statements with the table and column lineage they should give.

Each YAML file here holds `schemas` (column lists the cases may use to expand `SELECT *` and
place unqualified columns) and `cases`, each with a name, dialect, default_schema, optional
schema and target, the SQL, and the expected `tables` ({target: [sources]}) and `columns`
({target column: [source columns]}). Scoring compares sets of (source, target) pairs at each
level; a table feeding itself is not an edge and is left out of both sides.
"""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lineage.sql import SqlError, analyze, parse

HERE = Path(__file__).resolve().parent


@dataclass
class Case:
    name: str
    dialect: str
    default_schema: str
    sql: str
    tables: set
    columns: set
    schema: dict = field(default_factory=dict)
    target: str | None = None


def load_cases():
    cases = []
    for path in sorted(HERE.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        schemas = data.get("schemas") or {}
        for raw in data["cases"]:
            cases.append(
                Case(
                    name=raw["name"],
                    dialect=raw["dialect"],
                    default_schema=raw.get("default_schema") or "",
                    sql=raw["sql"],
                    tables=_pairs(raw.get("tables") or {}),
                    columns=_pairs(raw.get("columns") or {}),
                    schema=schemas.get(raw["schema"], {}) if raw.get("schema") else {},
                    target=raw.get("target"),
                )
            )
    return cases


def _pairs(mapping):
    return {(source, target) for target, sources in mapping.items() for source in sources or []}


def _table(column):
    return column.rpartition(".")[0]


def predict(case):
    """(table pairs, column pairs) the analyser finds for a case; SQL it cannot read
    finds nothing (and so counts against recall)."""
    tables, columns = set(), set()
    try:
        statements = parse(case.sql, case.dialect)
    except SqlError:
        return tables, columns
    for statement in statements:
        lineage = analyze(
            [statement], case.dialect, case.default_schema, case.schema, target=case.target
        )
        tables |= {(s, t) for t in lineage.targets for s in lineage.sources if s != t}
        columns |= {
            (s, target)
            for target, (sources, _) in lineage.columns.items()
            for s in sources
            if _table(s) != _table(target)
        }
    return tables, columns


def _prf(true_positive, predicted, expected):
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / expected if expected else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def score(cases=None):
    """Micro-averaged precision, recall and F1 per level, and the cases that missed."""
    cases = load_cases() if cases is None else cases
    totals = {"tables": [0, 0, 0], "columns": [0, 0, 0]}
    misses = []
    for case in cases:
        got_tables, got_columns = predict(case)
        expected_tables = {(s, t) for s, t in case.tables if s != t}
        expected_columns = {(s, t) for s, t in case.columns if _table(s) != _table(t)}
        for level, got, want in (
            ("tables", got_tables, expected_tables),
            ("columns", got_columns, expected_columns),
        ):
            totals[level][0] += len(got & want)
            totals[level][1] += len(got)
            totals[level][2] += len(want)
            if got != want:
                misses.append(
                    {
                        "case": case.name,
                        "level": level,
                        "extra": sorted(got - want),
                        "missing": sorted(want - got),
                    }
                )
    return {level: _prf(*counts) for level, counts in totals.items()}, misses
