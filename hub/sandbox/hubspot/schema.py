"""HubSpot's CRM schema as the emulator knows it: object types, default properties, pipelines and
HUBSPOT_DEFINED association types.

Values follow HubSpot's public docs (see FACTS.md of the provider): object type ids (`0-1` contacts,
`0-136` leads ...), lifecycle stage internal values, the default lead pipeline's stage ids, deal stage
metadata (`isClosed` / `probability`, strings as HubSpot returns them). Association type ids that
the docs do not pin down are marked [U] here; clients are expected to read them from
`/crm/v4/associations/{from}/{to}/labels`, which is built from this same table."""
from __future__ import annotations

from typing import Any

# name -> (objectTypeId, singular, the property that names a record, its default returned properties)
OBJECT_TYPES: dict[str, dict[str, Any]] = {
    "contacts": {"id": "0-1", "singular": "contact", "created": "createdate", "modified": "lastmodifieddate",
                 "default": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"]},
    "companies": {"id": "0-2", "singular": "company", "created": "createdate", "modified": "hs_lastmodifieddate",
                  "default": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"]},
    "deals": {"id": "0-3", "singular": "deal", "created": "createdate", "modified": "hs_lastmodifieddate",
              "default": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
                          "hs_object_id", "pipeline"]},
    "leads": {"id": "0-136", "singular": "lead", "created": "hs_createdate", "modified": "hs_lastmodifieddate",
              "default": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]},
    "tasks": {"id": "0-27", "singular": "task", "created": "hs_createdate", "modified": "hs_lastmodifieddate",
              "default": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]},
    "emails": {"id": "0-49", "singular": "email", "created": "hs_createdate", "modified": "hs_lastmodifieddate",
               "default": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]},
    "calls": {"id": "0-48", "singular": "call", "created": "hs_createdate", "modified": "hs_lastmodifieddate",
              "default": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]},
    "meetings": {"id": "0-47", "singular": "meeting", "created": "hs_createdate", "modified": "hs_lastmodifieddate",
                 "default": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]},
    "communications": {"id": "0-18", "singular": "communication", "created": "hs_createdate",
                       "modified": "hs_lastmodifieddate",
                       "default": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]},
}
ENGAGEMENTS = ("tasks", "emails", "calls", "meetings", "communications")


def resolve_type(name: str) -> str | None:
    """`contacts`, `contact`, `0-1` -> `contacts`; None when unknown."""
    key = (name or "").strip().lower()
    for plural, info in OBJECT_TYPES.items():
        if key in (plural, info["singular"], info["id"]):
            return plural
    return None


def type_by_id(type_id: str) -> str | None:
    return next((k for k, v in OBJECT_TYPES.items() if v["id"] == type_id), None)


LIFECYCLE_STAGES = [  # (internal value, label); the order is the funnel's
    ("subscriber", "Subscriber"), ("lead", "Lead"), ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"), ("opportunity", "Opportunity"), ("customer", "Customer"),
    ("evangelist", "Evangelist"), ("other", "Other"),
]
CUSTOM_LIFECYCLE_STAGE = ("1083247613", "Nurture")   # account-made stages get numeric internal values


def lifecycle_options() -> list[tuple[str, str]]:
    """The account's stages in funnel order, its custom one after `lead`."""
    return LIFECYCLE_STAGES[:2] + [CUSTOM_LIFECYCLE_STAGE] + LIFECYCLE_STAGES[2:]


DISQUALIFICATION_REASONS = [("NOT_A_GOOD_FIT", "Not a good fit"), ("NO_BUDGET", "No budget"),
                            ("NO_RESPONSE", "No response"), ("WRONG_TIMING", "Wrong timing"),
                            ("COMPETITOR", "Went with a competitor")]
CALL_DISPOSITIONS = [  # HubSpot's default call outcome ids (GUIDs) and labels
    ("f240bbac-87c9-4f6e-bf70-924b57d47db7", "Connected"),
    ("73a0d17f-1163-4015-bdd5-ec830791da20", "No answer"),
    ("b2cf5968-551e-4856-9783-52b3da59a7d0", "Left voicemail"),
    ("9d9162e7-6cf3-4944-bf63-4dff82258764", "Busy"),
    ("a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "Left live message"),
    ("17b47fee-58de-441e-a44c-c6300d46f273", "Wrong number"),
]
CALL_CONNECTED = CALL_DISPOSITIONS[0][0]
MEETING_OUTCOMES = ["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"]
TASK_STATUSES = ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]
TASK_PRIORITIES = ["NONE", "LOW", "MEDIUM", "HIGH"]
TASK_TYPES = ["TODO", "CALL", "EMAIL", "LINKED_IN", "MEETING"]
EMAIL_DIRECTIONS = ["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"]
COMMUNICATION_CHANNELS = ["LINKEDIN_MESSAGE", "SMS", "WHATS_APP"]


