"""HubSpot's objects as the webhooks see them: object types, versions from epoch milliseconds, a
record flattened to what the hub keeps, the object read again with a property's history, and what
pipelines say about stages (won / lost deals, open / qualified / disqualified leads, direction)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

# objectTypeId -> (name used here, API path segment)
OBJECT_TYPES = {"0-1": ("contact", "contacts"), "0-2": ("company", "companies"), "0-3": ("deal", "deals"),
                "0-136": ("lead", "leads"), "0-27": ("task", "tasks"), "0-49": ("email", "emails"),
                "0-48": ("call", "calls"), "0-47": ("meeting", "meetings"), "0-18": ("communication", "communications")}
_BY_NAME = {name: path for name, path in OBJECT_TYPES.values()}
# what the hub's events call each object
NEUTRAL = {"contact": "person", "company": "organization", "deal": "deal", "lead": "lead", "task": "task"}


def _moment(ms: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def version_of(ms: Any) -> str | None:
    moment = _moment(ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z" if moment else None


def _ms(value: Any) -> int | None:
    """A history timestamp (ISO text or epoch ms) as epoch ms."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


# -- reading the object again ----------------------------------------------------------------------
def flat(record: dict | None) -> dict[str, Any] | None:
    """A HubSpot record as the hub keeps objects: `id` and its properties side by side."""
    if not isinstance(record, dict):
        return None
    out = {k: v for k, v in (record.get("properties") or {}).items()}
    out["id"] = str(record.get("id"))
    for key in ("createdAt", "updatedAt", "archived"):
        if key in record:
            out[key] = record[key]
    if isinstance(record.get("associations"), dict):
        out["associations"] = {name: [str(r.get("id") or r.get("toObjectId")) for r in (value or {}).get("results") or []]
                               for name, value in record["associations"].items()}
    return out


# the property that dates an object's last change (contacts keep the older name)
MODIFIED = {"contacts": "lastmodifieddate"}


def modified_property(path: str) -> str:
    return MODIFIED.get(path, "hs_lastmodifieddate")


_READ = {
    "deal": ("dealname", "amount", "pipeline", "dealstage", "hubspot_owner_id", "closedate", "hs_lastmodifieddate"),
    "contact": ("firstname", "lastname", "email", "lifecyclestage", "hubspot_owner_id", "lastmodifieddate"),
    "lead": ("hs_lead_name", "hs_pipeline", "hs_pipeline_stage", "hubspot_owner_id", "hs_lead_disqualification_reason",
             "hs_lead_type", "hs_lead_label", "hs_lastmodifieddate"),
    "task": ("hs_task_subject", "hs_task_status", "hs_timestamp", "hubspot_owner_id", "hs_task_type",
             "hs_task_priority", "hs_lastmodifieddate", "hs_task_completion_date"),
    "company": ("name", "domain", "lifecyclestage", "hubspot_owner_id", "hs_lastmodifieddate"),
}
_ASSOCIATIONS = {"deal": ("contacts", "companies"), "lead": ("contacts", "companies"),
                 "task": ("contacts", "deals", "companies"), "contact": ("companies",)}


class _Reread:
    """The object as HubSpot holds it now, read at most once per normalize."""

    def __init__(self, client: Any, name: str, object_id: str, history: str | None = None):
        self.client, self.name, self.object_id, self.history = client, name, object_id, history
        self.record: dict | None = None
        self.done = False

    def get(self) -> dict | None:
        if not self.done:
            self.done = True
            path = _BY_NAME.get(self.name)
            if self.client is not None and path:
                props = list(_READ.get(self.name, ()))
                if self.history and self.history not in props:
                    props.append(self.history)
                self.record = self.client.find(path, self.object_id, properties=props or None,
                                               associations=_ASSOCIATIONS.get(self.name),
                                               history=[self.history] if self.history else None)
        return self.record

    def previous_value(self, prop: str, occurred: int, value: Any) -> tuple[Any, str | None]:
        """(the value before the change to `value` at `occurred`, that change's sourceType) from
        the property's history."""
        record = self.get() or {}
        history = ((record.get("propertiesWithHistory") or {}).get(prop)) or []
        # newest first as HubSpot lists them: reversed, then sorted stably (changes within one millisecond)
        entries = sorted((e for e in reversed(history) if isinstance(e, dict)), key=lambda e: _ms(e.get("timestamp")) or 0)
        at = None
        for n, entry in enumerate(entries):
            stamp = _ms(entry.get("timestamp")) or 0
            if str(entry.get("value")) == str(value) and stamp <= occurred + 1000:
                at = n
        if at is None:
            return None, None
        before = entries[at - 1].get("value") if at > 0 else None
        return before, entries[at].get("sourceType")


def _cache(client: Any) -> dict:
    cache = getattr(client, "_hubspot_cache", None)
    if cache is None:
        cache = {}
        try:
            setattr(client, "_hubspot_cache", cache)
        except AttributeError:
            pass
    return cache


def pipelines(client: Any, object_type: str) -> list[dict]:
    """Pipelines of deals or leads with their stages, read once per client (one job)."""
    if client is None:
        return []
    cache = _cache(client)
    if object_type not in cache:
        cache[object_type] = client.pipelines(object_type)
    return cache[object_type]


def stage_of(client: Any, object_type: str, stage_id: Any) -> tuple[dict | None, dict | None]:
    """(pipeline, stage) of a stage id (stage ids are unique across an account's pipelines)."""
    if stage_id in (None, ""):
        return None, None
    for pipeline in pipelines(client, object_type):
        for stage in pipeline.get("stages") or []:
            if str(stage.get("id")) == str(stage_id):
                return pipeline, stage
    return None, None


def deal_outcome(stage: dict | None) -> str | None:
    """won | lost | None from a deal stage's metadata (`isClosed`, `probability` 1.0 / 0.0)."""
    meta = (stage or {}).get("metadata") or {}
    if str(meta.get("isClosed", "")).lower() != "true":
        return None
    try:
        probability = float(meta.get("probability"))
    except (TypeError, ValueError):
        return None
    return "won" if probability >= 1.0 else "lost" if probability <= 0.0 else None


# [U] how a lead pipeline marks its disqualified and qualified stages: the default ids (FACTS §6),
# or a stage metadata `leadState`/`state` when the account's pipeline carries one
_DISQUALIFIED_IDS = frozenset({"unqualified-stage-id", "disqualified-stage-id"})
_QUALIFIED_IDS = frozenset({"qualified-stage-id"})


def lead_state(stage_id: Any, stage: dict | None) -> str:
    """open | qualified | disqualified."""
    meta = (stage or {}).get("metadata") or {}
    state = str(meta.get("leadState") or meta.get("state") or "").upper()
    if str(stage_id) in _DISQUALIFIED_IDS or state in ("DISQUALIFIED", "UNQUALIFIED"):
        return "disqualified"
    if str(stage_id) in _QUALIFIED_IDS or state == "QUALIFIED":
        return "qualified"
    return "open"


def direction(from_stage: dict | None, to_stage: dict | None) -> str:
    """forward | back | none by the stages' displayOrder (unknown stages: none)."""
    try:
        before, after = int(from_stage["displayOrder"]), int(to_stage["displayOrder"])
    except (TypeError, KeyError, ValueError):
        return "none"
    return "forward" if after > before else "back" if after < before else "none"
