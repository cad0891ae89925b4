"""Hot Core statements run on the DBAPI cursor of a Connection, in its transaction.

A worker spends about half its CPU in SQLAlchemy's own per-execution work (cache key, execution
context, parameter and result processing, result metadata) for statements that never change:
`execute(conn, statement, params)` compiles a Core statement once per dialect and set of parameter
names, then does per call only what SQLAlchemy's execution would do to the values: bind processors,
Python-side column defaults (`default=`, `onupdate=`), result processors, and the same wrapped
DBAPI errors (with disconnect handling). Rows are named tuples (`row.id`, `row[0]`, `row._mapping`).

Whenever anything watches statements (an engine `before/after_(cursor_)execute` listener, SQL
echo), and for statements it does not handle (expanding IN lists, SQL-side defaults, escaped
names), it hands over to `conn.execute`, so statement counters and logs see everything. Both paths
run the very same SQL text (tests/store/test_fast.py compares them).

`execute_together` (PostgreSQL) sends several writes and a last statement as one statement, the
writes as data-modifying CTEs: a job's completion carries the job's last writes (hub/store/db.py's
`defer_write`), one round trip where each took one."""
from __future__ import annotations

import collections
import keyword
import re
import threading
from typing import Any, Iterator, Sequence

from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

_CACHE: dict[tuple, "_Compiled | None"] = {}
_LOCK = threading.Lock()


class _Compiled:
    __slots__ = ("sql", "positional", "names", "binds", "returns_rows", "row", "processors", "statement", "by_name")

    def __init__(self, statement: Any, dialect: Any, keys: tuple[str, ...], many: bool = False):
        self.statement = statement      # kept alive: the cache is keyed by its id
        # as SQLAlchemy compiles it: an INSERT run once gets RETURNING its key, an executemany not
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None,
                                     for_executemany=many)
        if (getattr(compiled, "escaped_bind_names", None) or compiled.literal_execute_params
                or compiled.post_compile_params or any(b.expanding for b in compiled.binds.values())):
            raise _Unsupported("parameters rendered per call")
        self.sql = compiled.string
        self.positional = compiled.positiontup is not None
        self.names = names = compiled.positiontup if self.positional else list(compiled.binds)
        defaults = {}
        for column in compiled.insert_prefetch:
            defaults[column.key] = _python_default(column.default)
        for column in compiled.update_prefetch:
            defaults[column.key] = _python_default(column.onupdate)
        self.binds = []
        for name in names:
            bind = compiled.binds[name]
            process = bind.type._cached_bind_processor(dialect)
            if name in defaults:
                source = ("default", defaults[name])
            elif name in keys:
                source = ("param", None)
            elif not bind.required and bind.callable is None:
                value = bind.value               # a literal of the statement (values(status="done"))
                source = ("fixed", process(value) if process is not None else value)
            else:
                raise _Unsupported(f"parameter {name} has no value")
            self.binds.append((name, process, source))
        columns = compiled._result_columns
        # whether to fetch: known for built statements; text asks the cursor (reading its description
        # builds column objects: only text pays for that)
        textual = isinstance(statement, (TextClause, TextualSelect))
        self.returns_rows = bool(columns) or (None if textual else False)
        processors = [c[3]._cached_result_processor(dialect, None) for c in columns]
        if textual:
            # text: SQLAlchemy matches its typed columns by name; the rest are named by the database
            self.by_name = {c[0]: p for c, p in zip(columns, processors)}
            self.row = self.processors = None
        else:
            self.by_name = None
            self.row, self.processors = _row_class([c[0] for c in columns]), processors if any(processors) else None

    def values(self, params: dict[str, Any]) -> Any:
        out = []
        for name, process, (kind, value) in self.binds:
            if kind == "fixed":
                out.append(value)
                continue
            value = params[name] if kind == "param" else value()
            out.append(process(value) if process is not None else value)
        return out if self.positional else dict(zip(self.names, out))

    def rows(self, fetched: list[tuple], cursor: Any) -> list[tuple]:
        if not fetched:
            return []
        row, procs = self.row, self.processors
        if row is None:     # text: the same SQL always gives the same columns, so this is done once
            names = [d[0] for d in cursor.description]
            procs = [self.by_name.get(n) for n in names]
            procs = procs if any(procs) else None
            row = _row_class(names)
            self.processors, self.row = procs, row
        make = row._make
        if procs is None:
            return [make(r) for r in fetched]
        return [make([v if p is None else p(v) for p, v in zip(procs, r)]) for r in fetched]


class _Unsupported(Exception):
    pass