def _prop(name: str, label: str, type_: str = "string", field: str | None = None, *, group: str = "",
          options: list | None = None, read_only: bool = False, calculated: bool = False) -> dict:
    field = field or {"string": "text", "number": "number", "datetime": "date", "date": "date",
                      "enumeration": "select", "bool": "booleancheckbox"}[type_]
    out = {"name": name, "label": label, "type": type_, "fieldType": field, "description": "",
           "groupName": group, "options": [], "displayOrder": -1, "calculated": calculated,
           "externalOptions": False, "hasUniqueValue": name == "hs_object_id", "hidden": False,
           "hubspotDefined": True, "formField": False,
           "modificationMetadata": {"archivable": True, "readOnlyDefinition": True, "readOnlyValue": read_only}}
    if options is not None:
        out["options"] = [{"label": lab, "value": val, "displayOrder": n, "hidden": False}
                          for n, (val, lab) in enumerate(options)]
    return out


def _common(kind: str) -> list[dict]:
    info = OBJECT_TYPES[kind]
    props = [_prop("hs_object_id", "Record ID", "number", read_only=True),
             _prop(info["created"], "Create date", "datetime", read_only=True),
             _prop(info["modified"], "Last modified date", "datetime", read_only=True),
             _prop("hubspot_owner_id", "Owner", "enumeration", "select"),
             _prop("hubspot_owner_assigneddate", "Owner assigned date", "datetime", read_only=True)]
    if info["created"] != "hs_createdate":
        props.append(_prop("hs_createdate", "Object create date", "datetime", read_only=True))
    if info["modified"] != "hs_lastmodifieddate":
        props.append(_prop("hs_lastmodifieddate", "Object last modified", "datetime", read_only=True))
    return props


def _engagement_common() -> list[dict]:
    return [_prop("hs_timestamp", "Activity date", "datetime"),
            _prop("hs_activity_type", "Activity type", "string")]


