"""The sync settings form (the new-sync form and a sync's page), read as a person filled it in.

The form shows minutes and a percentage; the service stores seconds and a share between 0 and 1. The
form's numbers are checked here, in the units the form shows, so a message next to a field speaks
that field's unit ("a whole number of minutes", never "604800 seconds"); the service checks the
rest. What the person typed is kept as typed (`shown`), so a refused form comes back as it was sent."""
from __future__ import annotations

import re
from typing import Any, Mapping

from hub.inputs import InputError, to_int, to_number

from . import service

MAX_MINUTES = 7 * 24 * 60      # the service's limit of 7 days
_ROW = re.compile(r"^field_map\[(\d+)\]$")


def _text(form: Mapping[str, Any], key: str) -> str | None:
    """A field's text, or None when the form did not send the field at all (its value is kept)."""
    return None if key not in form else str(form.get(key) or "").strip()


def read(form: Any, contact_cap_max: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The numbers and the person filter of the form: (input for the service, the values to show
    again as typed, errors keyed like the service's so the template finds each next to its field)."""
    data: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if form.get("persons") == "filter":
        chosen = {k: (form.get(f"filter_{k}") or "").strip() for k in ("owner_id", "org_id")}
        data["person_filter"] = shown["person_filter"] = chosen
        if not any(chosen.values()):
            errors["person_filter"] = "give an owner id, an organization id or both (or choose all persons)"
    else:
        data["person_filter"] = {}

    minutes = _text(form, "schedule_minutes")
    if minutes is not None:
        shown["schedule_minutes"] = minutes
        try:
            data["schedule_seconds"] = to_int(minutes, "schedule_minutes", low=0, high=MAX_MINUTES) * 60
        except InputError:
            errors["schedule_seconds"] = (f"expected a whole number of minutes from 1 to {MAX_MINUTES} (a week), "
                                          "or 0 to run only on demand")
    percent = _text(form, "delete_percent")
    if percent is not None:
        shown["delete_percent"] = percent
        try:
            data["delete_share"] = to_number(percent, "delete_percent", low=0, high=100) / 100
        except InputError:
            errors["delete_share"] = "expected a percentage from 0 to 100 (0 asks before any deletion)"
    cap = _text(form, "contact_cap")
    if cap is not None:
        shown["contact_cap"] = cap
        try:
            data["contact_cap"] = to_int(cap, "contact_cap", low=1, high=contact_cap_max)
        except InputError:
            errors["contact_cap"] = f"expected a whole number of contacts from 1 to {contact_cap_max}"
    return data, shown, errors


def refuse_if_invalid(services: Any, installation_id: int, data: Mapping[str, Any], errors: Mapping[str, str],
                      sync_id: int | None = None) -> None:
    """When the form's own checks failed, nothing is saved; the service still looks at the other
    fields (without saving), so the person sees every problem at once."""
    if not errors:
        return
    found = dict(errors)
    with services.db.begin() as session:
        existing = service.get(session, installation_id, sync_id) if sync_id is not None else None
        try:
            service.validate(services, session, installation_id, data, existing)
        except service.SyncInputError as exc:
            found = {**exc.fields, **errors}
    raise service.SyncInputError(found)


def row_errors(errors: Mapping[str, str], row_numbers: list[int]) -> dict[int, str]:
    """The service's `field_map[i]` errors by the form's row number (1-based): blank rows are left
    out before the service sees the rows, so its index is not the row's place on the page."""
    out = {}
    for key, message in errors.items():
        match = _ROW.match(key)
        if match and int(match.group(1)) < len(row_numbers):
            both = message.startswith("both ") and message.endswith(" are required")   # a half-filled row
            out[row_numbers[int(match.group(1))]] = "fill in both fields of the row, or neither" if both else message
    return out
