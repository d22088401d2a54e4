"""Write docs/schema.md: the ER diagram and column tables, generated from the models, never drawn by hand.

Run `make docs` after changing a model; tests/test_docs.py fails while the file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import CheckConstraint, Column, Table

from edi_storage.models import Base

TARGET = Path(__file__).with_name("schema.md")


def column_type(column: Column[object]) -> str:
    name = type(column.type).__name__
    return {"UTCDateTime": "datetime_utc", "MutableDict": "json", "MutableList": "json"}.get(
        name, name.lower()
    )


def foreign_keys(tables: list[Table]) -> list[str]:
    return [
        f"- `{t.name}.{fk.parent.name}` -> `{fk.column.table.name}.{fk.column.name}`, "
        f"ON DELETE {fk.ondelete or 'NO ACTION'}"
        for t in tables
        for fk in sorted(t.foreign_keys, key=lambda f: f.parent.name)
    ]


def mermaid(tables: list[Table]) -> list[str]:
    lines = ["```mermaid", "erDiagram"]
    for table in tables:
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            lines.append(f'    {fk.column.table.name} ||--o{{ {table.name} : "{fk.parent.name}"')
    for table in tables:
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            key = " PK" if column.primary_key else (" FK" if column.foreign_keys else "")
            lines.append(f"        {column_type(column)} {column.name}{key}")
        lines.append("    }")
    lines.append("```")
    return lines


def server_default_sql(column: Column[object]) -> str:
    if column.server_default is None:
        return ""
    arg = column.server_default.arg  # type: ignore[attr-defined]
    if isinstance(arg, str):
        return arg
    return str(arg.compile(compile_kwargs={"literal_binds": True}))


def column_rows(table: Table) -> list[str]:
    rows = ["| column | type | null | default |", "|---|---|---|---|"]
    for column in table.columns:
        default_text = server_default_sql(column)
        nullable = "yes" if column.nullable else "no"
        rows.append(f"| `{column.name}` | {column_type(column)} | {nullable} | {default_text} |")
    return rows


def render() -> str:
    tables = list(Base.metadata.sorted_tables)
    out = [
        "# Schema",
        "",
        "Generated from the models by `make docs` (docs/generate_schema.py); do not edit by hand.",
        "Every constraint and index is named by the naming convention in `edi_storage/models/base.py`.",
        "JSON columns are JSONB on PostgreSQL; datetimes are aware UTC. Foreign keys:",
        "",
        *foreign_keys(tables),
        "",
        *mermaid(tables),
    ]
    for table in tables:
        out += ["", f"## `{table.name}`", "", *column_rows(table)]
        checks = sorted(
            (c for c in table.constraints if isinstance(c, CheckConstraint)), key=lambda c: str(c.name)
        )
        if checks:
            out += ["", "Checks:", ""]
            out += [f"- `{c.name}`: `{c.sqltext}`" for c in checks]
        if table.indexes:
            out += ["", "Indexes:", ""]
            out += [
                f"- `{i.name}` on ({', '.join(c.name for c in i.columns)})"
                for i in sorted(table.indexes, key=lambda i: str(i.name))
            ]
    return "\n".join(out) + "\n"


def main() -> int:
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
