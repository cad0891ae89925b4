"""Events older than the state the hub holds (delivered late or out of order).

Such an event never rolls the object's state back. Whether its transition still counts is judged
against the newer state: a win the newer state still shows (status won, same won time) did happen
and nothing since undid it, so it is acted on (otherwise it would be lost for good: the newer event
carries no transition, and reconciliation compares with the newer state). A transition the newer
state contradicts (the deal moved on to another stage, was reopened) is superseded: recorded and
traced as stale, with no transition."""
from __future__ import annotations

from typing import Any

from ..connectors.contract.webhooks import CrmEvent, canonical_time


def is_older(version: str, known: str) -> bool:
    """True when `version` is strictly older than `known`; either one unknown: not older."""
    return bool(version and known and version < known)


def still_shows(event: CrmEvent, known: dict[str, Any] | None, known_deleted: bool) -> bool:
    """Does the newer known state still show what this older event says happened? The connector
    says what the transition leaves behind (`CrmEvent.shows`); the newer state contradicts it when
    it holds one of those fields with another value (compared as `canonical_time` spells them)."""
    if known_deleted or event.shows is None:
        return False    # updates and deletions carry no transition of their own to keep
    state = known or {}
    for name, value in event.shows.items():
        theirs = state.get(name)
        if value in (None, "") or theirs in (None, ""):
            continue    # not dated on one side: nothing to contradict
        if canonical_time(value) != canonical_time(theirs):
            return False
    return True
