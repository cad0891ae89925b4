"""HubSpot as a rule's target: `task` (a HubSpot task on the rule's deal, contact or lead),
`lead` (a new lead for the event's contact) and `lead_stage` (move the event's lead).

Exactly-once. Tasks carry the effect key as a marker in their body (`ref: rh-<16 hex digits of the
key's SHA-256>`, a last paragraph) and a retry finds them by search (`hs_task_body` CONTAINS_TOKEN
the marker, then the marker checked in the body). Leads have no free text: a retry looks among the
contact's leads for one with the same name in the same pipeline (the name is the template's
output, so two rules rendering the same name for one contact and pipeline would share a lead). A
first try creates straight away: the core's write-ahead mark promises no earlier try sent a create.
Moving a lead sets its stage: doing it again is harmless."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from ...errors import Fatal
from ..contract.records import SourceRecord
from ..contract.targets import AttachmentRefused, Input, Made, StepKind, TargetContext, TaskSpec, TaskState
from .client import HubSpotClient
from .records import PATHS, HubSpotSource

# HUBSPOT_DEFINED association type ids from a task [U: commonly used values, FACTS §7]; leads are
# associated with the v4 default association (no type id needed)
TASK_TO = {"person": ("contacts", 204), "deal": ("deals", 216), "organization": ("companies", 192)}
LEAD_TO_PRIMARY_CONTACT = 578      # [U] FACTS §6: lead -> primary contact
PRIORITIES = ("LOW", "MEDIUM", "HIGH")
# hs_task_status -> the neutral task status (FACTS §7: NOT_STARTED and COMPLETED documented, the rest [U])
STATUSES = {"NOT_STARTED": "open", "IN_PROGRESS": "in_progress", "WAITING": "paused", "DEFERRED": "deferred",
            "COMPLETED": "completed"}


def marker(effect_key: str) -> str:
    return f"rh-{hashlib.sha256(effect_key.encode()).hexdigest()[:16]}"


def _lookup(catalog: Callable[[str], Any] | None, name: str) -> Any:
    return catalog(name) if catalog is not None else None


def _ids(entries: Any) -> set[str]:
    return {str(e["id"]) for e in entries or []}


# -- validation -----------------------------------------------------------------------------------
def validate_task(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    kind, owner, priority = settings.get("type"), settings.get("owner_id"), settings.get("priority")
    if priority and str(priority).upper() not in PRIORITIES:
        errors["priority"] = "priority is LOW, MEDIUM or HIGH"
    types = _lookup(catalog, "task_types") if kind else None
    if kind and types is not None and str(kind) not in _ids(types):
        errors["type"] = f"{kind!r} is not a task type of this HubSpot account"
    owners = _lookup(catalog, "owners") if owner else None
    if owner and owners is not None and str(owner) not in _ids(owners):
        errors["owner_id"] = "this owner is not an active owner of the HubSpot account"
    return errors


def validate_lead(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    pipeline, stage = settings.get("pipeline_id"), settings.get("stage_id")
    if complete and not pipeline:
        return {"pipeline_id": "pick the lead pipeline the lead starts in"}
    pipes = _lookup(catalog, "lead_pipelines") if pipeline else None
    if pipes is None:
        return {}
    found = next((p for p in pipes if p["id"] == str(pipeline)), None)
    if found is None:
        return {"pipeline_id": "this lead pipeline does not exist in HubSpot"}
    if stage and str(stage) not in _ids(found["stages"]):
        return {"stage_id": f"this stage is not a stage of the pipeline {found['name']}"}
    return {}


def validate_lead_stage(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    to, since = settings.get("to_stage_id"), settings.get("from_stage_id")
    if complete and not to:
        errors["to_stage_id"] = "pick the stage to move the lead to"
    stages = _lookup(catalog, "lead_stages") if (to or since) else None
    if stages is not None:
        known = _ids(stages)
        for key, value in (("to_stage_id", to), ("from_stage_id", since)):
            if value and str(value) not in known:
                errors[key] = "this lead stage does not exist in HubSpot"
        if to and since and str(to) == str(since):
            errors["from_stage_id"] = "the lead is already in the stage it would move to"
    return errors


# -- helpers -----------------------------------------------------------------------------------------
def _due_ms(due: str | None) -> str:
    """hs_timestamp is required: the step's due date (midnight UTC for a date), else now."""
    if not due:
        return str(int(datetime.now(timezone.utc).timestamp() * 1000))
    text = due.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text if "T" in text else text[:10] + "T00:00:00")
    except ValueError:
        raise Fatal(f"the due date {due!r} is not an ISO date", 400) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return str(int(moment.timestamp() * 1000))


def _status(value: Any) -> str:
    return STATUSES.get(str(value or "NOT_STARTED").upper(), "open")


def _utc(value: Any) -> datetime | None:
    """A HubSpot time (epoch ms or ISO 8601) as a naive UTC datetime."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        moment = (datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc) if text.isdigit()
                  else datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError, OSError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _linked(record: SourceRecord | None, kind: str) -> list[str]:
    """Ids of the record's own object (when it is `kind`) and its associated ones."""
    if record is None:
        return []
    if record.kind == kind:
        return [record.id]
    path = PATHS.get(kind, "")
    return [str(i) for i in ((record.data.get("associations") or {}).get(path) or [])]


