"""Small SQL helpers that differ per engine but mean the same thing."""
from __future__ import annotations

import functools
from typing import Any

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


def upsert(session: Session, model: Any, values: dict[str, Any], conflict: list[str], update: dict[str, Any]) -> None:
    stmt = _insert(session)(model.__table__).values(**values)
    session.execute(stmt.on_conflict_do_update(index_elements=conflict, set_=update))