def default_properties() -> dict[str, list[dict]]:
    """Every object type's property definitions as a fresh account has them (owners filled later)."""
    lifecycle = lifecycle_options()
    p = {k: _common(k) for k in OBJECT_TYPES}
    p["contacts"] += [
        _prop("email", "Email"), _prop("firstname", "First name"), _prop("lastname", "Last name"),
        _prop("phone", "Phone number", field="phonenumber"), _prop("company", "Company name"),
        _prop("jobtitle", "Job title"), _prop("lifecyclestage", "Lifecycle stage", "enumeration", "radio",
                                              options=lifecycle),
        _prop("hs_lead_status", "Lead status", "enumeration", options=[
            ("NEW", "New"), ("OPEN", "Open"), ("IN_PROGRESS", "In progress"), ("OPEN_DEAL", "Open deal"),
            ("UNQUALIFIED", "Unqualified"), ("ATTEMPTED_TO_CONTACT", "Attempted to contact"),
            ("CONNECTED", "Connected"), ("BAD_TIMING", "Bad timing")]),
        _prop("associatedcompanyid", "Primary associated company ID", "number"),
    ] + [_prop(f"hs_lifecyclestage_{v}_date", f"Date entered '{lab}'", "datetime", read_only=True,
               calculated=True) for v, lab in lifecycle]
    p["companies"] += [
        _prop("name", "Company name"), _prop("domain", "Company domain name"), _prop("city", "City"),
        _prop("industry", "Industry"),
        _prop("lifecyclestage", "Lifecycle stage", "enumeration", "radio", options=lifecycle),
    ]
    p["deals"] += [
        _prop("dealname", "Deal name"), _prop("amount", "Amount", "number"),
        _prop("closedate", "Close date", "datetime"), _prop("pipeline", "Pipeline", "enumeration"),
        _prop("dealstage", "Deal stage", "enumeration", "radio"),
        _prop("closed_lost_reason", "Closed lost reason", field="textarea"),
        _prop("hs_is_closed_won", "Is closed won", "bool", read_only=True, calculated=True),
        _prop("hs_is_closed", "Is deal closed?", "bool", read_only=True, calculated=True),
        _prop("hs_deal_stage_probability", "Deal probability", "number", read_only=True, calculated=True),
        _prop("description", "Deal description", field="textarea"),
    ]
    p["leads"] += [
        _prop("hs_lead_name", "Lead name"),
        _prop("hs_lead_type", "Lead type", "enumeration", options=[
            ("NEW_BUSINESS", "New Business"), ("UPSELL", "Upsell"), ("RE_ATTEMPTING", "Re-attempting")]),
        _prop("hs_lead_label", "Lead label", "enumeration", options=[("HOT", "Hot"), ("WARM", "Warm"),
                                                                      ("COLD", "Cold")]),
        _prop("hs_pipeline", "Pipeline", "enumeration"), _prop("hs_pipeline_stage", "Lead stage", "enumeration"),
        _prop("hs_lead_disqualification_reason", "Disqualification reason", "enumeration",
              options=DISQUALIFICATION_REASONS),
        _prop("hs_lead_disqualification_note", "Disqualification note", field="textarea"),
        _prop("hs_primary_contact_id", "Primary contact ID", "number", read_only=True, calculated=True),
        _prop("hs_associated_contact_email", "Primary contact email", read_only=True, calculated=True),
        _prop("hs_lead_is_open", "Is open", "bool", read_only=True, calculated=True),
    ]
    p["tasks"] += _engagement_common() + [
        _prop("hs_task_subject", "Task title"), _prop("hs_task_body", "Notes", field="textarea"),
        _prop("hs_task_status", "Task status", "enumeration", options=[(s, s.replace("_", " ").title())
                                                                       for s in TASK_STATUSES]),
        _prop("hs_task_priority", "Priority", "enumeration", options=[(s, s.title()) for s in TASK_PRIORITIES]),
        _prop("hs_task_type", "Task type", "enumeration", options=[(s, s.replace("_", " ").title())
                                                                   for s in TASK_TYPES]),
        _prop("hs_task_reminders", "Reminder", "string"),
        _prop("hs_task_completion_date", "Completed at", "datetime", read_only=True, calculated=True),
        _prop("hs_queue_membership_ids", "Queue", "enumeration", "checkbox"),
    ]
    p["emails"] += _engagement_common() + [
        _prop("hs_email_subject", "Email subject"), _prop("hs_email_text", "Email body", field="textarea"),
        _prop("hs_email_html", "Email HTML", field="html"),
        _prop("hs_email_direction", "Email direction", "enumeration", options=[
            ("EMAIL", "Logged or sent email"), ("INCOMING_EMAIL", "Incoming email"),
            ("FORWARDED_EMAIL", "Forwarded email")]),
        _prop("hs_email_status", "Email send status", "enumeration", options=[
            ("SENT", "Sent"), ("BOUNCED", "Bounced"), ("FAILED", "Failed"), ("SCHEDULED", "Scheduled"),
            ("SENDING", "Sending")]),
        _prop("hs_email_headers", "Email headers", field="textarea"),
    ]
    p["calls"] += _engagement_common() + [
        _prop("hs_call_title", "Call title"), _prop("hs_call_body", "Call notes", field="textarea"),
        _prop("hs_call_direction", "Call direction", "enumeration", options=[("INBOUND", "Inbound"),
                                                                             ("OUTBOUND", "Outbound")]),
        _prop("hs_call_disposition", "Call outcome", "enumeration", options=CALL_DISPOSITIONS),
        _prop("hs_call_duration", "Call duration", "number"),
        _prop("hs_call_status", "Call status", "enumeration", options=[
            (s, s.title()) for s in ("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING",
                                     "FAILED", "IN_PROGRESS", "NO_ANSWER", "QUEUED", "RINGING")]),
    ]
    p["meetings"] += _engagement_common() + [
        _prop("hs_meeting_title", "Meeting name"), _prop("hs_meeting_body", "Meeting description",
                                                         field="textarea"),
        _prop("hs_meeting_start_time", "Start time", "datetime"), _prop("hs_meeting_end_time", "End time",
                                                                         "datetime"),
        _prop("hs_meeting_outcome", "Meeting outcome", "enumeration", options=[
            (s, s.replace("_", " ").title()) for s in MEETING_OUTCOMES]),
        _prop("hs_meeting_source", "Meeting source", "enumeration", options=[
            ("CRM_UI", "Logged in the CRM"), ("MEETINGS_PUBLIC", "Booked through a meetings link"),
            ("INTEGRATION", "Integration")]),
        _prop("hs_internal_meeting_notes", "Internal notes", field="textarea"),
    ]
    p["communications"] += _engagement_common() + [
        _prop("hs_communication_channel_type", "Channel type", "enumeration", options=[
            ("LINKEDIN_MESSAGE", "LinkedIn"), ("SMS", "SMS"), ("WHATS_APP", "WhatsApp")]),
        _prop("hs_communication_logged_from", "Logged from", "enumeration", options=[("CRM", "CRM")]),
        _prop("hs_communication_body", "Message body", field="textarea"),
    ]
    for kind, props in p.items():
        for n, prop in enumerate(props):
            prop["displayOrder"] = n
            prop["groupName"] = prop["groupName"] or f"{OBJECT_TYPES[kind]['singular']}information"
    return p


