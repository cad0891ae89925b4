"""Schemas of the run log's JSON API (web.py: events, inbox, dead jobs, replays), for the OpenAPI
document (hub.web.openapi). Codes (`kind`, `step`, `status`) come with their words (`label`,
`status_label`, `outcome_label`)."""
from __future__ import annotations

from marshmallow import Schema, fields

from ..rules.schemas import Ok
from .runlog import OUTCOMES


class RuleOutcome(Schema):
    rule_id = fields.Integer(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "the run's status, or skipped (the rule "
                                                                   "looked at the event and did not run)"})
    status_label = fields.String(required=True)
    reason = fields.String(required=True, metadata={"description": "why it was skipped, when the log says"})


class Event(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    label = fields.String(required=True, metadata={"description": "the kind in words (Deal won)"})
    title = fields.String(required=True, metadata={"description": "the object's title as the event saw it"})
    object_type = fields.String(required=True)
    object_id = fields.String(required=True)
    source = fields.String(allow_none=True)
    occurrence = fields.String(allow_none=True)
    inbox_event_id = fields.Integer(allow_none=True)
    occurred_at = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    stale = fields.Dict(allow_none=True, metadata={"description": "set when the event was older than the state "
                                                                  "the hub held: {version, known_version, acted}"})
    outcome = fields.String(required=True, metadata={"description": "what it came to: the worst of its rules "
                                                                    "(failed, pending, done, skipped) or none"})
    outcome_label = fields.String(required=True)
    rules = fields.List(fields.Nested(RuleOutcome), required=True)


class LogEntry(Schema):
    id = fields.Integer(required=True)
    at = fields.String(required=True)
    step = fields.String(required=True)
    label = fields.String(required=True, metadata={"description": "the step in words (Rule matched)"})
    status = fields.String(required=True)
    status_label = fields.String(required=True)
    message = fields.String(allow_none=True)
    hub_event_id = fields.Integer(allow_none=True)
    inbox_event_id = fields.Integer(allow_none=True)
    rule_id = fields.Integer(allow_none=True)
    sync_id = fields.Integer(allow_none=True)
    job_id = fields.Integer(allow_none=True)
    detail = fields.Dict(allow_none=True)


class MadeLink(Schema):
    rule_id = fields.Integer(required=True)
    run_id = fields.Integer(required=True)
    made = fields.String(required=True, metadata={"description": "task, project, record ..."})
    name = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "where to open it (empty when unknown)"})


class EventDetail(Event):
    data = fields.Dict(allow_none=True)
    links = fields.List(fields.Nested(MadeLink), required=True, metadata={"description": "what its runs made"})
    trace = fields.List(fields.Nested(LogEntry), required=True,
                        metadata={"description": "the event's path: received, normalized, rules, jobs, calls"})


class Events(Schema):
    events = fields.List(fields.Nested(Event), required=True)
    next_before = fields.Integer(allow_none=True, metadata={"description": "`before` of the next (older) page; "
                                                                           "null on the last one"})
    newer_after = fields.Integer(allow_none=True, metadata={"description": "`after` of the newer page; null on "
                                                                           "the first (newest) one"})


class Replayed(Schema):
    ok = fields.Boolean(required=True)
    requeued = fields.List(fields.Integer(), required=True, metadata={"description": "finished runs queued again"})
    new_runs = fields.List(fields.Integer(), required=True, metadata={"description": "runs of rules that match "
                                                                                     "now and had none"})
    matched_again = fields.Boolean(required=True, metadata={"description": "false for a late event a newer "
                                                                           "state superseded"})


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
    next_before = fields.Integer(allow_none=True, metadata={"description": "`before` of the next (older) page; "
                                                                           "null on the last one"})


BASE, TAG = "/api/v1/installations/{installation_id}", "run log"
_LIMIT = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500},
           "description": "how many, newest first (100)"}]
_BEFORE = [{"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1},
            "description": "only older than this id (paging)"}]
_EVENT_QUERY = _LIMIT + _BEFORE + [
    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 1},
     "description": "only newer than this id (paging back; ignored with before)"},
    {"name": "rule_id", "in": "query", "schema": {"type": "integer", "minimum": 1},
     "description": "only events this rule ran for or looked at"},
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(OUTCOMES)},
     "description": "only events that came to this (none: no rule is about them)"},
    {"name": "object_type", "in": "query", "schema": {"type": "string", "maxLength": 40}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"},
     "description": "recorded at or after (UTC; a date or a time)"},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"},
     "description": "recorded before (UTC; a date alone: to the end of that day)"},
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "an object id, or part of the object's title"},
    {"name": "all", "in": "query", "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
     "description": "1: also the events no rule is about (hidden by default)"}]
OPERATIONS: list = [
    ("get", "/events", "The hub events, newest first, filtered and paged", None, (200, Events), _EVENT_QUERY),
    ("get", "/events/{event_id}", "One event with its data and path", None, (200, EventDetail), []),
    ("post", "/events/{event_id}/replay", "Replay a recorded event: match the rules again and run its runs again "
     "(nothing done twice)", None, (200, Replayed), []),
    ("get", "/inbox", "Received webhooks", None, (200, Inbox),
     _LIMIT + [{"name": "status", "in": "query", "schema": {"type": "string",
                                                            "enum": ["received", "processed", "ignored", "failed"]}}]),
    ("post", "/inbox/{inbox_id}/replay", "Run a failed or unprocessed webhook again", None, (200, Ok), []),
    ("get", "/jobs/dead", "Jobs that used up their attempts, newest first", None, (200, DeadJobs),
     _LIMIT + _BEFORE),
    ("post", "/jobs/{job_id}/replay", "Queue a dead job again", None, (200, Ok), []),
    ("get", "/runlog", "The run log, newest first", None, (200, RunLog), _LIMIT + _BEFORE),
]