def _python_default(default: Any):
    """A zero-argument function giving the column default's value, as SQLAlchemy's prefetch would."""
    if default is None:
        return lambda: None
    if getattr(default, "is_scalar", False):
        value = default.arg
        return lambda: value
    if getattr(default, "is_callable", False):
        fn = default.arg               # SQLAlchemy wrapped it to take the execution context
        return lambda: fn(None)
    raise _Unsupported("a SQL-side default")


_ROW_CLASSES: dict[tuple[str, ...], type] = {}


def _row_class(names: list[str]) -> type:
    fields = tuple(n if n.isidentifier() and not keyword.iskeyword(n) and not n.startswith("_") else f"f{i}"
                   for i, n in enumerate(names))
    if len(set(fields)) != len(fields):   # SQLAlchemy's row would call such a name ambiguous
        fields = tuple(f if fields.count(f) == 1 else f"{f}_{i}" for i, f in enumerate(fields))
    found = _ROW_CLASSES.get(fields)
    if found is None:
        base = collections.namedtuple("Row", fields)
        found = type("Row", (base,), {"__slots__": (), "_mapping": property(lambda self: dict(zip(self._fields, self)))})
        _ROW_CLASSES[fields] = found
    return found


class Result:
    """The part of SQLAlchemy's CursorResult the hub's hot path uses."""
    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[tuple]:
        return iter(self._rows)

    def all(self) -> list[tuple]:
        return list(self._rows)

    def first(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def one(self) -> tuple:
        if len(self._rows) != 1:
            from sqlalchemy.exc import MultipleResultsFound, NoResultFound
            raise (NoResultFound if not self._rows else MultipleResultsFound)(
                f"{len(self._rows)} rows where exactly one was required")
        return self._rows[0]

    def one_or_none(self) -> tuple | None:
        return self.one() if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]


def _watched(conn: Any) -> bool:
    if conn._echo:
        return True
    dispatch = conn.engine.dispatch
    return bool(dispatch.before_execute or dispatch.after_execute or dispatch.before_cursor_execute
                or dispatch.after_cursor_execute or conn.dispatch.before_cursor_execute)


def _compiled(statement: Any, dialect: Any, keys: tuple[str, ...], many: bool) -> _Compiled | None:
    key = (id(statement), dialect.name, keys, many)
    try:
        return _CACHE[key]
    except KeyError:
        pass
    try:
        found = _Compiled(statement, dialect, keys, many)
    except _Unsupported:
        found = None
    with _LOCK:
        if len(_CACHE) > 2048:      # statements built per call would grow it without bound
            _CACHE.clear()
        # a None still pins the statement, so its id is not reused by another one while cached
        _CACHE[key] = found if found is not None else _Pinned(statement)
    return found


class _Pinned:
    """An unsupported statement's cache entry (falsy): holds the statement so its id stays its own."""
    __slots__ = ("statement",)

    def __init__(self, statement: Any):
        self.statement = statement

    def __bool__(self) -> bool:
        return False


def execute(conn: Any, statement: Any, params: dict[str, Any] | Sequence[dict[str, Any]] | None = None) -> Any:
    """`conn.execute(statement, params)` without SQLAlchemy's per-execution work (see the module's
    docstring); a list of parameter dicts runs as one executemany (no rows returned)."""
    many = isinstance(params, (list, tuple))
    first = (params[0] if params else {}) if many else (params or {})
    keys = tuple(sorted(first))
    found = None if _watched(conn) else _compiled(statement, conn.dialect, keys, many)
    if not found or (many and (found.returns_rows or found.by_name is not None)):
        return conn.execute(statement, params)
    values: Any = [found.values(p) for p in params] if many else found.values(first)
    return _on_cursor(conn, found, found.sql, values, many)


