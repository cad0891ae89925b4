"""Small SQL helpers that differ per engine but mean the same thing."""
from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import fast


def _insert(session: Session):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


@functools.lru_cache(maxsize=256)
def _insert_ignore_stmt(dialect: str, table: Any, conflict: tuple[str, ...]):
    # built once per table: values go in as parameters, so the compiled statement is reused
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict)).returning(table.c.id)


def insert_ignore(session: Session, model: Any, values: dict[str, Any], conflict: list[str]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING; the new row's id, or None when the row already existed."""
    session.flush()   # cheap when clean; pending ORM rows this one may refer to go first
    conn = session.connection()
    stmt = _insert_ignore_stmt(conn.dialect.name, model.__table__, tuple(conflict))
    return fast.execute(conn, stmt, values).scalar_one_or_none()


def insert_ignore_many(session: Session, model: Any, rows: list[dict[str, Any]], conflict: list[str]) -> list[int | None]:
    """`insert_ignore` of several rows (each naming the same columns) in one statement: the ids in
    the rows' order, None for a row that existed (or repeats an earlier row's key in `rows`)."""
    if len(rows) == 1:
        return [insert_ignore(session, model, rows[0], conflict)]
    session.flush()
    conn = session.connection()
    keys = tuple(rows[0])
    stmt = _insert_ignore_rows(conn.dialect.name, model.__table__, keys, len(rows), tuple(conflict))
    found = {tuple(row[1:]): row[0] for row in fast.execute(
        conn, stmt, {f"r{n}_{key}": row[key] for n, row in enumerate(rows) for key in keys})}
    # each new key to the first row naming it (the one the INSERT kept)
    return [found.pop(tuple(row[c] for c in conflict), None) for row in rows]


@functools.lru_cache(maxsize=64)
def _insert_ignore_rows(dialect: str, table: Any, keys: tuple[str, ...], count: int, conflict: tuple[str, ...]):
    # built once per shape, as `_insert_ignore_stmt`
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = [{key: bindparam(f"r{n}_{key}", type_=table.c[key].type) for key in keys} for n in range(count)]
    return insert(table).values(values).on_conflict_do_nothing(index_elements=list(conflict)).returning(
        table.c.id, *(table.c[c] for c in conflict))


def upsert(session: Session, model: Any, values: dict[str, Any], conflict: list[str], update: dict[str, Any]) -> None:
    stmt = _insert(session)(model.__table__).values(**values)
    session.execute(stmt.on_conflict_do_update(index_elements=conflict, set_=update))
