"""A Bitrix24 task's state in the hub's neutral words (BITRIX.md: not_viewed, viewed,
updated_by_other, in_progress, paused, awaiting_review, deadline_changed, overdue, completed,
deferred, open, gone).

Bitrix24 keeps `status` 2 pending, 3 in progress, 4 awaiting control, 5 completed, 6 deferred
(legacy 1 new, 7 declined) and `subStatus`, the status or a meta-status: -1 overdue, -2 not viewed,
-3 almost overdue (FACTS §7). A pending task that was started before and put back is paused (it has
a `dateStart`); one changed last by somebody other than its responsible or creator was updated by
another; one in progress that cannot be completed before its responsible writes a result
(`taskRequireResult` without `taskHasResult`, read with WITH_RESULT_INFO) needs its summary. `deadline_changed` needs the state before, so it is decided where a change is compared
(webhooks.changes)."""
from __future__ import annotations

from typing import Any

OPEN_STATUSES = frozenset({"1", "2", "3", "6"})   # not completed, not awaiting control


def _get(task: dict[str, Any], camel: str) -> Any:
    """tasks.task.* answer in camelCase; filters and older answers use UPPER_CASE."""
    if camel in task:
        return task[camel]
    upper = "".join(f"_{c}" if c.isupper() else c.upper() for c in camel)
    return task.get(upper)


def real_status(task: dict[str, Any]) -> str:
    return str(_get(task, "realStatus") or _get(task, "status") or "")


def neutral(task: dict[str, Any] | None) -> str:
    if not task:
        return "gone"
    status = real_status(task)
    sub = str(_get(task, "subStatus") or "")
    if status == "5":
        return "completed"
    if status == "4":
        return "awaiting_review"
    if status == "6":
        return "deferred"
    if status == "7":
        return "gone"
    if sub == "-1":
        return "overdue"
    if status == "3":
        if _yes(_get(task, "taskRequireResult")) and not _yes(_get(task, "taskHasResult")):
            return "summary_required"
        return "in_progress"
    if sub == "-2" or str(_get(task, "notViewed") or "").upper() == "Y":
        return "not_viewed"
    if _get(task, "dateStart"):
        return "paused"
    changed_by = str(_get(task, "changedBy") or "")
    if changed_by and changed_by not in (str(_get(task, "responsibleId") or ""), str(_get(task, "createdBy") or "")):
        return "updated_by_other"
    if status in ("1", "2"):
        return "viewed"
    return "open"


def _yes(value: Any) -> bool:
    return value is True or str(value).strip().upper() in ("Y", "TRUE", "1")


def links(task: dict[str, Any]) -> dict[str, str]:
    """The CRM records a task is bound to (`UF_CRM_TASK`: D_<deal>, L_<lead>, C_<contact>, CO_<company>)."""
    found: dict[str, str] = {}
    bound = _get(task, "ufCrmTask") or []
    if isinstance(bound, str):
        bound = [bound]
    for item in bound if isinstance(bound, list) else []:
        prefix, _, ident = str(item).partition("_")
        name = {"D": "deal_id", "L": "lead_id", "C": "contact_id", "CO": "company_id"}.get(prefix)
        if name and ident.isdigit() and name not in found:
            found[name] = ident
    return found