# (typeId, fromType, toType, label or None); a primary association also carries the unlabeled one
_ASSOC: list[tuple[int, str, str, str | None]] = [
    (1, "contacts", "companies", "Primary"), (279, "contacts", "companies", None),
    (2, "companies", "contacts", "Primary"), (280, "companies", "contacts", None),
    (3, "deals", "contacts", None), (4, "contacts", "deals", None),
    (5, "deals", "companies", "Primary"), (341, "deals", "companies", None),
    (6, "companies", "deals", "Primary"), (342, "companies", "deals", None),
    (204, "tasks", "contacts", None), (203, "contacts", "tasks", None),
    (192, "tasks", "companies", None), (191, "companies", "tasks", None),
    (216, "tasks", "deals", None), (215, "deals", "tasks", None),
    (198, "emails", "contacts", None), (197, "contacts", "emails", None),
    (186, "emails", "companies", None), (185, "companies", "emails", None),
    (210, "emails", "deals", None), (209, "deals", "emails", None),
    (194, "calls", "contacts", None), (193, "contacts", "calls", None),
    (182, "calls", "companies", None), (181, "companies", "calls", None),
    (206, "calls", "deals", None), (205, "deals", "calls", None),
    (200, "meetings", "contacts", None), (199, "contacts", "meetings", None),
    (188, "meetings", "companies", None), (187, "companies", "meetings", None),
    (212, "meetings", "deals", None), (211, "deals", "meetings", None),
    (81, "communications", "contacts", None), (82, "contacts", "communications", None),
    (87, "communications", "companies", None), (88, "companies", "communications", None),
    (85, "communications", "deals", None), (86, "deals", "communications", None),
    # leads [U]: 578 is what the docs' examples use for the primary contact
    (578, "leads", "contacts", "Primary"), (608, "leads", "contacts", None),
    (579, "contacts", "leads", "Primary"), (607, "contacts", "leads", None),
    (580, "leads", "companies", "Primary"), (610, "leads", "companies", None),
    (581, "companies", "leads", "Primary"), (609, "companies", "leads", None),
    (583, "leads", "deals", None), (584, "deals", "leads", None),
    (646, "leads", "tasks", None), (647, "tasks", "leads", None),
    (598, "leads", "emails", None), (599, "emails", "leads", None),
    (596, "leads", "calls", None), (597, "calls", "leads", None),
    (600, "leads", "meetings", None), (601, "meetings", "leads", None),
    (602, "leads", "communications", None), (603, "communications", "leads", None),
]
ASSOCIATION_TYPES: dict[int, dict[str, Any]] = {
    t: {"typeId": t, "from": f, "to": to, "label": lab} for t, f, to, lab in _ASSOC}


def default_type(from_type: str, to_type: str) -> int | None:
    """The unlabeled (default) association type between two object types."""
    return next((t for t, f, to, lab in _ASSOC if f == from_type and to == to_type and lab is None), None)


def primary_type(from_type: str, to_type: str) -> int | None:
    return next((t for t, f, to, lab in _ASSOC if f == from_type and to == to_type and lab == "Primary"), None)


def inverse_type(type_id: int) -> int | None:
    """The same association seen from the other side (Primary <-> Primary, unlabeled <-> unlabeled)."""
    a = ASSOCIATION_TYPES[type_id]
    return next((t for t, f, to, lab in _ASSOC if f == a["to"] and to == a["from"] and lab == a["label"]), None)