def _on_cursor(conn: Any, found: _Compiled, sql: str, values: Any, many: bool = False) -> Result:
    """`sql` (`found`'s, or a statement ending with it) with its processed `values` on the DBAPI
    cursor; rows read as `found` reads them, errors wrapped as SQLAlchemy wraps them."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        if many:
            cursor.executemany(sql, values)
            rows = []
        else:
            cursor.execute(sql, values)
            fetch = found.returns_rows
            if fetch is None:
                fetch = cursor.description is not None
            rows = found.rows(cursor.fetchall(), cursor) if fetch else []
        rowcount = cursor.rowcount
    except BaseException as exc:
        conn._handle_dbapi_exception(exc, sql, values, cursor, None)
        raise       # not reached: the line above raises SQLAlchemy's wrapped error
    finally:
        cursor.close()
    return Result(rows, rowcount)


# -- several writes, one statement (PostgreSQL) -----------------------------------------------------
_PARAM = re.compile(r"%\((\w+)\)s")
_TOGETHER: dict[tuple, tuple] = {}


def execute_together(conn: Any, writes: Sequence[tuple[Any, dict[str, Any]]], final: Any = None,
                     final_params: dict[str, Any] | None = None) -> Result:
    """PostgreSQL: the `writes` (statement, params) and then `final` as ONE statement, each write a
    data-modifying CTE of it (`WITH w0 AS (...), w1 AS (...) <final>`; without `final`, the last write
    is the main statement): one round trip where each took one. The result is `final`'s (or the last
    write's). PostgreSQL runs every such CTE to completion whether or not anything reads it, and all
    of them see the same snapshot, so the writes must not touch each other's rows (nor `final`'s);
    each sees what the transaction did before this statement. A write that cannot be composed
    (parameters rendered per call) runs first, on its own."""
    writes = list(writes)
    if final is None:
        final, final_params = writes.pop()
    final_params = final_params or {}
    dialect = conn.dialect
    parts, alone = [], []
    for statement, params in writes:
        found = _compiled(statement, dialect, tuple(sorted(params)), False)
        (parts if found and not found.positional else alone).append((statement, params, found))
    last = _compiled(final, dialect, tuple(sorted(final_params)), False)
    for statement, params, _ in alone:
        conn.execute(statement, params)
    if not parts:
        return execute(conn, final, final_params)
    if not last or last.positional:
        for statement, params, _ in parts:
            execute(conn, statement, params)
        return execute(conn, final, final_params)
    key = (tuple(id(found) for _, _, found in parts), id(last))
    known = _TOGETHER.get(key)
    if known is None:
        # the entry holds the compiled parts it was made of, so no other one takes their ids meanwhile
        known = (_compose([found.sql for _, _, found in parts], last.sql), [found for _, _, found in parts], last)
        with _LOCK:
            if len(_TOGETHER) > 512:
                _TOGETHER.clear()
            _TOGETHER[key] = known
    sql = known[0]
    values = last.values(final_params)
    for n, (_, params, found) in enumerate(parts):
        values.update((f"w{n}_{name}", value) for name, value in found.values(params).items())
    if _watched(conn):       # counters and logs see the one statement
        result = conn.exec_driver_sql(sql, values)
        if not result.returns_rows:
            return Result([], result.rowcount)
        description = [(name,) for name in result.keys()]
        fetched = [tuple(row) for row in result.fetchall()]
        return Result(last.rows(fetched, _Described(description)), result.rowcount)
    return _on_cursor(conn, last, sql, values)


class _Described:
    __slots__ = ("description",)

    def __init__(self, description: list[tuple]):
        self.description = description


def _compose(writes: list[str], final: str) -> str:
    """The SQL of `execute_together`: each write's parameters and CTE names prefixed with `w<n>_`,
    its own CTEs lifted to the top (PostgreSQL takes data-modifying CTEs only there)."""
    ctes: list[str] = []
    for n, sql in enumerate(writes):
        sql = _PARAM.sub(lambda m: f"%(w{n}_{m.group(1)})s", sql)
        inner, main = _split_with(sql)
        for name, _ in inner:
            rename = re.compile(rf"(?<![\w.\"]){re.escape(name)}(?=[\s.,)]|$)")
            inner = [(a, rename.sub(f"w{n}_{name}", body)) for a, body in inner]
            main = rename.sub(f"w{n}_{name}", main)
        ctes += [f"w{n}_{name} AS ({body})" for name, body in inner]
        ctes.append(f"w{n} AS ({main.strip()})")
    own, main = _split_with(final)
    ctes += [f"{name} AS ({body})" for name, body in own]
    return "WITH " + ",\n".join(ctes) + "\n" + main.strip()


def _split_with(sql: str) -> tuple[list[tuple[str, str]], str]:
    """`WITH a AS (...), b AS (...) main` -> ([(a, body), (b, body)], main); no WITH: ([], sql).
    Parentheses inside quoted strings and names are skipped."""
    text = sql.lstrip()
    if not re.match(r"WITH\s", text, re.IGNORECASE):
        return [], sql
    ctes, pos = [], 4
    while True:
        head = re.compile(r"\s*(\w+)\s+AS\s+(?:(?:NOT\s+)?MATERIALIZED\s+)?\(", re.IGNORECASE).match(text, pos)
        if head is None:
            raise ValueError(f"cannot read the WITH clause of: {sql[:200]}")
        start = end = head.end()
        depth, quote = 1, None
        while depth:
            ch = text[end]
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            end += 1
        ctes.append((head.group(1), text[start:end - 1]))
        comma = re.compile(r"\s*,").match(text, end)
        if comma is None:
            return ctes, text[end:]
        pos = comma.end()
