"""Webhook ingest: verify, persist before ack, dedupe; then normalize, record, reconcile, trace.
Every provider difference is the connector's `Webhooks` part (hub/connectors/contract/webhooks.py).

    POST /hooks/<connector>/<endpoint token>    (routing by installation token)
    POST /hooks/<connector>                     (one app-wide URL; the delivery names the account)
      raw bytes (size limit, 413) -> installation by token (404) -> handshake (answered, nothing
      stored) -> installation by account (404) -> connector's verify (401) -> split (400)
      -> each part an InboxEvent + its processing job, all in ONE transaction -> 200
      (a repeat of a known event key stores nothing)

The job (`webhook.process`) normalizes a stored delivery with the connector (which may read the
object through a client made on demand) and records each event through `hub.events`, which
deduplicates by the connector's occurrence marker and hands new events to rules and sync."""
from . import processing, registration, reconcile  # noqa: F401  (register job handlers and hooks)