def type_name(type_id: int) -> str:
    """v3's association `type` strings: `contact_to_company` (primary) / `..._unlabeled`."""
    a = ASSOCIATION_TYPES[type_id]
    base = f"{OBJECT_TYPES[a['from']]['singular']}_to_{OBJECT_TYPES[a['to']]['singular']}"
    if a["label"] is None and primary_type(a["from"], a["to"]) is not None:
        return base + "_unlabeled"
    return base


def deal_pipelines() -> list[dict]:
    sales = [("appointmentscheduled", "Appointment scheduled", "0.2"), ("qualifiedtobuy", "Qualified to buy", "0.4"),
             ("presentationscheduled", "Presentation scheduled", "0.6"),
             ("decisionmakerboughtin", "Decision maker bought-in", "0.8"),
             ("contractsent", "Contract sent", "0.9"), ("closedwon", "Closed won", "1.0"),
             ("closedlost", "Closed lost", "0.0")]
    renewals = [("1001", "Renewal due", "0.5"), ("1002", "Renewal negotiation", "0.7"),
                ("1003", "Renewed", "1.0"), ("1004", "Churned", "0.0")]

    def stages(rows):
        return [{"id": sid, "label": label, "displayOrder": n,
                 "metadata": {"isClosed": "true" if prob in ("1.0", "0.0") else "false", "probability": prob}}
                for n, (sid, label, prob) in enumerate(rows)]
    return [{"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "stages": stages(sales)},
            {"id": "95001", "label": "Renewals", "displayOrder": 1, "stages": stages(renewals)}]


def lead_pipelines() -> list[dict]:
    rows = [("new-stage-id", "New", "OPEN"), ("attempting-stage-id", "Attempting", "IN_PROGRESS"),
            ("connected-stage-id", "Connected", "IN_PROGRESS"), ("qualified-stage-id", "Qualified", "QUALIFIED"),
            ("unqualified-stage-id", "Disqualified", "DISQUALIFIED")]
    partner = [("2001", "New", "OPEN"), ("2002", "Contacted", "IN_PROGRESS"), ("2003", "Qualified", "QUALIFIED"),
               ("2004", "Disqualified", "DISQUALIFIED")]

    def stages(rows):
        return [{"id": sid, "label": label, "displayOrder": n, "metadata": {"leadState": state}}
                for n, (sid, label, state) in enumerate(rows)]
    return [{"id": "lead-pipeline-id", "label": "Lead pipeline", "displayOrder": 0, "stages": stages(rows)},
            {"id": "96001", "label": "Partner leads", "displayOrder": 1, "stages": stages(partner)}]


DEFAULT_SUBSCRIPTIONS = [  # the app's webhook subscriptions (HubSpot: configured on the app, for every install)
    {"subscriptionType": "contact.creation"},
    {"subscriptionType": "contact.propertyChange", "propertyName": "lifecyclestage"},
    {"subscriptionType": "contact.deletion"},
    {"subscriptionType": "company.propertyChange", "propertyName": "lifecyclestage"},
    {"subscriptionType": "deal.creation"},
    {"subscriptionType": "deal.propertyChange", "propertyName": "dealstage"},
    {"subscriptionType": "deal.deletion"},
    {"subscriptionType": "object.creation", "objectTypeId": "0-136"},
    {"subscriptionType": "object.propertyChange", "objectTypeId": "0-136", "propertyName": "hs_pipeline_stage"},
    {"subscriptionType": "object.propertyChange", "objectTypeId": "0-136",
     "propertyName": "hs_lead_disqualification_reason"},
    {"subscriptionType": "object.deletion", "objectTypeId": "0-136"},
    {"subscriptionType": "object.creation", "objectTypeId": "0-27"},
    {"subscriptionType": "object.propertyChange", "objectTypeId": "0-27", "propertyName": "hs_task_status"},
    {"subscriptionType": "object.creation", "objectTypeId": "0-49"},
    {"subscriptionType": "object.creation", "objectTypeId": "0-48"},
    {"subscriptionType": "object.propertyChange", "objectTypeId": "0-48", "propertyName": "hs_call_disposition"},
    {"subscriptionType": "object.creation", "objectTypeId": "0-47"},
    {"subscriptionType": "object.propertyChange", "objectTypeId": "0-47", "propertyName": "hs_meeting_outcome"},
    {"subscriptionType": "object.creation", "objectTypeId": "0-18"},
]
