"""What the sync does when one side deleted a record or merged it away: pure decisions, no I/O.

- Delete vs edit: a delete signal on one side meets the other side as it is now. If that side was
  edited since the last run (its fingerprint differs from the link's), the sync's delete policy
  decides: `edit_wins` (default) keeps the edited record and gives the deleted side the record back,
  `delete_wins` deletes it anyway. Either way a conflict entry says in words what happened.
- Merges: a CRM person merged into another one is no deletion. Its contact is folded into the
  survivor's: list fields (e-mails, phones) are unioned, a single value is kept unless empty, and a
  value that could not be kept is reported as a conflict, so nothing disappears unseen."""
from __future__ import annotations

from typing import Any, Iterable

from .mapping import LIST_FIELDS

DELETE_POLICIES = {"edit_wins": "An edit beats a delete: the deleted side gets the record back",
                   "delete_wins": "A delete wins, even over an edit made since the last run"}
DEFAULT_DELETE_POLICY = "edit_wins"


def judge_delete(now_fp: str | None, link_fp: str, policy: str, *, can_restore: bool = True) -> str:
    """'gone' (the other side is gone too), 'delete' (nobody edited it since the last run, or the
    delete wins), 'restore' (edit wins and the deleted side may be written) or 'keep' (edit wins,
    but the sync may not write the deleted side: the edited record stays, unlinked)."""
    if now_fp is None:
        return "gone"
    if now_fp == link_fp or policy == "delete_wins":
        return "delete"
    return "restore" if can_restore else "keep"


def was_edited(now_fp: str | None, link_fp: str) -> bool:
    return now_fp is not None and now_fp != link_fp


def describe_delete(deleted_on: str, crm_id: str, name: str, verdict: str, outcome: str = "",
                    store: str = "the address book") -> str:
    """E.g. "person 12 deleted in the CRM while contact “Ana Berg” was edited in <store>: contact
    kept, person re-created as 57" (`store`: the store's title)."""
    who = f"“{name}”" if name else ""
    if deleted_on == "crm":
        head = f"person {crm_id} deleted in the CRM while contact {who} was edited in {store}".replace("  ", " ")
        kept, other = "contact", "person"
    else:
        head = f"contact {who} deleted in {store} while person {crm_id} was edited in the CRM".replace("  ", " ")
        kept, other = "person", "contact"
    if verdict == "restore":
        return f"{head}: {kept} kept, {other} re-created as {outcome}"
    if verdict == "keep":
        return f"{head}: {kept} kept and unlinked (this sync does not write the other side)"
    return f"{head}: delete wins, {kept} deleted too"


def fold(primary: dict[str, Any], secondary: dict[str, Any], targets: Iterable[str]
         ) -> tuple[dict[str, Any], list[tuple[str, Any, Any]]]:
    """`primary` with `secondary` folded in: list fields unioned (primary's order first), a single
    value kept unless empty. Returns the record and the secondary values that were not kept."""
    out: dict[str, Any] = {}
    dropped: list[tuple[str, Any, Any]] = []
    for field in targets:
        p, s = primary.get(field), secondary.get(field)
        if field in LIST_FIELDS:
            items = [list(i) for i in (p or [])]
            known = {i[0] for i in items}
            items += [list(i) for i in (s or []) if i[0] not in known]
            out[field] = items
        elif _empty(p):
            out[field] = s
        else:
            out[field] = p
            if not _empty(s) and s != p:
                dropped.append((field, p, s))
    return out, dropped


def _empty(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return not any(v for v in value)
    return value in (None, "")
