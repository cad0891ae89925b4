"""Schemas of the run log's JSON API (web.py: events, inbox, dead jobs, replays), for the OpenAPI
document (hub.web.openapi)."""
from __future__ import annotations

from marshmallow import Schema, fields

from ..rules.schemas import Ok


class Event(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    object_type = fields.String(required=True)
    object_id = fields.String(required=True)
    source = fields.String(allow_none=True)
    occurrence = fields.String(allow_none=True)
    inbox_event_id = fields.Integer(allow_none=True)
    occurred_at = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    stale = fields.Dict(allow_none=True, metadata={"description": "set when the event was older than the state "
                                                                  "the hub held: {version, known_version, acted}"})


class LogEntry(Schema):
    id = fields.Integer(required=True)
    at = fields.String(required=True)
    step = fields.String(required=True)
    status = fields.String(required=True)
    message = fields.String(allow_none=True)
    hub_event_id = fields.Integer(allow_none=True)
    inbox_event_id = fields.Integer(allow_none=True)
    rule_id = fields.Integer(allow_none=True)
    sync_id = fields.Integer(allow_none=True)
    job_id = fields.Integer(allow_none=True)
    detail = fields.Dict(allow_none=True)


class EventDetail(Event):
    data = fields.Dict(allow_none=True)
    trace = fields.List(fields.Nested(LogEntry), required=True,
                        metadata={"description": "the event's path: received, normalized, rules, jobs, calls"})


class Events(Schema):
    events = fields.List(fields.Nested(Event), required=True)


class InboxEntry(Schema):
    id = fields.Integer(required=True)
    event_key = fields.String(required=True)
    status = fields.String(required=True)
    error = fields.String(allow_none=True)
    received_at = fields.String(required=True)
    processed_at = fields.String(allow_none=True)


class Inbox(Schema):
    inbox = fields.List(fields.Nested(InboxEntry), required=True)


class DeadJob(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)


class DeadJobs(Schema):
    jobs = fields.List(fields.Nested(DeadJob), required=True)
    next_before = fields.Integer(allow_none=True, metadata={"description": "`before` of the next (older) "
                                                                           "page; null on the last one"})


class RunLog(Schema):
    log = fields.List(fields.Nested(LogEntry), required=True)


BASE, TAG = "/api/v1/installations/{installation_id}", "run log"
_LIMIT = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500},
           "description": "how many, newest first (100)"}]
OPERATIONS: list = [
    ("get", "/events", "The hub events, newest first", None, (200, Events), _LIMIT),
    ("get", "/events/{event_id}", "One event with its data and path", None, (200, EventDetail), []),
    ("get", "/inbox", "Received webhooks", None, (200, Inbox),
     _LIMIT + [{"name": "status", "in": "query", "schema": {"type": "string",
                                                            "enum": ["received", "processed", "ignored", "failed"]}}]),
    ("post", "/inbox/{inbox_id}/replay", "Run a failed or unprocessed webhook again", None, (200, Ok), []),
    ("get", "/jobs/dead", "Jobs that used up their attempts, newest first", None, (200, DeadJobs),
     _LIMIT + [{"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1},
                "description": "only jobs older than this id (paging)"}]),
    ("post", "/jobs/{job_id}/replay", "Queue a dead job again", None, (200, Ok), []),
    ("get", "/runlog", "The run log, newest first", None, (200, RunLog), _LIMIT),
]