def _contact_of(client: HubSpotClient, record: SourceRecord | None) -> str | None:
    """The event's contact: the record itself, or the first contact associated with it."""
    if record is None:
        return None
    if record.kind == "person":
        return record.id
    linked = _linked(record, "person")
    if linked:
        return linked[0]
    if record.kind in ("deal", "lead"):
        ids = client.associated(PATHS[record.kind], record.id, "contacts")
        return ids[0] if ids else None
    return None


class TaskTarget:
    """HubSpot tasks (settings: type, priority, owner_id; the spec's assignee wins over owner_id)."""

    max_attachment_bytes: int | None = 0

    def __init__(self, ctx: TargetContext):
        self.ctx = ctx
        self.client: HubSpotClient = ctx.client
        self.base = ctx.api_base

    def _made(self, task: dict, created: bool) -> Made:
        source = HubSpotSource(_source_context(self.ctx))
        props = task.get("properties") or {}
        return Made(external_id=str(task["id"]), url=source.url("task", task["id"]),
                    name=props.get("hs_task_subject") or "", created=created)

    def _associations(self, record: SourceRecord | None) -> list[dict[str, Any]]:
        out = []
        for kind, (_, type_id) in TASK_TO.items():
            for ident in _linked(record, kind)[:10]:
                out.append({"to": {"id": ident}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                             "associationTypeId": type_id}]})
        return out

    def _find(self, mark: str) -> dict | None:
        body = {"filterGroups": [{"filters": [{"propertyName": "hs_task_body", "operator": "CONTAINS_TOKEN",
                                               "value": mark}]}],
                "properties": ["hs_task_subject", "hs_task_body", "hs_task_status"]}
        for task in self.client.iter_search("tasks", body, max_results=50):
            if mark in str((task.get("properties") or {}).get("hs_task_body") or ""):
                return task
        return None

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        mark = marker(effect_key)
        if not first_try:
            found = self._find(mark)
            if found is not None:
                return self._made(found, False)
        s = spec.settings
        notes = (spec.notes_html or "").strip()
        props: dict[str, Any] = {"hs_task_subject": spec.name[:255] or "Task", "hs_timestamp": _due_ms(spec.due),
                                 "hs_task_body": (notes + "\n" if notes else "") + f"<p>ref: {mark}</p>",
                                 "hs_task_status": "NOT_STARTED"}
        if s.get("type"):
            props["hs_task_type"] = str(s["type"])
        if s.get("priority"):
            props["hs_task_priority"] = str(s["priority"]).upper()
        owner = spec.assignee or s.get("owner_id")
        if owner:
            props["hubspot_owner_id"] = str(owner)
        task = self.client.create("tasks", props, self._associations(spec.record))
        for lead in _linked(spec.record, "lead")[:1]:
            self.client.json("PUT", "/crm/v4/objects/tasks/{task_id}/associations/default/leads/{lead_id}",
                             path_params={"task_id": task["id"], "lead_id": lead})
        return self._made(task, True)

    def complete(self, external_id: str) -> str:
        task = self.client.update("tasks", external_id, {"hs_task_status": "COMPLETED"})
        return _status((task.get("properties") or {}).get("hs_task_status"))

    def status(self, external_id: str) -> str:
        return self.state(external_id).status

    def state(self, external_id: str) -> TaskState:
        """The task's status, due time, last change and owner; a deleted task is `gone`."""
        task = self.client.find("tasks", external_id, properties=["hs_task_status", "hs_timestamp",
                                                                  "hs_lastmodifieddate", "hubspot_owner_id"])
        if task is None:
            return TaskState("gone", detail="deleted in HubSpot")
        props = task.get("properties") or {}
        return TaskState(_status(props.get("hs_task_status")), deadline=_utc(props.get("hs_timestamp")),
                         changed_at=_utc(props.get("hs_lastmodifieddate") or task.get("updatedAt")),
                         responsible=str(props.get("hubspot_owner_id") or ""))

    def attach(self, external_id: str, file: dict[str, Any], chunks: Iterator[bytes], *,
               maybe_sent: bool = False) -> str:
        raise AttachmentRefused(f"{file.get('name') or 'a file'}: HubSpot tasks take no files from a rule")


def _source_context(ctx: TargetContext):
    from ..contract.records import SourceContext
    return SourceContext(client=ctx.client, api_base=ctx.api_base, catalog=ctx.catalog)


