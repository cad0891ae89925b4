"""Ids that users type or send (a preview's record id, ids stored in rules and syncs) are checked
by the provider they belong to before any of them reaches an API call.

Each connector folder has an `ids.py` with `ID_KINDS`: a neutral kind ("deal", "lead", "project",
"contact_group" ...) -> a function that returns the id in its canonical spelling or raises
ValueError saying what a valid one looks like. The core names kinds, never providers."""
from __future__ import annotations

import importlib
from typing import Any, Callable

from . import available


class InvalidId(ValueError):
    """A user-supplied id the provider cannot have issued; `field` names the input that held it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def id_kinds(provider: str) -> dict[str, Callable[[str], str]]:
    if provider not in available():
        raise KeyError(f"no connector {provider!r}")
    return importlib.import_module(f"{__package__}.{provider}.ids").ID_KINDS


def check_id(provider: str, kind: str, value: Any, field: str) -> str:
    """The canonical id, or InvalidId naming `field`. An unknown kind is a programming error."""
    checker = id_kinds(provider)[kind]
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidId(field, f"expected a {kind} id")
    try:
        return checker(str(value).strip())
    except ValueError as exc:
        raise InvalidId(field, str(exc)) from None


def check_ids(provider: str, values: dict[str, tuple[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """{field: (kind, value)} -> (canonical ids of the valid, non-empty ones; errors by field)."""
    good: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field, (kind, value) in values.items():
        if value in (None, ""):
            continue
        try:
            good[field] = check_id(provider, kind, value, field)
        except InvalidId as exc:
            errors[field] = exc.message
    return good, errors
