"""Logged activities -> `activity.logged` on each open lead of the contact they are associated with:
outreach (a user logged an e-mail, a LinkedIn message, a call, booked a meeting) or response (the
contact replied, booked a meeting, a call connected)."""
from __future__ import annotations

from typing import Any

from ..contract.webhooks import CrmEvent
from .objects import _BY_NAME, _READ, flat, lead_state, stage_of, version_of, _moment

ACTIVITIES = ("email", "call", "meeting", "communication")
CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"       # HubSpot's default "Connected" call outcome
CALL_OUTCOMES = {CONNECTED: "connected", "73a0d17f-1163-4015-bdd5-ec830791da20": "no_answer",
                 "9d9162e7-6cf3-4944-bf63-4dff82258764": "busy", "b2cf5968-551e-4856-9783-52b3da59a7d0": "left_voicemail",
                 "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": "left_live_message",
                 "17b47fee-58de-441e-a44c-c6300d46f273": "wrong_number"}
_ACTIVITY_PROPS = {
    "email": ("hs_email_direction", "hs_email_subject", "hs_timestamp"),
    "call": ("hs_call_disposition", "hs_call_direction", "hs_call_title", "hs_timestamp"),
    "meeting": ("hs_meeting_source", "hs_meeting_outcome", "hs_meeting_title", "hs_timestamp"),
    "communication": ("hs_communication_channel_type", "hs_communication_logged_from", "hs_timestamp"),
}
_BOOKED_BY_CONTACT = {"MEETINGS_PUBLIC", "BOOKING_PAGE", "SCHEDULING_PAGE"}


def activity_kinds(name: str, props: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """[(direction, activity, outcome)] an activity stands for: an e-mail sent (outreach) or
    received (response), a LinkedIn message (outreach), a call (outreach; with outcome connected
    also a response), a meeting booked by a user (outreach) or by the contact (response)."""
    if name == "email":
        way = str(props.get("hs_email_direction") or "").upper()
        if way == "INCOMING_EMAIL":
            return [("response", "email", None)]
        return [("outreach", "email", None)] if way in ("EMAIL", "FORWARDED_EMAIL", "") else []
    if name == "call":
        disposition = str(props.get("hs_call_disposition") or "")
        outcome = CALL_OUTCOMES.get(disposition, disposition.lower() or None)
        out = [("outreach", "call", outcome)]
        if outcome == "connected":
            out.append(("response", "call", outcome))
        return out
    if name == "meeting":
        source = str(props.get("hs_meeting_source") or "").upper()
        outcome = str(props.get("hs_meeting_outcome") or "").lower() or None
        return [("response" if source in _BOOKED_BY_CONTACT else "outreach", "meeting", outcome)]
    if name == "communication":
        channel = str(props.get("hs_communication_channel_type") or "").upper()
        return [("outreach", "linkedin", None)] if channel.startswith("LINKEDIN") else []
    return []


def logged(e: Any) -> list[CrmEvent]:
    """A logged activity (its creation; a call's outcome set later counts as a response when it is
    connected). Its occurrence marker is the activity and direction, so the creation and the outcome
    event of one connected call make one response."""
    later_outcome = e.action == "propertyChange" and e.name == "call" and e.prop == "hs_call_disposition"
    if (e.action != "creation" and not later_outcome) or e.client is None:
        return []
    record = e.client.find(_BY_NAME[e.name], e.object_id, properties=list(_ACTIVITY_PROPS[e.name]),
                           associations=["contacts"])
    if record is None:
        return []
    props = record.get("properties") or {}
    if later_outcome:
        props = {**props, "hs_call_disposition": e.value}
    kinds = activity_kinds(e.name, props)
    if later_outcome:
        kinds = [k for k in kinds if k[0] == "response"]
    if not kinds:
        return []
    contacts = flat(record).get("associations", {}).get("contacts") or []
    events: list[CrmEvent] = []
    for contact in sorted(set(contacts)):
        for lead_id in sorted(set(e.client.associated("contacts", contact, "leads")), key=_numeric):
            lead = e.client.find("leads", lead_id, properties=list(_READ["lead"]))
            if lead is None:
                continue
            state = flat(lead)
            stage_id = state.get("hs_pipeline_stage")
            pipeline, stage = stage_of(e.client, "leads", stage_id)
            if lead_state(stage_id, stage) != "open":
                continue
            for way, activity, outcome in kinds:
                events.append(CrmEvent(
                    kind="activity.logged", object_type="lead", object_id=str(lead_id),
                    event_id=f"{e.event_id}:{lead_id}:{way}", occurred_at=_moment(e.occurred), current=state,
                    previous=None, pipeline_id=(pipeline or {}).get("id") or state.get("hs_pipeline"),
                    to_stage_id=str(stage_id) if stage_id else None, version=version_of(e.occurred),
                    extra={**e.extra, "direction": way, "activity": activity, "outcome": outcome,
                           "activity_type": e.name, "activity_id": e.object_id, "contact_id": contact,
                           "stage_id": str(stage_id) if stage_id else None},
                    occurrence=f"{e.name}:{e.object_id}:{way}", shows=None))
    return events


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (0, value)
