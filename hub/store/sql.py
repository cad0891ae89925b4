"""Small SQL helpers that differ per engine but mean the same thing."""
from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


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
    return conn.execute(stmt, values).scalar_one_or_none()


def upsert(session: Session, model: Any, values: dict[str, Any], conflict: list[str], update: dict[str, Any]) -> None:
    stmt = _insert(session)(model.__table__).values(**values)
    session.execute(stmt.on_conflict_do_update(index_elements=conflict, set_=update))


class Prepared:
    """A Core statement compiled once for one dialect with positional parameters, run on the DBAPI
    cursor of a Connection (in its transaction): for statements run on every request, SQLAlchemy's
    per-execution work (cache key, parameter construction and processing, result wrapping) costs
    more than the database's own. The values each parameter needs are converted as SQLAlchemy would
    (its types' bind processors); fixed values (literals) are taken from the statement. A value the
    caller does not give, where the statement has none, is a KeyError (no column defaults here)."""

    def __init__(self, statement: Any, dialect: Any):
        compiled = statement.compile(dialect=dialect)
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name}: not a positional parameter style")
        self.sql = compiled.string
        binds = {name: bind for name, bind in compiled.binds.items()}
        self._order = []
        for name in compiled.positiontup:
            bind = binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            fixed = None if bind.required or bind.value is None else bind.value
            self._order.append((name, process, fixed if process is None or fixed is None else process(fixed)))

    def first(self, conn: Any, params: dict[str, Any]) -> tuple | None:
        """Run with `params` in `conn`'s transaction; the first row (RETURNING), or None."""
        values = []
        for name, process, fixed in self._order:
            if fixed is not None:
                values.append(fixed)
            else:
                value = params[name]
                values.append(value if process is None or value is None else process(value))
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.sql, values)
            return cursor.fetchone()
        finally:
            cursor.close()
