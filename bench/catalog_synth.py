#!/usr/bin/env python3
"""Build a synthetic PostgreSQL catalog to introspect: database steward_synth_<N> (dropped first)
with N tables of 10-40 columns of varied types spread over a few schemas, a primary key on each
(composite on every 20th), a foreign key to an earlier table on about half, comments on every
table and on some columns, and about N/20 views that join two related tables.

    .venv/bin/python bench/catalog_synth.py 2000 [--schemas 4] [--host 127.0.0.1]

The DDL is generated up front as a few large scripts and sent in as few transactions as the
server's lock table allows (each new table and index holds a lock until commit).
"""

import argparse
import random
import sys
import time

import psycopg
from psycopg import sql

SCHEMAS = ("sales", "billing", "inventory", "people", "ops", "audit", "web", "finance")
TYPES = (
    ("integer", ("0", None)),
    ("bigint", (None,)),
    ("smallint", ("1", None)),
    ("numeric(12,2)", ("0.00", None)),
    ("real", (None,)),
    ("double precision", (None,)),
    ("boolean", ("false", "true", None)),
    ("text", ("''", None)),
    ("varchar(64)", (None,)),
    ("varchar(255)", ("'unknown'", None)),
    ("char(2)", (None,)),
    ("date", ("CURRENT_DATE", None)),
    ("timestamp", (None,)),
    ("timestamptz", ("now()", None)),
    ("time", (None,)),
    ("interval", (None,)),
    ("bytea", (None,)),
    ("jsonb", ("'{}'::jsonb", None)),
    ("uuid", ("gen_random_uuid()", None)),
    ("integer[]", (None,)),
    ("text[]", (None,)),
    ("inet", (None,)),
)
WORDS = (
    "name", "email", "phone", "city", "street", "zip", "country", "status", "amount", "price",
    "total", "note", "code", "kind", "created", "updated", "birth", "score", "level", "rank",
    "title", "label", "region", "owner", "source", "channel",
)  # fmt: skip
# New tables hold ~4 locks each until commit; the default lock table fits only ~6,400.
TABLES_PER_TRANSACTION = 1000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", type=int, help="number of tables (N)")
    parser.add_argument("--schemas", type=int, default=4, help=f"at most {len(SCHEMAS)}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    args = parser.parse_args()
    if args.tables < 1 or not 1 <= args.schemas <= len(SCHEMAS):
        parser.error("tables must be positive and schemas between 1 and 8")
    return args


def database_name(tables: int) -> str:
    return f"steward_synth_{tables}"


def ident(*parts: str) -> str:
    return ".".join(f'"{part}"' for part in parts)


def generate(tables: int, schemas: int, seed: int | None = None):
    """DDL scripts (one per transaction) and the counts of what they create."""
    rnd = random.Random(tables if seed is None else seed)
    names = [(SCHEMAS[i % schemas], f"t{i:05d}") for i in range(tables)]
    single_pk = []
    fk_pairs = []
    batches, current = [], []
    counts = {"tables": tables, "columns": 0, "foreign_keys": 0, "views": 0, "comments": 0}
    for index, (schema, name) in enumerate(names):
        composite = index % 20 == 19
        columns = ["id bigint NOT NULL"] + (["part integer NOT NULL"] if composite else [])
        comments = []
        target = None
        if single_pk and rnd.random() < 0.5:
            target = rnd.choice(single_pk)
            columns.append(f"ref_id bigint REFERENCES {ident(*names[target])} (id)")
            fk_pairs.append((target, index))
            counts["foreign_keys"] += 1
        for position in range(len(columns), rnd.randint(10, 40)):
            type_name, defaults = rnd.choice(TYPES)
            column = f"{rnd.choice(WORDS)}_{position}"
            default = rnd.choice(defaults)
            null = " NOT NULL" if default and rnd.random() < 0.3 else ""
            columns.append(f"{column} {type_name}{f' DEFAULT {default}' if default else ''}{null}")
            if rnd.random() < 0.15:
                comments.append(
                    f"COMMENT ON COLUMN {ident(schema, name)}.{column} IS "
                    f"'The {column.split('_')[0]} of the {name} row';"
                )
        key = "id, part" if composite else "id"
        columns.append(f"PRIMARY KEY ({key})")
        counts["columns"] += len(columns) - 1
        counts["comments"] += len(comments) + 1
        current.append(f"CREATE TABLE {ident(schema, name)} (\n  " + ",\n  ".join(columns) + ");")
        current.append(f"COMMENT ON TABLE {ident(schema, name)} IS 'Synthetic table {name}';")
        current.extend(comments)
        if not composite:
            single_pk.append(index)
        if (index + 1) % TABLES_PER_TRANSACTION == 0:
            batches.append(current)
            current = []
    views = []
    for number, (parent, child) in enumerate(
        rnd.sample(fk_pairs, min(len(fk_pairs), tables // 20))
    ):
        schema = names[child][0]
        view = ident(schema, f"v{number:05d}_{names[child][1]}_{names[parent][1]}")
        child_table, parent_table = ident(*names[child]), ident(*names[parent])
        views.append(
            f"CREATE VIEW {view} AS SELECT c.id, c.ref_id, p.id AS parent_id "  # noqa: S608 - generated names
            f"FROM {child_table} c JOIN {parent_table} p ON p.id = c.ref_id;"
        )
    counts["views"] = len(views)
    current.extend(views)
    batches.append(current)
    head = [f"CREATE SCHEMA {ident(schema)};" for schema in SCHEMAS[:schemas]]
    batches[0] = head + batches[0]
    return ["\n".join(batch) for batch in batches], counts


def build(tables: int, schemas: int = 4, host="127.0.0.1", port=5432, user="postgres") -> dict:
    name = database_name(tables)
    params = {"host": host, "port": port, "user": user, "connect_timeout": 5}
    started = time.perf_counter()
    scripts, counts = generate(tables, schemas)
    generated = time.perf_counter()
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(dbname=name, **params) as conn:
        conn.execute("SET synchronous_commit = off")
        for script in scripts:
            conn.execute(script.encode())
            conn.commit()
    done = time.perf_counter()
    return {
        "database": name,
        **counts,
        "transactions": len(scripts),
        "script_bytes": sum(len(s) for s in scripts),
        "generate_seconds": round(generated - started, 2),
        "load_seconds": round(done - generated, 2),
    }


def main():
    args = parse_args()
    print(f"Building {database_name(args.tables)} ...", flush=True)
    summary = build(args.tables, args.schemas, args.host, args.port, args.user)
    for key, value in summary.items():
        print(f"  {key:18} {value}")


if __name__ == "__main__":
    sys.exit(main())
