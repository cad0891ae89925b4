"""Events older than the state the hub holds (delivered late or out of order).

Such an event never rolls the object's state back. Whether its transition still counts is judged
against the newer state: a win the newer state still shows (same `won_time`) did happen and
nothing since undid it, so it is acted on (otherwise it would be lost for good: the newer event
carries no transition, and reconciliation compares with the newer state). A transition the newer
state contradicts (the deal moved on to another stage, was reopened) is superseded: recorded and
traced as stale, with no transition."""
from __future__ import annotations

from typing import Any

from ..connectors.base import CrmEvent

# the field that dates each transition, when the CRM gives one
_TRANSITION_TIME = {"deal.won": "won_time", "deal.lost": "lost_time", "deal.stage_changed": "stage_change_time"}
_STATUS = {"deal.won": "won", "deal.lost": "lost"}


def is_older(version: str, known: str) -> bool:
    """True when `version` is strictly older than `known`; either one unknown: not older."""
    return bool(version and known and version < known)


def still_shows(event: CrmEvent, known: dict[str, Any] | None, known_deleted: bool) -> bool:
    """Does the newer known state still show what this older event says happened?"""
    from . import canonical_time

    state = known or {}
    current = event.current or {}
    if known_deleted:
        return False
    if event.kind in _STATUS:
        if state.get("status") != _STATUS[event.kind]:
            return False
    elif event.kind == "deal.stage_changed":
        if str(state.get("stage_id")) != str(event.to_stage_id):
            return False
    elif event.kind.endswith((".created", ".added")):
        return True   # the object was created; a newer state of it only confirms that
    else:
        return False  # updates and deletions carry no transition of their own to keep
    field = _TRANSITION_TIME[event.kind]
    ours, theirs = canonical_time(current.get(field)), canonical_time(state.get(field))
    return not ours or not theirs or ours == theirs
