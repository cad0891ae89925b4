"""Webhook ingest: verify, persist before ack, dedupe; then normalize, record, reconcile, trace.

    POST /hooks/<provider>/<endpoint token>
      raw bytes (size limit, 413) -> installation by token (404) -> provider verification (401)
      -> parse (400) -> InboxEvent + its processing job in ONE transaction -> 200
      (a repeat of a known provider event id answers 200 and stores nothing)

The job (`webhook.process`) normalizes the payload with the connector and records each event
through `hub.events`, which deduplicates by occurrence and hands new events to rules and sync."""
from . import processing, registration, reconcile  # noqa: F401  (register job handlers and hooks)