class LeadTarget(TaskTarget):
    """A new lead (settings: pipeline_id, stage_id, default the pipeline's first stage; the name is
    the rendered template), its primary contact the event's contact, its owner the contact's."""

    def _pipeline(self, pipeline_id: str) -> dict:
        pipes = self.ctx.catalog("lead_pipelines")
        found = next((p for p in pipes if p["id"] == str(pipeline_id)), None)
        if found is None:
            raise Fatal(f"the lead pipeline {pipeline_id} no longer exists in HubSpot", 400)
        return found

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        s = spec.settings
        pipeline = self._pipeline(s.get("pipeline_id") or "")
        stage = str(s.get("stage_id") or (pipeline["stages"][0]["id"] if pipeline["stages"] else ""))
        contact_id = _contact_of(self.client, spec.record)
        if not contact_id:
            raise Fatal("a lead needs a contact: the rule's record has none", 400)
        contact = self.client.find("contacts", contact_id, properties=["hubspot_owner_id", "firstname", "lastname",
                                                                       "email"])
        if contact is None:
            raise Fatal(f"the contact {contact_id} no longer exists in HubSpot", 404)
        name = (spec.name or "").strip()[:255] or "Lead"
        if not first_try:
            found = self._find_lead(contact_id, name, pipeline["id"])
            if found is not None:
                return self._lead_made(found, False)
        props: dict[str, Any] = {"hs_lead_name": name, "hs_pipeline": pipeline["id"], "hs_pipeline_stage": stage}
        owner = spec.assignee or (contact.get("properties") or {}).get("hubspot_owner_id")
        if owner:
            props["hubspot_owner_id"] = str(owner)
        lead = self.client.create("leads", props, [{"to": {"id": contact_id}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": LEAD_TO_PRIMARY_CONTACT}]}])
        return self._lead_made(lead, True)

    def _find_lead(self, contact_id: str, name: str, pipeline_id: str) -> dict | None:
        for lead_id in self.client.associated("contacts", contact_id, "leads"):
            lead = self.client.find("leads", lead_id, properties=["hs_lead_name", "hs_pipeline", "hs_pipeline_stage"])
            props = (lead or {}).get("properties") or {}
            if lead and props.get("hs_lead_name") == name and str(props.get("hs_pipeline")) == pipeline_id:
                return lead
        return None

    def _lead_made(self, lead: dict, created: bool) -> Made:
        source = HubSpotSource(_source_context(self.ctx))
        return Made(external_id=str(lead["id"]), url=source.url("lead", lead["id"]),
                    name=(lead.get("properties") or {}).get("hs_lead_name") or "", created=created)

    def complete(self, external_id: str) -> str:
        raise Fatal("a lead cannot be completed as a task", 400)

    def status(self, external_id: str) -> str:
        lead = self.client.find("leads", external_id, properties=["hs_pipeline_stage"])
        return "deleted" if lead is None else "open"


class LeadStageTarget(LeadTarget):
    """Move the event's lead to `to_stage_id`; with `from_stage_id`, only a lead that is there now
    (otherwise nothing is changed and the step says why in the made object's name)."""

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        record = spec.record
        if record is None or record.kind != "lead":
            raise Fatal(f"this step moves leads; the rule's record is a {record.kind if record else 'missing'}", 400)
        to, since = str(spec.settings.get("to_stage_id") or ""), spec.settings.get("from_stage_id")
        if not to:
            raise Fatal("pick the stage to move the lead to", 400)
        lead = self.client.find("leads", record.id, properties=["hs_lead_name", "hs_pipeline_stage"])
        if lead is None:
            raise Fatal(f"the lead {record.id} no longer exists in HubSpot", 404)
        now = str((lead.get("properties") or {}).get("hs_pipeline_stage") or "")
        if now == to:
            return self._lead_made(lead, False)
        if since and now != str(since):
            made = self._lead_made(lead, False)
            made.name = f"not moved: the lead is in stage {now or 'none'}, not {since}"
            return made
        return self._lead_made(self.client.update("leads", record.id, {"hs_pipeline_stage": to}), True)


TARGETS: dict[str, StepKind] = {s.what: s for s in (
    StepKind("task", "Create a HubSpot task", makes="task", settings=("type", "priority", "owner_id"),
             validate=validate_task, target=TaskTarget, completes=True, catalogs=("task_types", "owners"),
             inputs=(Input("type", "Task type", catalog="task_types"),
                     Input("priority", "Priority", choices=tuple((p, p.title()) for p in PRIORITIES)),
                     Input("owner_id", "Assigned to", catalog="owners"))),
    StepKind("lead", "Create a HubSpot lead", makes="lead", settings=("pipeline_id", "stage_id"),
             validate=validate_lead, target=LeadTarget, catalogs=("lead_pipelines",),
             inputs=(Input("pipeline_id", "Lead pipeline", catalog="lead_pipelines", required=True),
                     Input("stage_id", "First stage (default: the pipeline's first)", catalog="lead_pipelines",
                           parent="pipeline_id", path="stages"))),
    StepKind("lead_stage", "Move the HubSpot lead to a stage", makes="record",
             settings=("to_stage_id", "from_stage_id"), validate=validate_lead_stage, target=LeadStageTarget,
             catalogs=("lead_stages",), advances=True,
             inputs=(Input("to_stage_id", "Move to stage", catalog="lead_stages", required=True),
                     Input("from_stage_id", "Only from stage", catalog="lead_stages"))),
)}
