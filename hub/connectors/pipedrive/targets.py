"""Pipedrive as a rule's target, for tasks inside the CRM itself: the step kinds `task` (an
activity: a to-do of a type such as task, call or deadline, for a user, due on a date, linked to
the rule's deal, lead, person or organization) and `record` (update fields of the rule's deal).

Exactly-once for activities: Pipedrive activities have no external id, so the effect key is written
into the activity's note as a marker (`ref: rh-<16 hex digits of the key's SHA-256>`, a last
paragraph). A first try creates straight away: the core promises that no earlier try sent a create
(its write-ahead mark), so nothing can carry the marker yet. A later try lists the activities of
the linked record (or of the assignee when nothing is linked) and takes the one whose note carries
the marker before creating. Why a marker and not subject + deal + due date: those are the
template's output, so two rules (or a person) can make the same subject on the same deal and day;
the marker is derived from the effect key, which is unique per rule, occurrence and step. What is
left: a person deleting the marker from the note between a lost answer and the retry (seconds to
minutes) would get a second activity; and two tries of one effect never run at once (the queue
runs a run's job once at a time), which the look-up relies on since Pipedrive cannot refuse a
duplicate as Asana does.

`record` sets values (PATCH): setting the same values again is harmless, so a retry simply sends
them again; values are converted to API v2's strict types from the deal field catalog."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

from ...errors import Fatal
from ..contract.records import SourceRecord
from ..contract.targets import AttachmentRefused, Made, StepKind, TargetContext, TaskSpec, TaskState
from .client import PipedriveClient

LOOKUP_LIMIT = 2000     # activities read at most when looking for the marker (a record has few)
_LINKS = {"deal": "deal_id", "lead": "lead_id", "person": "person_id", "organization": "org_id"}


def marker(effect_key: str) -> str:
    return f"ref: rh-{hashlib.sha256(effect_key.encode()).hexdigest()[:16]}"


# -- validation -----------------------------------------------------------------------------------
def _lookup(catalog: Callable[[str], Any] | None, name: str) -> Any:
    return catalog(name) if catalog is not None else None


def validate_task(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    kind, user = settings.get("type"), settings.get("user_id")
    types = _lookup(catalog, "activity_types")
    if kind and types is not None and kind not in {t["key"] for t in types}:
        errors["type"] = f"{kind!r} is not an active activity type in Pipedrive"
    users = _lookup(catalog, "users") if user else None
    if user and users is not None and str(user) not in {u["id"] for u in users}:
        errors["user_id"] = "this user is not an active user of the Pipedrive company"
    return errors


def validate_record(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    stage, values = settings.get("stage_id"), settings.get("fields") or {}
    if not isinstance(values, dict):
        return {"fields": "give the fields to set as an object: field key -> value"}
    if complete and not stage and not values:
        errors["stage_id"] = "pick the stage to move the deal to, or fields to set"
    if stage and catalog is not None and str(stage) not in {s["id"] for s in catalog("stages")}:
        errors["stage_id"] = "this stage does not exist in Pipedrive"
    if values and catalog is not None:
        known = {f["key"]: f for f in catalog("deal_fields")}
        for key, value in values.items():
            entry = known.get(key)
            if entry is None or key not in WRITABLE and not entry.get("custom"):
                errors[f"fields.{key}"] = "this deal field does not exist or cannot be set by a rule"
                continue
            try:
                _convert(entry, value)
            except ValueError as exc:
                errors[f"fields.{key}"] = str(exc)
    return errors


# -- values for API v2 (strict types, FACTS §1) ---------------------------------------------------
WRITABLE = {"title", "value", "currency", "owner_id", "stage_id", "status", "probability", "lost_reason",
            "expected_close_date"}


def _number(value: Any, label: str) -> int | float:
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{label} needs a number, not {value!r}") from None
    return int(number) if number == number.to_integral_value() else float(number)


def _option(entry: dict, value: Any) -> int:
    options = {str(o["id"]): o["id"] for o in entry.get("options") or []}
    by_label = {str(o["label"]).lower(): o["id"] for o in entry.get("options") or []}
    text = str(value).strip()
    if text in options:
        return int(options[text])
    if text.lower() in by_label:
        return int(by_label[text.lower()])
    raise ValueError(f"{text!r} is not an option of {entry['label']}")


def _convert(entry: dict, value: Any) -> Any:
    """A setting or rendered value as API v2 wants it for this field (None clears it)."""
    if value in (None, ""):
        if entry.get("type") == "set":
            raise ValueError(f"{entry['label']} cannot be cleared with an empty list; give at least one option")
        return None
    kind = entry.get("type", "")
    if entry["key"] in ("stage_id", "owner_id") or kind in ("user", "people", "org", "int"):
        return int(_number(value, entry["label"]))
    if kind == "monetary" and entry.get("custom"):     # {value, currency}; "500 EUR" or a number
        if isinstance(value, dict):
            return {"value": _number(value.get("value"), entry["label"]), "currency": value.get("currency")}
        amount, _, currency = str(value).strip().rpartition(" ")
        if len(currency) == 3 and currency.isalpha():
            return {"value": _number(amount, entry["label"]), "currency": currency.upper()}
        return {"value": _number(value, entry["label"]), "currency": None}   # the deal's currency, below
    if kind in ("double", "monetary") or entry["key"] in ("value", "probability"):
        return _number(value, entry["label"])
    if kind == "enum":
        return _option(entry, value)
    if kind == "set":
        items = value if isinstance(value, list) else str(value).split(",")
        return [_option(entry, v) for v in items if str(v).strip()]
    if entry["key"] == "status" and value not in ("open", "won", "lost"):
        raise ValueError("status is open, won or lost")
    return str(value)


# -- targets --------------------------------------------------------------------------------------
def _due(due: str | None) -> dict[str, str]:
    if not due:
        return {}
    date, _, time = due.partition("T")
    return {"due_date": date[:10], **({"due_time": time[:5]} if time[:5] else {})}


def _links(record: SourceRecord | None) -> dict[str, Any]:
    if record is None or record.kind not in _LINKS:
        return {}
    data, links = record.data, {}
    links[_LINKS[record.kind]] = record.id if record.kind == "lead" else int(record.id)
    if record.kind in ("deal", "lead"):
        person, org = data.get("person_id"), data.get("org_id") or data.get("organization_id")
        if isinstance(person, int) or (isinstance(person, str) and person.isdigit()):
            links["person_id"] = int(person)
        if isinstance(org, int) or (isinstance(org, str) and org.isdigit()):
            links["org_id"] = int(org)
    return links


def _utc(stamp: str | None) -> datetime | None:
    """API v2 times ("2024-01-01T10:00:00Z"; v1's "2024-01-01 10:00:00" is UTC too) as naive UTC."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _deadline(activity: dict) -> date | datetime | None:
    """An activity is due on `due_date`, at `due_time` (UTC) when it has one."""
    day = activity.get("due_date")
    if not day:
        return None
    try:
        if activity.get("due_time"):
            return datetime.fromisoformat(f"{day}T{activity['due_time']}")
        return date.fromisoformat(day)
    except ValueError:
        return None


class ActivityTarget:
    """Activities (settings: type, default task; user_id, default: the assignee of the spec or the
    connected user)."""

    max_attachment_bytes: int | None = 0     # activities take no files from a rule

    def __init__(self, ctx: TargetContext):
        self.ctx = ctx
        self.client: PipedriveClient = ctx.client
        self.base = ctx.api_base.rstrip("/")

    def _url(self, activity: dict) -> str:
        if activity.get("deal_id"):
            return f"{self.base}/deal/{activity['deal_id']}"
        if activity.get("person_id"):
            return f"{self.base}/person/{activity['person_id']}"
        if activity.get("org_id"):
            return f"{self.base}/organization/{activity['org_id']}"
        return f"{self.base}/activities/list"

    def _made(self, activity: dict, created: bool) -> Made:
        return Made(external_id=str(activity["id"]), url=self._url(activity), name=activity.get("subject") or "",
                    created=created)

    def _body(self, spec: TaskSpec, mark: str) -> dict[str, Any]:
        s = spec.settings
        note = (spec.notes_html or "").strip()
        body: dict[str, Any] = {"subject": spec.name[:255], "type": s.get("type") or "task",
                                "note": (note + "\n" if note else "") + f"<p>{mark}</p>",
                                **_due(spec.due), **_links(spec.record)}
        user = spec.assignee or s.get("user_id")
        if user:
            body["owner_id"] = int(user)
        return body

    def _find(self, body: dict, mark: str) -> dict | None:
        params = {k: body[k] for k in ("deal_id", "lead_id", "person_id", "org_id") if k in body}
        params = dict(list(params.items())[:1]) or ({"owner_id": body["owner_id"]} if "owner_id" in body else {})
        params.update(sort_by="add_time", sort_direction="desc")
        for n, activity in enumerate(self.client.iter_cursor("/api/v2/activities", params)):
            if mark in (activity.get("note") or ""):
                return activity
            if n >= LOOKUP_LIMIT:
                return None
        return None

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        mark = marker(effect_key)
        body = self._body(spec, mark)
        if not first_try:
            found = self._find(body, mark)
            if found is not None:
                return self._made(found, False)
        return self._made(self.client.json("POST", "/api/v2/activities", json=body)["data"], True)

    def complete(self, external_id: str) -> str:
        done = self.client.json("PATCH", "/api/v2/activities/{activity_id}", path_params={"activity_id": int(external_id)},
                                json={"done": True})["data"]
        return "completed" if done.get("done") else "open"

    def status(self, external_id: str) -> str:
        response = self.client.request("GET", "/api/v2/activities/{activity_id}",
                                       path_params={"activity_id": int(external_id)}, ok=(404, 410))
        if response.status_code in (404, 410):
            return "deleted"
        activity = response.json().get("data") or {}
        return "deleted" if activity.get("is_deleted") else "completed" if activity.get("done") else "open"

    def state(self, external_id: str) -> TaskState:
        """Done or not (`completed` / `open`); deleted (404, 410, `is_deleted`) or no longer visible
        to the connected user (403) is `gone`."""
        response = self.client.request("GET", "/api/v2/activities/{activity_id}",
                                       path_params={"activity_id": int(external_id)}, ok=(403, 404, 410))
        if response.status_code in (403, 404, 410):
            return TaskState("gone", detail="deleted in Pipedrive" if response.status_code != 403
                             else "the connected user may no longer see it")
        activity = response.json().get("data") or {}
        if activity.get("is_deleted"):
            return TaskState("gone", detail="deleted in Pipedrive")
        done = bool(activity.get("done"))
        changed = _utc(activity.get("marked_as_done_time")) if done else None
        return TaskState("completed" if done else "open", deadline=_deadline(activity),
                         changed_at=changed or _utc(activity.get("update_time")),
                         responsible=str(activity.get("owner_id") or ""))

    def attach(self, external_id: str, file: dict[str, Any], chunks: Iterator[bytes], *,
               maybe_sent: bool = False) -> str:
        raise AttachmentRefused(f"{file.get('name') or 'a file'}: Pipedrive activities take no files from a rule")


class DealUpdate(ActivityTarget):
    """Set fields of the rule's deal (settings: stage_id, fields {key: value}; a step's mapped
    `spec.fields` win over the settings)."""

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        record = spec.record
        if record is None or record.kind != "deal":
            raise Fatal(f"this step updates deals; the rule's record is a {record.kind if record else 'missing'}", 400)
        catalog = {f["key"]: f for f in self.ctx.catalog("deal_fields")}
        wanted = {**(spec.settings.get("fields") or {}), **spec.fields}
        body: dict[str, Any] = {}
        if spec.settings.get("stage_id"):
            body["stage_id"] = int(spec.settings["stage_id"])
        for key, value in wanted.items():
            entry = catalog.get(key)
            if entry is None or key not in WRITABLE and not entry.get("custom"):
                raise Fatal(f"the deal field {key!r} does not exist or cannot be set by a rule", 400)
            try:
                converted = _convert(entry, value)
            except ValueError as exc:
                raise Fatal(f"{entry['label']}: {exc}", 400) from None
            if isinstance(converted, dict) and converted.get("currency") is None:
                converted["currency"] = record.data.get("currency")
            if entry.get("custom"):
                body.setdefault("custom_fields", {})[key] = converted
            else:
                body[key] = converted
        if not body:
            raise Fatal("nothing to set on the deal: pick a stage or fields", 400)
        deal = self.client.update_deal(int(record.id), **body)
        return Made(external_id=str(deal["id"]), url=f"{self.base}/deal/{deal['id']}", name=deal.get("title") or "",
                    created=True)

    def complete(self, external_id: str) -> str:
        raise Fatal("a deal update cannot be completed", 400)

    def status(self, external_id: str) -> str:
        deal = self.client.deal(int(external_id))
        return "deleted" if deal.get("is_deleted") else deal.get("status") or "open"


TARGETS: dict[str, StepKind] = {s.what: s for s in (
    StepKind("task", "Create a Pipedrive activity", makes="task", settings=("type", "user_id"),
             validate=validate_task, target=ActivityTarget, completes=True, catalogs=("activity_types", "users")),
    StepKind("record", "Update the deal in Pipedrive", makes="record", settings=("stage_id", "fields"),
             validate=validate_record, target=DealUpdate, catalogs=("stages", "deal_fields")),
)}
