"""PostgreSQL COPY for the enterprise import: the psycopg connection, ids drawn from a sequence, rows COPYed in."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, ColumnDefault
from sqlalchemy import Table as SqlTable
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    import psycopg

# A row of a table as column name → value.
_Row = dict[str, Any]


def copy_connection(session: Session) -> psycopg.Connection[Any] | None:
    """The psycopg connection under the session's transaction when the database is PostgreSQL, else None."""
    connection = session.connection()
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        return None
    return connection.connection.driver_connection


def allocate_ids(conn: psycopg.Connection[Any], table: SqlTable, count: int) -> list[int]:
    """`count` fresh primary keys from the table's id sequence (PostgreSQL)."""
    with conn.cursor() as cur:
        cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", (table.name, count))
        return [row[0] for row in cur.fetchall()]


def _copy_value(column: Column[Any], value: Any) -> Any:
    if value is not None and isinstance(column.type, JSON):
        return json.dumps(value, ensure_ascii=False)
    return value


def copy_rows(conn: psycopg.Connection[Any], table: SqlTable, rows: list[_Row]) -> None:
    """Write rows with COPY … FROM STDIN (PostgreSQL): many times faster than INSERT statements for new rows.

    Columns a row leaves out get their Python-side default, as an INSERT statement would give them.
    """
    columns = [c for c in table.columns if any(c.name in row for row in rows) or c.default is not None]
    defaults: dict[str, Any] = {}
    for c in columns:
        if isinstance(c.default, ColumnDefault) and c.default.is_scalar:
            defaults[c.name] = c.default.arg
        elif isinstance(c.default, ColumnDefault) and c.default.is_callable:
            defaults[c.name] = c.default.arg(None)
    names = ", ".join(f'"{c.name}"' for c in columns)
    with conn.cursor() as cur:
        with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(
                    [_copy_value(c, row[c.name] if c.name in row else defaults.get(c.name)) for c in columns]
                )
